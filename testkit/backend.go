package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/testkit/realkafka"
	"github.com/millrace/millrace/transport"
)

// Backend is a Kafka cluster a test runs against.
type Backend struct {
	// Name is "embedded" or "kafka-<version>"; for secure backends
	// "embedded-scram" or "kafka-<version>-sasl-ssl".
	Name    string
	Brokers []string
	// Security is how clients reach the brokers (TLS, SASL); nil is
	// PLAINTEXT. Every helper of this package that opens a client applies
	// it, and [Run] gives it to the plan.
	Security *transport.Security
}

// Embedded starts an in-memory embedded broker on a free loopback port for
// one test; it is closed when the test ends.
func Embedded(t testing.TB) Backend {
	t.Helper()
	b, err := broker.Start(broker.Config{})
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return Backend{Name: "embedded", Brokers: []string{b.Addr()}}
}

// sharedBroker is a real Kafka broker of this test binary, started on
// first use and stopped by [Main], with the count of tests that used it.
type sharedBroker struct {
	once    sync.Once
	broker  *realkafka.Broker
	backend Backend
	err     error
	skip    string

	mu    sync.Mutex
	tests int
}

// shared is the PLAINTEXT real Kafka broker ([RealKafka]), sharedSecure
// the SASL_SSL one ([SecureRealKafka]).
var shared, sharedSecure sharedBroker

// get starts the broker with start on first use and returns its backend,
// skipping or failing the test as RealKafka says.
func (s *sharedBroker) get(t testing.TB, start func(*sharedBroker)) Backend {
	t.Helper()
	s.once.Do(func() { start(s) })
	if s.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("real Kafka is required under CI=true: %s", s.skip)
		}
		t.Skipf("SKIPPING real-Kafka test: %s", s.skip)
	}
	if s.err != nil {
		t.Fatalf("real Kafka: %v", s.err)
	}
	s.mu.Lock()
	s.tests++
	s.mu.Unlock()
	return s.backend
}

// start starts a broker with opts and reports how it went; a missing Java
// or Maven is a reason to skip.
func (s *sharedBroker) start(opts realkafka.Options) (*realkafka.Broker, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := realkafka.Start(ctx, opts)
	switch {
	case errors.Is(err, realkafka.ErrNoJava) || errors.Is(err, realkafka.ErrNoMaven):
		s.skip = err.Error()
		return nil, false
	case err != nil:
		s.err = err
		return nil, false
	}
	s.broker = b
	return b, true
}

// stop stops the broker, if one started, saying how many tests used it.
func (s *sharedBroker) stop() {
	s.mu.Lock()
	n := s.tests
	s.mu.Unlock()
	if n > 0 {
		fmt.Fprintf(os.Stderr, "testkit: %d tests ran against real Kafka (%s)\n", n, s.backend.Name)
	}
	if s.broker != nil {
		if err := s.broker.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testkit: stop real Kafka %s: %v\n", s.backend.Name, err)
		}
	}
}

// RealKafka returns the real Apache Kafka backend: the cluster named by
// $KAFKA_BROKERS if set, else a single-node broker started once for this
// test binary (stopped by [Main]). Where Java or Maven is missing the test
// is skipped with the reason, except under CI=true, where it fails.
func RealKafka(t testing.TB) Backend {
	t.Helper()
	return shared.get(t, startShared)
}

func startShared(s *sharedBroker) {
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		v := os.Getenv("KAFKA_VERSION")
		if v == "" {
			v = "external"
		}
		s.backend = Backend{Name: "kafka-" + v, Brokers: strings.Split(env, ",")}
		return
	}
	b, ok := s.start(realkafka.Options{})
	if !ok {
		return
	}
	fmt.Fprintf(os.Stderr, "testkit: real Kafka %s started on %s in %s\n", b.Version(), b.Addr(), b.StartupTime().Round(time.Millisecond))
	s.backend = Backend{Name: "kafka-" + b.Version(), Brokers: []string{b.Addr()}}
}

// SharedRealKafka returns the broker RealKafka started, or nil when it uses
// $KAFKA_BROKERS or has not started one.
func SharedRealKafka() *realkafka.Broker { return shared.broker }

// Backends returns every backend: the embedded broker (new for this test)
// and real Kafka (see [RealKafka]).
func Backends(t testing.TB) []Backend {
	t.Helper()
	bs := []Backend{Embedded(t)}
	if os.Getenv("MILLRACE_SKIP_KAFKA") == "1" && os.Getenv("CI") != "true" {
		t.Log("SKIPPING real-Kafka backend: MILLRACE_SKIP_KAFKA=1")
		return bs
	}
	return append(bs, RealKafka(t))
}

// ForEachBackend runs fn as a subtest on each backend.
func ForEachBackend(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// Main runs the tests of a package and then stops the real Kafka brokers
// they shared, printing how many tests ran against each. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
func Main(m *testing.M) { os.Exit(MainCode(m)) }

// MainCode is [Main] for a TestMain with its own cleanup: it returns the
// exit code instead of exiting.
func MainCode(m *testing.M) int {
	code := m.Run()
	shared.stop()
	sharedSecure.stop()
	return code
}
