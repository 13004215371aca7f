package testkit

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/testkit/realkafka"
	"github.com/millrace/millrace/testkit/testca"
	"github.com/millrace/millrace/transport"
)

// secureUser is the SCRAM user of the secure backends.
const secureUser = "millrace"

// SecureEmbedded starts an in-memory embedded broker for one test whose
// listener is SASL_SSL: TLS with a certificate for 127.0.0.1 signed by a
// CA written to t.TempDir(), and one SCRAM-SHA-512 user with a random
// password. Its Security holds the CA file and the user. It is closed when
// the test ends.
func SecureEmbedded(t testing.TB) Backend {
	t.Helper()
	dir := t.TempDir()
	ca, err := testca.New(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(dir, "embedded", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	password := randomPassword(t)
	b, err := broker.Start(broker.Config{
		Users: []broker.User{{Mechanism: transport.SASLSCRAMSHA512, Username: secureUser, Password: password}},
		TLS:   &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return Backend{Name: "embedded-scram", Brokers: []string{b.Addr()}, Security: &transport.Security{
		TLS:  &transport.TLS{CAFile: ca.CertFile},
		SASL: &transport.SASL{Mechanism: transport.SASLSCRAMSHA512, Username: secureUser, Password: password},
	}}
}

func randomPassword(t testing.TB) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// SecureRealKafka returns a real Apache Kafka backend whose clients'
// listener is SASL_SSL with one SCRAM-SHA-512 user (see
// realkafka.Options.SASLSSL): a single-node broker started once for this
// test binary, on first use, and stopped by [Main]. Its Security holds the
// broker's CA file and the user. Where Java or Maven is missing the test
// is skipped with the reason, except under CI=true, where it fails.
func SecureRealKafka(t testing.TB) Backend {
	t.Helper()
	return sharedSecure.get(t, startSharedSecure)
}

func startSharedSecure(s *sharedBroker) {
	b, ok := s.start(realkafka.Options{SASLSSL: &realkafka.SecureOptions{Mechanism: realkafka.SCRAMSHA512, Username: secureUser}})
	if !ok {
		return
	}
	fmt.Fprintf(os.Stderr, "testkit: real Kafka %s (SASL_SSL) started on %s in %s\n", b.Version(), b.Addr(), b.StartupTime().Round(time.Millisecond))
	u := b.SASLSSL()
	s.backend = Backend{Name: "kafka-" + b.Version() + "-sasl-ssl", Brokers: []string{b.Addr()}, Security: &transport.Security{
		TLS:  &transport.TLS{CAFile: b.CAFile()},
		SASL: &transport.SASL{Mechanism: u.Mechanism, Username: u.Username, Password: u.Password},
	}}
}

// SharedSecureRealKafka returns the broker SecureRealKafka started, or nil
// when it has not started one (its InternalAddr is a PLAINTEXT listener for
// Kafka's tools).
func SharedSecureRealKafka() *realkafka.Broker { return sharedSecure.broker }

// SecureBackends returns every secure backend: the embedded broker with
// SCRAM over TLS (new for this test) and real Kafka with SASL_SSL (see
// [SecureRealKafka]; left out under MILLRACE_SKIP_KAFKA=1 outside CI, as in
// [Backends]).
func SecureBackends(t testing.TB) []Backend {
	t.Helper()
	bs := []Backend{SecureEmbedded(t)}
	if os.Getenv("MILLRACE_SKIP_KAFKA") == "1" && os.Getenv("CI") != "true" {
		t.Log("SKIPPING real-Kafka backend: MILLRACE_SKIP_KAFKA=1")
		return bs
	}
	return append(bs, SecureRealKafka(t))
}

// ForEachSecureBackend runs fn as a subtest on each secure backend.
func ForEachSecureBackend(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range SecureBackends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// WithSecurity returns b reached with s instead (nil: PLAINTEXT), for
// tests of clients that cannot get in.
func (b Backend) WithSecurity(s *transport.Security) Backend {
	b.Security = s
	return b
}

// WithPassword returns b with the SASL user's password replaced, for tests
// of refused credentials. It panics when b has no SASL user.
func (b Backend) WithPassword(password string) Backend {
	if b.Security == nil || b.Security.SASL == nil {
		panic("testkit: WithPassword on backend " + b.Name + ", which has no SASL user")
	}
	s, sasl := *b.Security, *b.Security.SASL
	sasl.Password = password
	s.SASL = &sasl
	b.Security = &s
	return b
}

// WithCAFile returns b with its clients trusting only the CA in caFile
// (PEM), for tests of a broker certificate that does not verify; see
// [ThrowawayCA]. It panics when b has no TLS.
func (b Backend) WithCAFile(caFile string) Backend {
	if b.Security == nil || b.Security.TLS == nil {
		panic("testkit: WithCAFile on backend " + b.Name + ", which has no TLS")
	}
	s, tc := *b.Security, *b.Security.TLS
	tc.CAFile = caFile
	s.TLS = &tc
	b.Security = &s
	return b
}

// ThrowawayCA writes a new CA certificate, which has signed no broker's
// certificate, to t.TempDir() and returns its path: a CA file for
// [Backend.WithCAFile] that no broker's certificate verifies against.
func ThrowawayCA(t testing.TB) string {
	t.Helper()
	ca, err := testca.New(t.TempDir(), "throwaway-ca")
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertFile
}
