// Package redisenv reads a Redis connection from the environment (REDIS_MODE, REDIS_ADDR,
// REDIS_PASSWORD, REDIS_TLS, REDIS_CA_FILE, …), so the function, the tools and the services that read
// the cache connect the same way, TLS and AUTH included. A reader needs one call:
//
//	rdb, err := redisenv.NewClient(os.Getenv) // Memorystore: REDIS_ADDR=<host>:6378 REDIS_TLS=true REDIS_CA_FILE=… REDIS_PASSWORD=…
//
// For a Redis Cluster (Memorystore for Redis Cluster, Memorystore for Valkey in cluster mode),
// REDIS_MODE=cluster and NewUniversalClient, which gives a *redis.ClusterClient seeded from REDIS_ADDR
// (the discovery endpoint, or nodes, comma-separated) with the same timeouts, TLS, AUTH and protocol.
package redisenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/cloudsql-cache/cloudsql-cache/envvar"
)

// The values of REDIS_MODE.
const (
	// ModeStandalone is one primary, reached at one address (Memorystore for Redis).
	ModeStandalone = "standalone"
	// ModeCluster is a Redis Cluster: keys spread over shards by hash slot, the client following the
	// cluster's slot map from the seed addresses.
	ModeCluster = "cluster"
)

// Config is a Redis connection.
type Config struct {
	// Mode is ModeStandalone or ModeCluster.
	Mode string
	// Addrs are the addresses of REDIS_ADDR: exactly one for a standalone Redis, the seeds of a cluster.
	Addrs []string
	// Addr is the first of Addrs: a standalone Redis's address.
	Addr     string
	Username string
	Password string
	DB       int
	TLS      bool
	CAFile   string
	Timeout  time.Duration
	// PoolSize is the most connections the client opens; 0: go-redis's default, 10 per GOMAXPROCS.
	PoolSize int
	// IAMAuth (REDIS_IAM_AUTH): authenticate every new connection with a Google OAuth2 access token
	// of the process's service account as the AUTH password, as Memorystore for Redis Cluster and
	// for Valkey require with IAM authentication.
	IAMAuth bool
	// TokenSource gives the tokens of IAMAuth; nil: Application Default Credentials (on Cloud Run,
	// the service's account), with the cloud-platform scope.
	TokenSource oauth2.TokenSource
}

// Vars returns the variables FromEnv reads, with their defaults and help.
func Vars() []envvar.Var {
	return []envvar.Var{
		{Name: "REDIS_MODE", Default: ModeStandalone, Help: "standalone (one primary: Memorystore for Redis) or cluster (Memorystore for Redis Cluster, Memorystore for Valkey in cluster mode)."},
		{Name: "REDIS_ADDR", Default: "", Help: "host:port of Redis (Memorystore: the instance's host and port 6378 with TLS); with REDIS_MODE=cluster the discovery endpoint or seed nodes, comma-separated. Required."},
		{Name: "REDIS_USERNAME", Default: "", Help: "ACL user name, if any."},
		{Name: "REDIS_PASSWORD", Default: "", Help: "AUTH string (Memorystore: the instance's auth string, from Secret Manager)."},
		{Name: "REDIS_DB", Default: "0", Help: "Database number."},
		{Name: "REDIS_TLS", Default: "false", Help: "true to connect with TLS (Memorystore in-transit encryption)."},
		{Name: "REDIS_CA_FILE", Default: "", Help: "PEM file of the CA that signed the server's certificate (Memorystore: the server CA); empty uses the system roots."},
		{Name: "REDIS_TIMEOUT", Default: "1s", Help: "Dial, read and write timeout of one Redis command."},
		{Name: "REDIS_POOL_SIZE", Default: "0", Help: "Most connections open to Redis at once; 0: go-redis's default of 10 per CPU. A server handling N requests at once needs N (the function: its Cloud Run concurrency), or requests wait for a connection and fail after REDIS_TIMEOUT."},
		{Name: "REDIS_IAM_AUTH", Default: "false", Help: "true to authenticate with the service account's Google access token (Memorystore for Redis Cluster and for Valkey with IAM authentication); REDIS_PASSWORD must then be empty."},
	}
}

// maxPoolSize bounds REDIS_POOL_SIZE: Memorystore for Redis accepts 65,000 clients per instance, shared
// by every instance of every client; Cloud Run's concurrency is at most 1,000 per instance.
const maxPoolSize = 10000

