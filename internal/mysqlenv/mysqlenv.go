// Package mysqlenv builds the MySQL connection of the operator tools from the environment: a DSN in
// MYSQL_DSN, or its parts in MYSQL_ADDR, MYSQL_USER and MYSQL_PASSWORD (what the Terraform module's
// Cloud Run jobs set, the password from Secret Manager), with TLS from MYSQL_TLS and MYSQL_CA_FILE.
package mysqlenv

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/cloudsql-cache/cloudsql-cache/envvar"
)

// Vars returns the variables DSN reads.
func Vars() []envvar.Var {
	return []envvar.Var{
		{Name: "MYSQL_DSN", Help: "go-sql-driver/mysql DSN, e.g. user:pass@tcp(10.0.0.5:3306)/; or the parts below."},
		{Name: "MYSQL_ADDR", Help: "host:port of MySQL, when MYSQL_DSN is not set."},
		{Name: "MYSQL_USER", Help: "MySQL user, with MYSQL_ADDR."},
		{Name: "MYSQL_PASSWORD", Help: "MySQL password, with MYSQL_ADDR (Cloud Run: from Secret Manager)."},
		{Name: "MYSQL_TLS", Default: "false", Help: "with MYSQL_ADDR: false, true (verify against the system roots), or skip-verify (encrypted, unverified). Cloud SQL with ssl_mode ENCRYPTED_ONLY needs TLS: set MYSQL_CA_FILE."},
		{Name: "MYSQL_CA_FILE", Help: "PEM of the server's CA (Cloud SQL: the instance's server CA): TLS whose certificate chain is verified against it (Cloud SQL certificates do not name the private IP, so the host name is not checked)."},
	}
}

// DSN returns the DSN given (a -dsn flag), else the one the environment describes. It returns "" and
// no error when nothing is set; its error names every variable to fix.
func DSN(given string, getenv func(string) string) (string, error) {
	get := envvar.Lookup(Vars(), getenv)
	var problems envvar.Problems
	dsn := given
	if dsn == "" {
		dsn = get("MYSQL_DSN")
	}
	addr := get("MYSQL_ADDR")
	ca := get("MYSQL_CA_FILE")
	if dsn != "" {
		if addr != "" {
			problems.Add("MYSQL_ADDR", "is set together with a DSN (-dsn or MYSQL_DSN): set one of them")
		}
		if ca != "" {
			if err := registerCA(ca); err != nil {
				problems.AddErr(err)
			} else if cfg, err := mysql.ParseDSN(dsn); err == nil && cfg.TLSConfig == "" {
				cfg.TLSConfig = tlsName(ca)
				dsn = cfg.FormatDSN()
			}
		}
		return dsn, problems.Err()
	}
	if addr == "" {
		return "", problems.Err()
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		problems.Add("MYSQL_ADDR", "%q is not host:port", addr)
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", addr
	cfg.User, cfg.Passwd = get("MYSQL_USER"), getenv("MYSQL_PASSWORD")
	if cfg.User == "" {
		problems.Add("MYSQL_USER", "required with MYSQL_ADDR")
	}
	switch t := strings.ToLower(get("MYSQL_TLS")); {
	case ca != "":
		if err := registerCA(ca); err != nil {
			problems.AddErr(err)
		}
		cfg.TLSConfig = tlsName(ca)
	case t == "false" || t == "true" || t == "skip-verify":
		cfg.TLSConfig = t
	default:
		problems.Add("MYSQL_TLS", "%q is not false, true or skip-verify", get("MYSQL_TLS"))
	}
	if err := problems.Err(); err != nil {
		return "", err
	}
	return cfg.FormatDSN(), nil
}

var registered sync.Map // CA file → registered TLS config name

func tlsName(caFile string) string { return "cloudsql-cache-ca-" + caFile }

// registerCA registers caConfig(caFile) with the driver under tlsName(caFile).
func registerCA(caFile string) error {
	if _, ok := registered.Load(caFile); ok {
		return nil
	}
	cfg, err := caConfig(caFile)
	if err != nil {
		return err
	}
	if err := mysql.RegisterTLSConfig(tlsName(caFile), cfg); err != nil {
		return fmt.Errorf("MYSQL_CA_FILE: %w", err)
	}
	registered.Store(caFile, true)
	return nil
}

// caConfig is a TLS configuration that verifies the server's certificate chain against the CA in
// caFile without checking the host name: Cloud SQL's server certificates name the instance, not the
// private IP the tools connect to.
func caConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("MYSQL_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("MYSQL_CA_FILE: %s holds no PEM certificate", caFile)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is verified below; only the host name check is skipped.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("mysqlenv: the server sent no certificate")
			}
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return fmt.Errorf("mysqlenv: server certificate: %w", err)
				}
				certs[i] = c
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err != nil {
				return fmt.Errorf("mysqlenv: the server certificate is not signed by MYSQL_CA_FILE's CA: %w", err)
			}
			return nil
		},
	}, nil
}
