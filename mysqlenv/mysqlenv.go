// Package mysqlenv builds the MySQL connection of the read path and the tools from the environment
// (MYSQL_ADDR, MYSQL_USER, MYSQL_PASSWORD or MYSQL_PASSWORD_FILE, MYSQL_TLS, MYSQL_CA_FILE, … or a whole
// MYSQL_DSN), with TLS as Cloud SQL's ssl_mode ENCRYPTED_ONLY requires, and with the session settings
// readcache.CheckDSN requires (parseTime off, time_zone '+00:00'), so rows read from the database are
// encoded exactly as the apply function encodes them.
//
//	db, err := mysqlenv.Open(os.Getenv)
//
// TLS modes (MYSQL_TLS), as MySQL's --ssl-mode names them:
//   - disable: no TLS;
//   - require: encrypted, the server's certificate not checked (anyone on the path can pose as it);
//   - verify-ca: encrypted, the certificate chain verified against MYSQL_CA_FILE, the host name not
//     checked. This is the mode for Cloud SQL with its per-instance server CA: its server certificates
//     name the instance, not the private IP a service connects to;
//   - verify-identity: verify-ca, and the certificate must name the host (MYSQL_TLS_SERVER_NAME, else
//     MYSQL_ADDR's host); the system roots when MYSQL_CA_FILE is unset.
//
// Unset, MYSQL_TLS is verify-ca when MYSQL_CA_FILE is set and disable otherwise.
package mysqlenv

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/cloudsql-cache/cloudsql-cache/envvar"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

// TLSMode is how the connection uses TLS (MYSQL_TLS).
type TLSMode string

const (
	TLSDisable        TLSMode = "disable"
	TLSRequire        TLSMode = "require"
	TLSVerifyCA       TLSMode = "verify-ca"
	TLSVerifyIdentity TLSMode = "verify-identity"
)

// Config is a MySQL connection.
type Config struct {
	// DSN is a whole go-sql-driver/mysql DSN (MYSQL_DSN). When it is set, Addr, User, Password and
	// Database are empty; TLS still applies, and the DSN may then not set tls itself.
	DSN string
	// Addr is host:port; User, Password and Database the account and the default database ("" none).
	Addr, User, Password, Database string
	TLS                            TLSMode
	// CAFile is the PEM of the CA the server's certificate chains to (Cloud SQL: the instance's server
	// CA); ServerName the name verify-identity requires the certificate to carry.
	CAFile, ServerName string
	// ConnectTimeout bounds dialling and the TLS and MySQL handshakes.
	ConnectTimeout time.Duration
}

// Vars returns the variables FromEnv reads, with their defaults and help.
func Vars() []envvar.Var {
	return []envvar.Var{
		{Name: "MYSQL_ADDR", Help: "host:port of MySQL (Cloud SQL: the instance's private IP and 3306). Required unless MYSQL_DSN is set."},
		{Name: "MYSQL_USER", Help: "MySQL user (a reader needs SELECT on the cached tables). Required with MYSQL_ADDR."},
		{Name: "MYSQL_PASSWORD", Help: "The user's password (Cloud Run: a Secret Manager secret as an environment variable)."},
		{Name: "MYSQL_PASSWORD_FILE", Help: "A file holding the password instead (Cloud Run: a secret mounted as a file); one trailing newline is ignored."},
		{Name: "MYSQL_DATABASE", Help: "Default database; readcache names every table with its database and needs none."},
		{Name: "MYSQL_TLS", Help: "disable, require, verify-ca or verify-identity; unset: verify-ca when MYSQL_CA_FILE is set, else disable. Cloud SQL with ssl_mode ENCRYPTED_ONLY: verify-ca with its server CA."},
		{Name: "MYSQL_CA_FILE", Help: "PEM of the CA the server's certificate chains to (Cloud SQL: the instance's server CA)."},
		{Name: "MYSQL_TLS_SERVER_NAME", Help: "Name the server's certificate must carry with verify-identity; default MYSQL_ADDR's host."},
		{Name: "MYSQL_CONNECT_TIMEOUT", Default: "5s", Help: "Bound on dialling and the handshakes of a new connection."},
		{Name: "MYSQL_DSN", Help: "A whole go-sql-driver/mysql DSN instead of MYSQL_ADDR, MYSQL_USER, MYSQL_PASSWORD and MYSQL_DATABASE; without tls=, which MYSQL_TLS sets."},
	}
}