// FromEnv reads the connection. Its error holds every problem found, each naming the variable to fix.
func FromEnv(getenv func(string) string) (Config, error) {
	get := envvar.Lookup(Vars(), getenv)
	var problems envvar.Problems
	bad := problems.Add
	c := Config{Mode: get("REDIS_MODE"), Username: getenv("REDIS_USERNAME"), Password: getenv("REDIS_PASSWORD"), CAFile: get("REDIS_CA_FILE")}
	switch c.Mode {
	case ModeStandalone, ModeCluster:
	default:
		bad("REDIS_MODE", "%q is not %s (one primary, such as Memorystore for Redis) or %s (Memorystore for Redis Cluster, Memorystore for Valkey in cluster mode)", c.Mode, ModeStandalone, ModeCluster)
	}
	addr := get("REDIS_ADDR")
	if addr == "" {
		bad("REDIS_ADDR", "required: set it to the Redis host:port (for Memorystore with in-transit encryption, <host>:6378 and REDIS_TLS=true; for a cluster, its discovery endpoint)")
	} else {
		seen := map[string]bool{}
		for _, a := range strings.Split(addr, ",") {
			a = strings.TrimSpace(a)
			host, port, err := net.SplitHostPort(a)
			n, perr := strconv.Atoi(port)
			switch {
			case err != nil || host == "" || perr != nil || n < 1 || n > 65535:
				bad("REDIS_ADDR", "%q is not host:port", a)
			case seen[a]:
				bad("REDIS_ADDR", "names %s twice", a)
			}
			seen[a] = true
			c.Addrs = append(c.Addrs, a)
		}
		c.Addr = c.Addrs[0]
		if len(c.Addrs) > 1 && c.Mode == ModeStandalone {
			bad("REDIS_ADDR", "lists %d addresses, but a standalone Redis has one: give its host:port, or set REDIS_MODE=%s if these are a cluster's nodes", len(c.Addrs), ModeCluster)
		}
	}
	var err error
	if c.DB, err = strconv.Atoi(get("REDIS_DB")); err != nil || c.DB < 0 {
		bad("REDIS_DB", "%q is not a database number (0, 1, …)", get("REDIS_DB"))
	} else if c.DB != 0 && c.Mode == ModeCluster {
		bad("REDIS_DB", "is %d, but a cluster has only database 0: remove REDIS_DB or set it to 0", c.DB)
	}
	if c.TLS, err = strconv.ParseBool(get("REDIS_TLS")); err != nil {
		bad("REDIS_TLS", "%q is not true or false", get("REDIS_TLS"))
	}
	if c.CAFile != "" {
		if !c.TLS {
			bad("REDIS_CA_FILE", "is set but REDIS_TLS is not true")
		} else if _, err := os.Stat(c.CAFile); err != nil {
			bad("REDIS_CA_FILE", "cannot read the CA file: %v", err)
		}
	}
	if c.PoolSize, err = strconv.Atoi(get("REDIS_POOL_SIZE")); err != nil || c.PoolSize < 0 || c.PoolSize > maxPoolSize {
		bad("REDIS_POOL_SIZE", "%q is not a connection count from 0 (go-redis's default) to %d", get("REDIS_POOL_SIZE"), maxPoolSize)
	}
	if c.IAMAuth, err = strconv.ParseBool(get("REDIS_IAM_AUTH")); err != nil {
		bad("REDIS_IAM_AUTH", "%q is not true or false", get("REDIS_IAM_AUTH"))
	} else if c.IAMAuth && (c.Password != "" || c.Username != "") {
		bad("REDIS_IAM_AUTH", "is true, so the access token is the password: leave REDIS_PASSWORD and REDIS_USERNAME empty")
	}
	if c.Timeout, err = time.ParseDuration(get("REDIS_TIMEOUT")); err != nil || c.Timeout <= 0 {
		bad("REDIS_TIMEOUT", "%q is not a positive duration such as 500ms or 1s; a dead Redis would otherwise hang every call", get("REDIS_TIMEOUT"))
	}
	return c, problems.Err()
}

