package mysqlenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDSN(t *testing.T) {
	dsn, err := DSN("", env(map[string]string{"MYSQL_ADDR": "10.0.0.5:3306", "MYSQL_USER": "admin", "MYSQL_PASSWORD": "p@ss:/", "MYSQL_TLS": "skip-verify"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil || cfg.Addr != "10.0.0.5:3306" || cfg.User != "admin" || cfg.Passwd != "p@ss:/" || cfg.TLSConfig != "skip-verify" {
		t.Fatalf("%q: %+v %v", dsn, cfg, err)
	}
	if dsn, err := DSN("u@tcp(h:1)/", env(map[string]string{"MYSQL_DSN": "ignored@tcp(x:2)/"})); err != nil || dsn != "u@tcp(h:1)/" {
		t.Fatalf("the flag wins: %q %v", dsn, err)
	}
	if dsn, err := DSN("", env(nil)); err != nil || dsn != "" {
		t.Fatalf("nothing set: %q %v", dsn, err)
	}
	// Every problem at once, each naming its variable.
	_, err = DSN("", env(map[string]string{"MYSQL_ADDR": "nohost", "MYSQL_TLS": "maybe"}))
	for _, want := range []string{"MYSQL_ADDR: \"nohost\"", "MYSQL_USER: required", "MYSQL_TLS: \"maybe\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v\ndoes not say %q", err, want)
		}
	}
	if _, err := DSN("u@tcp(h:1)/", env(map[string]string{"MYSQL_ADDR": "h:1"})); err == nil || !strings.Contains(err.Error(), "MYSQL_ADDR: is set together") {
		t.Errorf("a DSN and MYSQL_ADDR: %v", err)
	}
	if _, err := DSN("", env(map[string]string{"MYSQL_ADDR": "h:1", "MYSQL_USER": "u", "MYSQL_CA_FILE": "/nonexistent/ca.pem"})); err == nil || !strings.Contains(err.Error(), "MYSQL_CA_FILE") {
		t.Errorf("a missing CA file: %v", err)
	}
}

// The CA configuration accepts a server whose certificate the CA signed, whatever name it carries
// (Cloud SQL's name the instance, not its IP), and refuses one signed by another CA.
func TestCAVerifiesTheChainNotTheName(t *testing.T) {
	dir := t.TempDir()
	caA, keyA := newCA(t, "A")
	caB, _ := newCA(t, "B")
	leaf := newLeaf(t, caA, keyA, "my-project:my-instance")
	for name, ca := range map[string]*x509.Certificate{"a.pem": caA, "b.pem": caB} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for file, wantOK := range map[string]bool{"a.pem": true, "b.pem": false} {
		cfg, err := caConfig(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		err = handshake(t, leaf, cfg)
		if (err == nil) != wantOK {
			t.Errorf("CA %s: handshake error %v, want ok=%v", file, err, wantOK)
		}
	}
}

func handshake(t *testing.T, leaf tls.Certificate, client *tls.Config) error {
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), client)
	if err == nil {
		c.Close()
	}
	return err
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func newLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
