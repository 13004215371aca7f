package realkafka

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/millrace/millrace/testkit/testca"
)

// SCRAM mechanisms the SASL_SSL listener can enable (Kafka's
// sasl.enabled.mechanisms values).
const (
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
)

// DefaultUsername is the SCRAM user of a SASL_SSL broker when
// SecureOptions.Username is empty.
const DefaultUsername = "millrace"

// SecureOptions makes the broker's client listener SASL_SSL: TLS with a
// certificate that a CA made for this broker signed, and SCRAM
// authentication of one user. The zero value is ready to use.
type SecureOptions struct {
	// Mechanism is SCRAMSHA512 (the default) or SCRAMSHA256.
	Mechanism string
	// Username is the one SCRAM user; empty means DefaultUsername.
	Username string
	// Password is its password; empty means a random one. Neither may hold
	// whitespace or any of `,="[]` (StorageTool's --add-scram syntax).
	Password string
}

// withDefaults fills in the empty fields of o and checks it.
func (o SecureOptions) withDefaults() (SecureOptions, error) {
	if o.Mechanism == "" {
		o.Mechanism = SCRAMSHA512
	}
	if o.Username == "" {
		o.Username = DefaultUsername
	}
	if o.Password == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return o, err
		}
		o.Password = hex.EncodeToString(b)
	}
	if o.Mechanism != SCRAMSHA512 && o.Mechanism != SCRAMSHA256 {
		return o, fmt.Errorf("realkafka: SASL mechanism %q: want %s or %s", o.Mechanism, SCRAMSHA512, SCRAMSHA256)
	}
	for what, s := range map[string]string{"username": o.Username, "password": o.Password} {
		if strings.ContainsAny(s, " \t\r\n,=\"[]") {
			return o, fmt.Errorf("realkafka: SCRAM %s %q: whitespace and ,=\"[] are not allowed", what, s)
		}
	}
	return o, nil
}

// scramArg is StorageTool's --add-scram value that creates the user
// (KIP-900, Kafka 3.5 and later).
func (o SecureOptions) scramArg() string {
	return fmt.Sprintf("%s=[name=%s,password=%s]", o.Mechanism, o.Username, o.Password)
}

// secureListener is what server.properties needs for a SASL_SSL listener.
type secureListener struct {
	mechanism string
	keystore  string // PEM: the private key, then the certificate chain
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 and
// localhost in dir, and the PEM keystore Kafka reads (ssl.keystore.type=PEM,
// KIP-651, Kafka 2.7 and later: a PKCS#8 key followed by the chain). It
// returns the CA file and the keystore path.
func writeCerts(dir string) (caFile, keystore string, err error) {
	ca, err := testca.New(dir, "ca")
	if err != nil {
		return "", "", err
	}
	cert, err := ca.Issue(dir, "server", "127.0.0.1", "localhost")
	if err != nil {
		return "", "", err
	}
	key, err := os.ReadFile(cert.KeyFile)
	if err != nil {
		return "", "", err
	}
	chain, err := os.ReadFile(cert.CertFile)
	if err != nil {
		return "", "", err
	}
	keystore = filepath.Join(dir, "server-keystore.pem")
	if err := os.WriteFile(keystore, append(key, chain...), 0o600); err != nil {
		return "", "", err
	}
	return ca.CertFile, keystore, nil
}