// ErrCluster is the error of Options and NewClient for a cluster's configuration: a client of one
// Redis would get MOVED for most keys.
var ErrCluster = errors.New("REDIS_MODE=cluster: Options and NewClient make a client of one Redis (it would get MOVED for most keys of a cluster): use NewUniversalClient, or point REDIS_ADDR at a standalone Redis with REDIS_MODE=standalone")

// Options returns go-redis options for c: every timeout bounded by c.Timeout, TLS with the given CA.
// For a cluster (Mode ModeCluster) it returns ErrCluster: see ClusterOptions.
func (c Config) Options() (*redis.Options, error) {
	if c.Mode == ModeCluster {
		return nil, ErrCluster
	}
	o := &redis.Options{
		Addr:                  c.Addr,
		PoolSize:              c.PoolSize,
		Username:              c.Username,
		Password:              c.Password,
		DB:                    c.DB,
		DialTimeout:           c.Timeout,
		ReadTimeout:           c.Timeout,
		WriteTimeout:          c.Timeout,
		PoolTimeout:           c.Timeout,
		ContextTimeoutEnabled: true,
		// RESP2: nothing here uses RESP3, and on RESP3 connections go-redis looks for pending push
		// notifications around every command, which cost about 5% of the function's CPU per event.
		Protocol: 2,
		// The apply script is idempotent (version-guarded), so one quick retry on a broken connection is
		// safe; more would only delay the error that lets Pub/Sub back off.
		MaxRetries: 1,
	}
	var err error
	o.TLSConfig, err = c.tlsConfig(c.Addr[:strings.LastIndexByte(c.Addr, ':')])
	if err == nil {
		o.CredentialsProviderContext, err = c.iamCredentials()
	}
	return o, err
}

// iamCredentials is the credentials provider of IAMAuth (nil without it): the current access token,
// refreshed by the token source before it expires, for each new connection's AUTH.
func (c Config) iamCredentials() (func(context.Context) (string, string, error), error) {
	if !c.IAMAuth {
		return nil, nil
	}
	ts := c.TokenSource
	if ts == nil {
		var err error
		if ts, err = google.DefaultTokenSource(context.Background(), "https://www.googleapis.com/auth/cloud-platform"); err != nil {
			return nil, fmt.Errorf("REDIS_IAM_AUTH: no Google credentials for the access token: %w", err)
		}
	}
	ts = oauth2.ReuseTokenSource(nil, ts)
	return func(context.Context) (string, string, error) {
		t, err := ts.Token()
		if err != nil {
			return "", "", fmt.Errorf("redisenv: IAM access token: %w", err)
		}
		return "", t.AccessToken, nil
	}, nil
}

// tlsConfig is the TLS configuration of c (nil without TLS): the CA of CAFile (else the system roots),
// and the certificate checked against serverName, or against each node's own host when serverName is
// empty (Go's TLS dialer takes the host of the address dialled).
func (c Config) tlsConfig(serverName string) (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("REDIS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("REDIS_CA_FILE %s holds no PEM certificate", c.CAFile)
		}
		t.RootCAs = pool
	}
	return t, nil
}

// ClusterOptions returns go-redis cluster options for c (Mode ModeCluster): the seeds of Addrs, and
// the timeouts, AUTH, TLS and protocol of Options, TLS checking each node's certificate against the
// address the cluster gives for it.
func (c Config) ClusterOptions() (*redis.ClusterOptions, error) {
	if c.Mode != ModeCluster {
		return nil, fmt.Errorf("REDIS_MODE=%s: ClusterOptions is for REDIS_MODE=%s", c.Mode, ModeCluster)
	}
	o := &redis.ClusterOptions{
		Addrs:                 c.Addrs,
		PoolSize:              c.PoolSize, // per node: a request's keys are on one node at a time
		Username:              c.Username,
		Password:              c.Password,
		DialTimeout:           c.Timeout,
		ReadTimeout:           c.Timeout,
		WriteTimeout:          c.Timeout,
		PoolTimeout:           c.Timeout,
		ContextTimeoutEnabled: true,
		// RESP2, as Options says.
		Protocol: 2,
		// Retries: go-redis's own for a cluster (a network error is retried on the same node once, then
		// the slot map is consulted again; MOVED and ASK are followed up to 3 times), each attempt bounded
		// by the timeouts and all of them by the caller's context.
	}
	var err error
	o.TLSConfig, err = c.tlsConfig("")
	if err == nil {
		o.CredentialsProviderContext, err = c.iamCredentials()
	}
	return o, err
}

