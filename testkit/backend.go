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
)

// Backend is a Kafka cluster a test runs against.
type Backend struct {
	// Name is "embedded" or "kafka-<version>".
	Name    string
	Brokers []string
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

// shared is the real Kafka broker of this test binary, started on first use.
var shared struct {
	once    sync.Once
	broker  *realkafka.Broker
	backend Backend
	err     error
	skip    string
}

// RealKafka returns the real Apache Kafka backend: the cluster named by
// $KAFKA_BROKERS if set, else a single-node broker started once for this
// test binary (stopped by [Main]). Where Java or Maven is missing the test
// is skipped with the reason, except under CI=true, where it fails.
func RealKafka(t testing.TB) Backend {
	t.Helper()
	shared.once.Do(startShared)
	if shared.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("real Kafka is required under CI=true: %s", shared.skip)
		}
		t.Skipf("SKIPPING real-Kafka test: %s", shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("real Kafka: %v", shared.err)
	}
	countRealKafka(t)
	return shared.backend
}

func startShared() {
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		v := os.Getenv("KAFKA_VERSION")
		if v == "" {
			v = "external"
		}
		shared.backend = Backend{Name: "kafka-" + v, Brokers: strings.Split(env, ",")}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := realkafka.Start(ctx, realkafka.Options{})
	switch {
	case errors.Is(err, realkafka.ErrNoJava) || errors.Is(err, realkafka.ErrNoMaven):
		shared.skip = err.Error()
		return
	case err != nil:
		shared.err = err
		return
	}
	fmt.Fprintf(os.Stderr, "testkit: real Kafka %s started on %s in %s\n", b.Version(), b.Addr(), b.StartupTime().Round(time.Millisecond))
	shared.broker = b
	shared.backend = Backend{Name: "kafka-" + b.Version(), Brokers: []string{b.Addr()}}
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

var realKafkaTests struct {
	sync.Mutex
	n int
}

func countRealKafka(t testing.TB) {
	realKafkaTests.Lock()
	realKafkaTests.n++
	realKafkaTests.Unlock()
}

// Main runs the tests of a package and then stops the real Kafka broker
// they shared, printing how many tests ran against it. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
func Main(m *testing.M) { os.Exit(MainCode(m)) }

// MainCode is [Main] for a TestMain with its own cleanup: it returns the
// exit code instead of exiting.
func MainCode(m *testing.M) int {
	code := m.Run()
	realKafkaTests.Lock()
	n := realKafkaTests.n
	realKafkaTests.Unlock()
	if n > 0 {
		fmt.Fprintf(os.Stderr, "testkit: %d tests ran against real Kafka (%s)\n", n, shared.backend.Name)
	}
	if shared.broker != nil {
		if err := shared.broker.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testkit: stop real Kafka: %v\n", err)
		}
	}
	return code
}
