package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
)

// poolResult is one run of the pool comparison: what the function achieved, and how many deliveries it
// answered with something other than 200 (a 503 "retry", which Pub/Sub backs off on).
type poolResult struct {
	result
	retries int64
}

// poolCompare runs the same deliveries at concurrency c against one function process per pool size
// (REDIS_POOL_SIZE), each reaching Redis through a proxy that holds every chunk for rtt/2 each way (the
// round trip to Memorystore over the VPC, instead of loopback's few microseconds), and prints each
// against the first pool size, measured in the same run.
func poolCompare(ctx context.Context, bin, redisAddr string, rdb *redis.Client, env []string, bodies [][]byte, c int, sizes []int, rtt time.Duration) error {
	proxy, err := startDelayProxy(redisAddr, rtt)
	if err != nil {
		return err
	}
	defer proxy.Close()
	fmt.Printf("\nRedis pool size at concurrency %d, %s simulated round trip to Redis, %d events per run\n\n", c, rtt, len(bodies))
	fmt.Println("| REDIS_POOL_SIZE | events/s | p50 | p99 | retries (503) | events/s ÷ first |")
	fmt.Println("|---|---|---|---|---|---|")
	var base float64
	for _, n := range sizes {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			return err
		}
		port, err := freeport.Get()
		if err != nil {
			return err
		}
		e := append(append([]string{}, env...), "REDIS_ADDR="+proxy.Addr(), "REDIS_POOL_SIZE="+strconv.Itoa(n))
		fn, err := functionproc.Start(ctx, bin, port, e, io.Discard)
		if err != nil {
			return err
		}
		r := poolRun(fn, bodies, c)
		fn.Stop()
		if base == 0 {
			base = r.eventsPerSec
		}
		fmt.Printf("| %d | %.0f | %s | %s | %d | %.2f |\n", n, r.eventsPerSec, us(r.p50), us(r.p99), r.retries, r.eventsPerSec/base)
	}
	return nil
}

// poolRun is applyRun that counts the deliveries not answered 200 instead of failing on them.
func poolRun(fn *functionproc.Process, bodies [][]byte, c int) poolResult {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var retries atomic.Int64
	r := drive(len(bodies), c, func(i int) {
		resp, err := client.Post(fn.URL(), "application/json", bytes.NewReader(bodies[i]))
		if err != nil {
			retries.Add(1)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			retries.Add(1)
		}
	})
	return poolResult{r, retries.Load()}
}

// delayProxy forwards TCP connections to a target, holding every chunk it reads for half the round
// trip before writing it on: one request/response exchange (go-redis sends one command per
// connection at a time) then takes rtt longer.
type delayProxy struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startDelayProxy(target string, rtt time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go pipeDelayed(out, in, rtt/2)
			go pipeDelayed(in, out, rtt/2)
		}
	}()
	return p, nil
}

func (p *delayProxy) Addr() string { return p.ln.Addr().String() }

func (p *delayProxy) Close() {
	p.ln.Close()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func pipeDelayed(dst, src net.Conn, delay time.Duration) {
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			time.Sleep(delay)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
