// Package redisenv reads a Redis connection from the environment (REDIS_ADDR, REDIS_PASSWORD,
// REDIS_TLS, REDIS_CA_FILE, …), so the function, the tools and the services that read the cache
// connect the same way, TLS and AUTH included. A reader needs one call:
//
//	rdb, err := redisenv.NewClient(os.Getenv) // Memorystore: REDIS_ADDR=<host>:6378 REDIS_TLS=true REDIS_CA_FILE=… REDIS_PASSWORD=…
package redisenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/envvar"
)

// Config is a Redis connection.
type Config struct {
	Addr     string
	Username string
	Password string
	DB       int
	TLS      bool
	CAFile   string
	Timeout  time.Duration
}

// Vars returns the variables FromEnv reads, with their defaults and help.
func Vars() []envvar.Var {
	return []envvar.Var{
		{Name: "REDIS_ADDR", Default: "", Help: "host:port of Redis (Memorystore: the instance's host and port 6378 with TLS). Required."},
		{Name: "REDIS_USERNAME", Default: "", Help: "ACL user name, if any."},
		{Name: "REDIS_PASSWORD", Default: "", Help: "AUTH string (Memorystore: the instance's auth string, from Secret Manager)."},
		{Name: "REDIS_DB", Default: "0", Help: "Database number."},
		{Name: "REDIS_TLS", Default: "false", Help: "true to connect with TLS (Memorystore in-transit encryption)."},
		{Name: "REDIS_CA_FILE", Default: "", Help: "PEM file of the CA that signed the server's certificate (Memorystore: the server CA); empty uses the system roots."},
		{Name: "REDIS_TIMEOUT", Default: "1s", Help: "Dial, read and write timeout of one Redis command."},
	}
}

// FromEnv reads the connection. Its error holds every problem found, each naming the variable to fix.
func FromEnv(getenv func(string) string) (Config, error) {
	get := envvar.Lookup(Vars(), getenv)
	var problems envvar.Problems
	bad := problems.Add
	c := Config{Addr: get("REDIS_ADDR"), Username: getenv("REDIS_USERNAME"), Password: getenv("REDIS_PASSWORD"), CAFile: get("REDIS_CA_FILE")}
	if c.Addr == "" {
		bad("REDIS_ADDR", "required: set it to the Redis host:port (for Memorystore with in-transit encryption, <host>:6378 and REDIS_TLS=true)")
	} else if i := strings.LastIndexByte(c.Addr, ':'); i <= 0 || i == len(c.Addr)-1 {
		bad("REDIS_ADDR", "%q is not host:port", c.Addr)
	}
	var err error
	if c.DB, err = strconv.Atoi(get("REDIS_DB")); err != nil || c.DB < 0 {
		bad("REDIS_DB", "%q is not a database number (0, 1, …)", get("REDIS_DB"))
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
	if c.Timeout, err = time.ParseDuration(get("REDIS_TIMEOUT")); err != nil || c.Timeout <= 0 {
		bad("REDIS_TIMEOUT", "%q is not a positive duration such as 500ms or 1s; a dead Redis would otherwise hang every call", get("REDIS_TIMEOUT"))
	}
	return c, problems.Err()
}

// Options returns go-redis options for c: every timeout bounded by c.Timeout, TLS with the given CA.
func (c Config) Options() (*redis.Options, error) {
	o := &redis.Options{
		Addr:                  c.Addr,
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
	if c.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.Addr[:strings.LastIndexByte(c.Addr, ':')]}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("REDIS_CA_FILE: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("REDIS_CA_FILE %s holds no PEM certificate", c.CAFile)
			}
			o.TLSConfig.RootCAs = pool
		}
	}
	return o, nil
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
// redis.NewClient it does not connect: the first command does (Ping it to find out at start-up).
func (c Config) NewClient() (*redis.Client, error) {
	o, err := c.Options()
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}
