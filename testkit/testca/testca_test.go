package testca_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/millrace/millrace/testkit/testca"
)

// A certificate verifies against its CA for each host it was issued for,
// and not for others, nor against another CA; its key is PKCS#8, as
// Kafka's PEM keystore wants.
func TestIssue_verifies_for_its_hosts_against_its_CA_only(t *testing.T) {
	dir := t.TempDir()
	ca, err := testca.New(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testca.New(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(dir, "server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := func(file string) *x509.CertPool {
		pemBytes, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(pemBytes) {
			t.Fatalf("%s holds no certificate", file)
		}
		return p
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots(ca.CertFile)}); err != nil {
			t.Errorf("for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots(ca.CertFile)}); err == nil {
		t.Error("verified for example.com")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots(other.CertFile)}); err == nil {
		t.Error("verified against another CA")
	}
	keyPEM, err := os.ReadFile(cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file: want a PEM PRIVATE KEY block, got %v", block)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Fatalf("key is not PKCS#8: %v", err)
	}
}
