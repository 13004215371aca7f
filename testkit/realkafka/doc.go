// Package realkafka runs a real single-node Apache Kafka broker (KRaft mode,
// combined broker and controller) on loopback, for tests and manual use.
//
// The broker's jars come from Maven Central: [Fetch] generates a small pom.xml
// and runs Maven's dependency:copy-dependencies into a per-version cache
// directory (by default ~/.cache/millrace/kafka-<version>/libs). [Start]
// formats a fresh storage directory under os.TempDir(), starts
// "java -cp libs/* kafka.Kafka server.properties" on free 127.0.0.1 ports and
// waits until the broker is ready. [Broker.Stop] kills the JVM and removes
// its directory. For fault tests, [Broker.Terminate] (SIGTERM) and
// [Broker.Kill] (SIGKILL) take the broker down and keep its data, and
// [Broker.Restart] starts it again on the same ports and data.
//
// It needs java (17+) on PATH, and mvn on PATH for the first download of a
// version. When either is missing the returned error wraps [ErrNoJava] or
// [ErrNoMaven], so tests can skip outside CI:
//
//	b, err := realkafka.Start(ctx, realkafka.Options{})
//	if errors.Is(err, realkafka.ErrNoJava) || errors.Is(err, realkafka.ErrNoMaven) {
//		t.Skip(err)
//	}
//
// The JVM is started in its own process group with a parent-death signal
// (SIGKILL), so it does not outlive the Go process even when that process is
// killed. The package targets Linux; on other Unix systems the parent-death
// signal is not available.
//
// With Options.SASLSSL the clients' listener is SASL_SSL instead: Start
// makes a CA and a certificate for 127.0.0.1 in the broker's directory
// ([Broker.CAFile]) and creates a SCRAM user ([Broker.SASLSSL]) while
// formatting the storage; the brokers and the controller talk over
// PLAINTEXT listeners of their own ([Broker.InternalAddr]).
//
// For manual use, "go run ./testkit/realkafka/cmd/kafka" runs a broker in the
// foreground until interrupted.
package realkafka
