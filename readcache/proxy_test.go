package readcache

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// tcpProxy forwards loopback TCP connections to a target. freeze makes every connection open at that
// moment stop forwarding in both directions while staying open: a half-open connection, as a dead
// peer or a silently dropped NAT entry leaves it. Connections made later are forwarded.
type tcpProxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	mu     sync.Mutex
	links  []*link
	done   chan struct{}
}

type link struct {
	frozen     atomic.Bool
	client, up net.Conn
}

func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, ln: ln, target: target, done: make(chan struct{})}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{client: c, up: up}
		p.mu.Lock()
		p.links = append(p.links, l)
		p.mu.Unlock()
		go p.pipe(l, c, up)
		go p.pipe(l, up, c)
	}
}

// pipe copies src to dst until the link is frozen; then it holds the connection open, forwarding
// nothing, until the proxy closes.
func (p *tcpProxy) pipe(l *link, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if l.frozen.Load() {
			<-p.done
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

// freeze silently stops every connection open now.
func (p *tcpProxy) freeze() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.frozen.Store(true)
	}
	return len(p.links)
}

func (p *tcpProxy) close() {
	p.ln.Close()
	close(p.done)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.client.Close()
		l.up.Close()
	}
}