// WithDSN returns getenv as a command with a -dsn flag sees it: when dsn is set it stands for
// MYSQL_DSN and the parts a DSN replaces (MYSQL_ADDR, MYSQL_USER, MYSQL_PASSWORD, MYSQL_PASSWORD_FILE,
// MYSQL_DATABASE) read as unset, while MYSQL_TLS and MYSQL_CA_FILE still apply. An empty dsn returns
// getenv itself.
func WithDSN(dsn string, getenv func(string) string) func(string) string {
	if dsn == "" {
		return getenv
	}
	return func(name string) string {
		switch name {
		case "MYSQL_DSN":
			return dsn
		case "MYSQL_ADDR", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_PASSWORD_FILE", "MYSQL_DATABASE":
			return ""
		}
		return getenv(name)
	}
}

// FromEnv reads the connection. Its error holds every problem found, each naming the variable to fix.
func FromEnv(getenv func(string) string) (Config, error) {
	get := envvar.Lookup(Vars(), getenv)
	var problems envvar.Problems
	bad := problems.Add
	c := Config{
		DSN:        get("MYSQL_DSN"),
		Addr:       get("MYSQL_ADDR"),
		User:       get("MYSQL_USER"),
		Password:   getenv("MYSQL_PASSWORD"), // not trimmed: a password may end in a space
		Database:   get("MYSQL_DATABASE"),
		CAFile:     get("MYSQL_CA_FILE"),
		ServerName: get("MYSQL_TLS_SERVER_NAME"),
	}
	passwordFile := get("MYSQL_PASSWORD_FILE")
	if c.DSN != "" {
		for _, name := range []string{"MYSQL_ADDR", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_PASSWORD_FILE", "MYSQL_DATABASE"} {
			if get(name) != "" {
				bad(name, "is set together with MYSQL_DSN: give the connection as a DSN or in parts, not both")
			}
		}
		c.Addr, c.User, c.Password, c.Database, passwordFile = "", "", "", "", ""
		if cfg, err := mysql.ParseDSN(c.DSN); err != nil {
			bad("MYSQL_DSN", "not a go-sql-driver/mysql DSN: %v", err)
		} else if cfg.TLSConfig != "" {
			bad("MYSQL_DSN", "sets tls=%s: leave TLS to MYSQL_TLS and MYSQL_CA_FILE", cfg.TLSConfig)
		} else if _, err := mysqlrow.CheckDSN(c.DSN); err != nil {
			bad("MYSQL_DSN", "%v", err)
		}
	} else {
		if c.Addr == "" {
			bad("MYSQL_ADDR", "required: the database's host:port (Cloud SQL: the instance's private IP and 3306), or a whole DSN in MYSQL_DSN")
		} else if host, port, err := net.SplitHostPort(c.Addr); err != nil || host == "" || port == "" {
			bad("MYSQL_ADDR", "%q is not host:port", c.Addr)
		}
		if c.User == "" {
			bad("MYSQL_USER", "required: the MySQL user to connect as")
		}
	}
	if passwordFile != "" {
		if c.Password != "" {
			bad("MYSQL_PASSWORD_FILE", "is set together with MYSQL_PASSWORD: set one of them")
		} else if b, err := os.ReadFile(passwordFile); err != nil {
			bad("MYSQL_PASSWORD_FILE", "cannot read the password: %v", err)
		} else {
			c.Password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		}
	}
	switch m := TLSMode(strings.ToLower(get("MYSQL_TLS"))); m {
	case "":
		c.TLS = TLSDisable
		if c.CAFile != "" {
			c.TLS = TLSVerifyCA
		}
	case TLSDisable, TLSRequire, TLSVerifyCA, TLSVerifyIdentity:
		c.TLS = m
	default:
		bad("MYSQL_TLS", "%q is not disable, require, verify-ca or verify-identity", get("MYSQL_TLS"))
	}
	switch {
	case c.TLS == TLSVerifyCA && c.CAFile == "":
		bad("MYSQL_CA_FILE", "required with MYSQL_TLS=verify-ca: the PEM of the server's CA (Cloud SQL: the instance's server CA)")
	case (c.TLS == TLSDisable || c.TLS == TLSRequire) && c.CAFile != "":
		bad("MYSQL_CA_FILE", "is set but MYSQL_TLS=%s does not verify the server: use verify-ca", c.TLS)
	case c.CAFile != "":
		if _, err := readCA(c.CAFile); err != nil {
			bad("MYSQL_CA_FILE", "%v", err)
		}
	}
	if c.ServerName != "" && c.TLS != TLSVerifyIdentity {
		bad("MYSQL_TLS_SERVER_NAME", "is set but MYSQL_TLS is not verify-identity, the only mode that checks the name")
	}
	var err error
	if c.ConnectTimeout, err = time.ParseDuration(get("MYSQL_CONNECT_TIMEOUT")); err != nil || c.ConnectTimeout <= 0 {
		bad("MYSQL_CONNECT_TIMEOUT", "%q is not a positive duration such as 5s; an unreachable database would otherwise hang each new connection", get("MYSQL_CONNECT_TIMEOUT"))
	}
	return c, problems.Err()
}

