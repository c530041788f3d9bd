package redisserver

import (
	"fmt"
	"net"
	"sync"
)

// Proxy is a TCP proxy on loopback in front of a server: the stable endpoint Memorystore gives a
// client across a failover (SetTarget moves it to the promoted replica), and the network between a
// primary and its replica (Hold keeps what the primary sends from reaching the replica, Cut drops the
// connections and whatever was held), which is how a write is lost in a failover.
type Proxy struct {
	ln net.Listener

	mu     sync.Mutex
	cond   *sync.Cond
	target string
	held   bool
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards each connection to target.
func StartProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("redisserver: proxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget sends new connections to addr and cuts the current ones, as a failover moves the endpoint.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
	p.Cut()
}

// Hold stops forwarding what the target sends; what it sends meanwhile is lost at Cut.
func (p *Proxy) Hold() { p.setHeld(true) }

// Release forwards again.
func (p *Proxy) Release() { p.setHeld(false) }

func (p *Proxy) setHeld(h bool) {
	p.mu.Lock()
	p.held = h
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Cut closes every current connection (and releases the hold).
func (p *Proxy) Cut() {
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
	p.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, closed := p.target, p.closed
		p.mu.Unlock()
		if closed {
			_ = c.Close()
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.pipe(s, c, false) }()
		go func() { defer p.wg.Done(); p.pipe(c, s, true) }()
	}
}

// pipe copies from src to dst until either closes; from the target, it waits while held.
func (p *Proxy) pipe(dst, src net.Conn, fromTarget bool) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && fromTarget {
			p.mu.Lock()
			for p.held {
				p.cond.Wait()
			}
			_, gone := p.conns[src]
			p.mu.Unlock()
			if !gone {
				return // cut while held: what was held is lost
			}
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a cut
		}
	}
}

// StartProxyForTest starts a proxy closed when the test ends.
func (s *TestServer) StartProxyForTest() *Proxy {
	s.t.Helper()
	p, err := StartProxy(s.Addr())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(p.Close)
	return p
}
