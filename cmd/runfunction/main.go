// Command runfunction is `make run-function`: the apply function alone, on the Functions Framework,
// against a redis-server of its own (or the one REDIS_ADDR names), until Ctrl-C.
//
//	go run ./cmd/runfunction -state .state -redis-port 6390 -port 8080
//
// Its redis-server runs under -state (a relative or an absolute path) on -redis-port, and must be the
// process that answers there: a port another process holds (a Redis left running, say) is an error
// that says so, never a server quietly reused. To use a Redis of your own on purpose, set REDIS_ADDR.
// Bad messages are answered 400 (DEAD_LETTER_TOPIC=nack) unless DEAD_LETTER_TOPIC is set; every other
// variable of the function is passed through, and its configuration errors are reported all at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil))
}

// run serves until ctx ends; ready, if set, is called with the function's URL once it serves.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready func(url string)) int {
	fs := flag.NewFlagSet("runfunction", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("state", ".state", "directory of the redis-server's files and the function's binary")
	redisPort := fs.Int("redis-port", 6390, "port of the redis-server started here (unless REDIS_ADDR is set)")
	port := fs.Int("port", 8080, "port the function listens on")
	module := fs.String("module", ".", "the repository root, where the function is built from")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var problems []error
	if *redisPort < 1 || *redisPort > 65535 || *port < 1 || *port > 65535 {
		problems = append(problems, fmt.Errorf("-redis-port %d, -port %d: ports are 1..65535", *redisPort, *port))
	}
	dir, err := filepath.Abs(*state)
	if err != nil {
		problems = append(problems, fmt.Errorf("-state %s: %w", *state, err))
	}
	if err := errors.Join(problems...); err != nil {
		fmt.Fprintf(stderr, "runfunction: invalid configuration:\n%v\n", err)
		return 2
	}
	addr := getenv("REDIS_ADDR")
	if addr == "" {
		srv, err := redisserver.Start(ctx, redisserver.Options{Dir: filepath.Join(dir, "redis"), Port: *redisPort})
		if err != nil {
			if errors.Is(err, redisserver.ErrPortLost) {
				fmt.Fprintf(stderr, "runfunction: port %d is taken by another process (a Redis left running?), so no redis-server of ours can listen there: stop it, pick another port (make run-function REDIS_PORT=%d), or use it on purpose with REDIS_ADDR=127.0.0.1:%d\n(%v)\n", *redisPort, *redisPort+1, *redisPort, err)
				return 2
			}
			fmt.Fprintf(stderr, "runfunction: %v\n", err)
			return 1
		}
		defer srv.Stop()
		addr = srv.Addr()
	}
	bin := filepath.Join(dir, "bin", "cloudsql-cache-function")
	if err := functionproc.Build(ctx, *module, bin); err != nil {
		fmt.Fprintf(stderr, "runfunction: %v\n", err)
		return 1
	}
	env := []string{"REDIS_ADDR=" + addr}
	if getenv("DEAD_LETTER_TOPIC") == "" {
		// Locally, bad messages are answered 400 instead of being published to a dead-letter topic.
		env = append(env, "DEAD_LETTER_TOPIC=nack")
	}
	fn, err := functionproc.Start(ctx, bin, *port, env, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "runfunction: %v (the function's own messages are above)\n", err)
		return 2
	}
	defer fn.Stop()
	fmt.Fprintf(stdout, `cloudsql-cache function on %s, Redis at %s. Try:
  data=$(base64 -w0 testdata/debezium/mysql-create-noschema-serde-testfixture.json)
  curl -s %s -d '{"message":{"messageId":"1","orderingKey":"{\"id\":1004}","data":"'"$data"'"}}'
  redis-cli -p %s GET inventory.customers:1004
Ctrl-C stops it.
`, fn.URL(), addr, fn.URL(), portOf(addr))
	if ready != nil {
		ready(fn.URL())
	}
	<-ctx.Done()
	return 0
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return strconv.Quote(addr)
}
