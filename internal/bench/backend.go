package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/testkit/realkafka"
)

// Backend kinds.
const (
	backendEmbedded  = "embedded broker"
	backendRealKafka = "real Kafka"
	backendExternal  = "external Kafka"
)

// errSkipBackend is wrapped by startBackend's error when a backend cannot
// run here (no Java for real Kafka); the run goes on without it.
var errSkipBackend = errors.New("backend not available")

// backend is a broker the cases run on.
type backend struct {
	// name is short, for headings: "embedded", "kafka 4.1.1", "external".
	name string
	// describe says what the broker is, for the report.
	describe string
	brokers  []string
	// pid is the broker's process when it runs as a child of the bench
	// (real Kafka's JVM), whose CPU time the drains sample; 0 when the
	// broker runs in the bench process (embedded) or elsewhere.
	pid int
	// inProcess says the broker runs in the bench process (embedded): its
	// CPU and allocations are in the bench's, not separable.
	inProcess bool
	// gcLog is the file the broker's JVM logs its collector pauses to
	// (jvmGCLogFlag), when the bench started it; else "".
	gcLog string
	close func()
}

// startBackend starts (or, for -brokers, just names) a broker of kind.
func startBackend(ctx context.Context, kind string, o options) (*backend, error) {
	switch kind {
	case backendEmbedded:
		b, err := broker.Start(broker.Config{Port: 0})
		if err != nil {
			return nil, fmt.Errorf("start the embedded broker: %w", err)
		}
		return &backend{
			name:     "embedded",
			describe: "embedded broker (franz-go kfake, in memory, in the bench process) on " + b.Addr(),
			brokers:  []string{b.Addr()}, inProcess: true, close: b.Close,
		}, nil
	case backendRealKafka:
		fmt.Fprintln(os.Stderr, "bench: starting real Kafka (testkit/realkafka; the first run downloads the jars)…")
		sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		// The broker as kafka-server-start.sh runs it (1 GiB heap, G1),
		// not testkit's fast-starting serial collector, whose pauses are
		// in the latency case's tail.
		// Its GC pauses are logged, for the latency case's report.
		gcDir, err := os.MkdirTemp("", "millrace-bench-gc-")
		if err != nil {
			return nil, err
		}
		gcLog := filepath.Join(gcDir, "gc.log")
		flags := append([]string{"-Xms1024m"}, realkafka.ServerJVMFlags...)
		b, err := realkafka.Start(sctx, realkafka.Options{HeapMB: 1024, JVMFlags: append(flags, jvmGCLogFlag(gcLog))})
		if err != nil {
			os.RemoveAll(gcDir)
		}
		if errors.Is(err, realkafka.ErrNoJava) || errors.Is(err, realkafka.ErrNoMaven) {
			return nil, fmt.Errorf("%w: %w", errSkipBackend, err)
		}
		if err != nil {
			return nil, fmt.Errorf("start real Kafka: %w", err)
		}
		fmt.Fprintf(os.Stderr, "bench: real Kafka %s ready on %s in %s\n", b.Version(), b.Addr(), b.StartupTime().Round(time.Millisecond))
		return &backend{
			name:     "kafka " + b.Version(),
			describe: fmt.Sprintf("Apache Kafka %s, single-node KRaft on loopback (testkit/realkafka; 1 GiB heap and G1, as kafka-server-start.sh runs it) on %s", b.Version(), b.Addr()),
			brokers:  []string{b.Addr()},
			pid:      b.PID(),
			gcLog:    gcLog,
			close: func() {
				if err := b.Stop(); err != nil {
					fmt.Fprintf(os.Stderr, "bench: stop real Kafka: %v\n", err)
				}
				os.RemoveAll(gcDir)
			},
		}, nil
	case backendExternal:
		brokers := strings.Split(o.brokers, ",")
		return &backend{
			name:     "external",
			describe: "Kafka at " + o.brokers + " (version not detected)",
			brokers:  brokers, close: func() {},
		}, nil
	}
	return nil, fmt.Errorf("unknown backend %q", kind)
}
