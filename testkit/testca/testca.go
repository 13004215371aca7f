// Package testca makes throwaway certificate authorities and the server
// certificates they sign, as PEM files, for tests of TLS connections to a
// broker on loopback. Nothing it makes is fit for anything but a test: the
// keys are written unencrypted.
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// validity is how long the certificates are valid, from an hour ago (to
// allow for clock skew between the JVM and Go, which share one clock here
// anyway).
const validity = 7 * 24 * time.Hour

// CA is a certificate authority: a self-signed ECDSA P-256 certificate and
// its key.
type CA struct {
	// CertFile is the CA certificate as PEM, what clients trust.
	CertFile string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
}

// Cert is a certificate a CA signed, with its key.
type Cert struct {
	// CertFile is the PEM certificate followed by the CA's (the chain).
	CertFile string
	// KeyFile is the PEM PKCS#8 private key ("PRIVATE KEY"), unencrypted.
	KeyFile string
	// TLS is the certificate and key for a crypto/tls server.
	TLS tls.Certificate
}

// New makes a CA named name and writes its certificate to
// <dir>/<name>.pem.
func New(dir, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(name)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	ca := &CA{CertFile: filepath.Join(dir, name+".pem"), cert: cert, key: key}
	if err := writePEM(ca.CertFile, pemBlock("CERTIFICATE", der)); err != nil {
		return nil, err
	}
	return ca, nil
}

// Issue makes a server certificate for hosts (IP addresses and DNS names)
// signed by ca, and writes it with ca's certificate to <dir>/<name>.pem and
// its key to <dir>/<name>-key.pem.
func (ca *CA) Issue(dir, name string, hosts ...string) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(name)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	chain := append(pemBlock("CERTIFICATE", der), pemBlock("CERTIFICATE", ca.cert.Raw)...)
	keyPEM := pemBlock("PRIVATE KEY", pkcs8)
	c := &Cert{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+"-key.pem")}
	if err := writePEM(c.CertFile, chain); err != nil {
		return nil, err
	}
	if err := writePEM(c.KeyFile, keyPEM); err != nil {
		return nil, err
	}
	if c.TLS, err = tls.X509KeyPair(chain, keyPEM); err != nil {
		return nil, fmt.Errorf("testca: %w", err)
	}
	return c, nil
}

// template is the common part of every certificate: a random serial
// number, the subject name and the validity period.
func template(name string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"millrace tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
	}, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writePEM(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("testca: %w", err)
	}
	return nil
}