// NewUniversalClient reads the REDIS_* variables from getenv (FromEnv) and returns a client for them
// (Config.NewUniversalClient). Its error names every variable to fix.
func NewUniversalClient(getenv func(string) string) (redis.UniversalClient, error) {
	c, err := FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return c.NewUniversalClient()
}

// NewUniversalClient returns the client for c's mode: a *redis.Client as NewClient makes for a
// standalone Redis, a *redis.ClusterClient with ClusterOptions for a cluster. A cluster client reloads
// the cluster's slot map whenever a command fails without a server's answer or with CLUSTERDOWN: go-redis
// by itself reloads it only on MOVED, or a minute after the last reload, so after a primary crashed it
// would keep sending that primary's slots to the dead address long after a replica took over. Like
// redis.NewClient it does not connect: the first command does (CheckServer at start-up finds out).
func (c Config) NewUniversalClient() (redis.UniversalClient, error) {
	if c.Mode != ModeCluster {
		return c.NewClient()
	}
	o, err := c.ClusterOptions()
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClusterClient(o)
	rdb.AddHook(reloadHook{rdb})
	return rdb, nil
}

// reloadHook asks a cluster client for a new slot map after a failure that may mean the map is out
// of date (go-redis coalesces the reloads, at most one every 200 ms).
type reloadHook struct{ rdb *redis.ClusterClient }

func (reloadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.maybeReload(ctx, err)
		return err
	}
}

func (h reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			h.maybeReload(ctx, cmd.Err())
		}
		h.maybeReload(ctx, err)
		return err
	}
}

func (h reloadHook) maybeReload(ctx context.Context, err error) {
	if staleTopology(err) {
		h.rdb.ReloadState(ctx)
	}
}

// staleTopology reports whether err may come from an out-of-date slot map: no answer from the node
// (refused, reset, timed out: a primary that is gone), or the cluster saying it is down for the slot.
// A server's answer (redis.Nil, a script's error, WRONGTYPE, …) and the caller's own cancellation say
// nothing about the map.
func staleTopology(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, redis.ErrClosed) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		msg := err.Error()
		return strings.HasPrefix(msg, "CLUSTERDOWN") || strings.HasPrefix(msg, "MASTERDOWN")
	}
	return true
}

// CheckServer asks the server behind rdb whether it is a cluster node (INFO cluster) and returns an
// error naming REDIS_MODE when that is not c's mode: a standalone client of a cluster gets MOVED for
// most keys, and a cluster client of a standalone Redis fails on its first command.
func (c Config) CheckServer(ctx context.Context, rdb redis.UniversalClient) error {
	info, err := rdb.Info(ctx, "cluster").Result()
	if err != nil {
		return fmt.Errorf("redisenv: INFO cluster: %w", err)
	}
	enabled := strings.Contains(info, "cluster_enabled:1")
	switch {
	case enabled && c.Mode != ModeCluster:
		return fmt.Errorf("REDIS_MODE: is %s but %s is a Redis Cluster node (cluster_enabled:1): set REDIS_MODE=%s", c.Mode, c.Addr, ModeCluster)
	case !enabled && c.Mode == ModeCluster:
		return fmt.Errorf("REDIS_MODE: is %s but %s is not a cluster node (cluster_enabled:0): set REDIS_MODE=%s, or point REDIS_ADDR at the cluster", c.Mode, c.Addr, ModeStandalone)
	}
	return nil
}

// NewClient reads the REDIS_* variables from getenv (FromEnv) and returns a client for them
// (Config.NewClient). Its error names every variable to fix.
func NewClient(getenv func(string) string) (*redis.Client, error) {
	c, err := FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return c.NewClient()
}

// NewClient returns a client for c with Options: AUTH, TLS verified against CAFile (or the system
// roots) for the host of Addr, every call bounded by Timeout and by its context's deadline
// (ContextTimeoutEnabled, which readcache requires so that its RedisTimeout bounds each call). Like
// redis.NewClient it does not connect: the first command does (Ping it to find out at start-up). For
// a cluster it returns ErrCluster (NewUniversalClient serves both).
func (c Config) NewClient() (*redis.Client, error) {
	o, err := c.Options()
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}