// Open reads the connection from getenv (FromEnv) and opens it (Config.Open).
func Open(getenv func(string) string) (*sql.DB, error) {
	c, err := FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return c.Open()
}

// Open returns a *sql.DB for c. Like sql.Open, it does not connect: the first query does.
func (c Config) Open() (*sql.DB, error) {
	cfg, err := c.DriverConfig()
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysqlenv: %w", err)
	}
	return sql.OpenDB(conn), nil
}

// DriverConfig returns c as go-sql-driver/mysql's configuration, its TLS attached, with the session
// settings of readcache.CheckDSN.
func (c Config) DriverConfig() (*mysql.Config, error) {
	dsn := c.DSN
	if dsn == "" {
		cfg := mysql.NewConfig()
		cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", c.Addr, c.User, c.Password, c.Database
		dsn = cfg.FormatDSN()
	}
	dsn, err := mysqlrow.CheckDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysqlenv: %w", err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysqlenv: %w", err)
	}
	if cfg.TLS, err = c.tlsConfig(cfg.Addr); err != nil {
		return nil, err
	}
	cfg.Timeout = c.ConnectTimeout
	return cfg, nil
}

// FormatDSN returns c as a DSN string, for code that takes one (sql.Open, readcache.CheckDSN). Its TLS
// configuration is registered with the driver (mysql.RegisterTLSConfig) under a name derived from
// the mode, the CA's contents and the server name, which the DSN's tls parameter names.
func (c Config) FormatDSN() (string, error) {
	cfg, err := c.DriverConfig()
	if err != nil {
		return "", err
	}
	if cfg.TLS != nil {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00", c.TLS, cfg.TLS.ServerName)
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return "", fmt.Errorf("mysqlenv: MYSQL_CA_FILE: %w", err)
			}
			h.Write(pem)
		}
		name := "mysqlenv-" + hex.EncodeToString(h.Sum(nil)[:8])
		if err := mysql.RegisterTLSConfig(name, cfg.TLS); err != nil {
			return "", fmt.Errorf("mysqlenv: %w", err)
		}
		cfg.TLS, cfg.TLSConfig = nil, name
	}
	return cfg.FormatDSN(), nil
}

// tlsConfig is the client TLS configuration of c's mode for a server at addr (nil for disable).
func (c Config) tlsConfig(addr string) (*tls.Config, error) {
	var roots *x509.CertPool
	if c.CAFile != "" {
		var err error
		if roots, err = readCA(c.CAFile); err != nil {
			return nil, fmt.Errorf("mysqlenv: MYSQL_CA_FILE: %w", err)
		}
	}
	switch c.TLS {
	case TLSDisable, "":
		return nil, nil
	case TLSRequire:
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}, nil
	case TLSVerifyCA:
		if roots == nil {
			return nil, errors.New("mysqlenv: MYSQL_TLS=verify-ca needs MYSQL_CA_FILE")
		}
		return &tls.Config{
			MinVersion: tls.VersionTLS12,
			// Go's own verification always checks the name; verify-ca checks the chain alone, below.
			InsecureSkipVerify: true,
			VerifyConnection:   func(cs tls.ConnectionState) error { return verifyChain(cs, roots) },
		}, nil
	case TLSVerifyIdentity:
		name := c.ServerName
		if name == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("mysqlenv: verify-identity: no host in %q: %w", addr, err)
			}
			name = host
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: name}, nil
	}
	return nil, fmt.Errorf("mysqlenv: unknown TLS mode %q", c.TLS)
}

// verifyChain checks that the server's certificate chains to roots, for a server authentication.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("mysqlenv: the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return fmt.Errorf("mysqlenv: the server's certificate is not signed by MYSQL_CA_FILE's CA: %w", err)
	}
	return nil
}

func readCA(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
