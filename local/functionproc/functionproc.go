// Package functionproc builds and runs the real apply function binary
// (./cmd/cloudsql-cache-function) as a child process, for `make run` and the end-to-end tests.
package functionproc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Build compiles the function into path. moduleDir is the repository root.
func Build(ctx context.Context, moduleDir, path string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "./cmd/cloudsql-cache-function")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("functionproc: go build: %w\n%s", err, out)
	}
	return nil
}

// Process is the function running on a port.
type Process struct {
	bin  string
	port int
	env  []string
	log  io.Writer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin on 127.0.0.1:port with env (added to this process's environment) and waits until
// it answers HTTP. Its output goes to log.
func Start(ctx context.Context, bin string, port int, env []string, log io.Writer) (*Process, error) {
	p := &Process{bin: bin, port: port, env: env, log: log}
	return p, p.Start(ctx)
}

// Pid is the running process's id (0 when stopped), e.g. to read its CPU time.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// URL is where the function serves.
func (p *Process) URL() string { return "http://127.0.0.1:" + strconv.Itoa(p.port) + "/" }

// Start starts the process again after Kill or Stop.
func (p *Process) Start(ctx context.Context) error {
	cmd := exec.Command(p.bin)
	cmd.Env = append(append(os.Environ(), p.env...), "PORT="+strconv.Itoa(p.port), "HOST=127.0.0.1")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM} // stopped by us, or when we die
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("functionproc: start: %w", err)
	}
	done := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	// A bounded probe: a function that accepts and then hangs must not hold us past the deadline.
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			// A GET is answered 405 once the handler is registered.
			if resp, err := probe.Get(p.URL()); err == nil {
				resp.Body.Close()
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("functionproc: the function exited during start-up: %v", exitErr)
		case <-ctx.Done():
			p.Kill()
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			p.Kill()
			return fmt.Errorf("functionproc: not serving after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM (what Cloud Run sends) and waits.
func (p *Process) Stop() { p.signal(syscall.SIGTERM) }

// Kill kills the process at once (a crashed instance).
func (p *Process) Kill() { p.signal(syscall.SIGKILL) }

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
