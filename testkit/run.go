package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/router"
	"github.com/millrace/millrace/transport"
)

// Unique returns a short random suffix, for topic and pipeline names that
// must not collide between tests sharing a broker.
func Unique() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// LoadYAML parses and validates pipelines YAML text; problems fail the test.
func LoadYAML(t testing.TB, text string) *pipeline.Plan {
	t.Helper()
	f, err := pipeline.Parse("test.yaml", []byte(text), os.LookupEnv)
	if err != nil {
		t.Fatalf("pipelines YAML:\n%v", err)
	}
	return f.Plan()
}

// Running is a plan running in-process.
type Running struct {
	Plan   *pipeline.Plan
	cancel context.CancelFunc
	done   chan error
}

// RunOptions tune [Run].
type RunOptions struct {
	// Stages to run, as pipeline/stage ids; empty runs all.
	Stages []string
	// Logger; nil logs to the test log at warn level, or at the level
	// $MILLRACE_TEST_LOG names (debug, info, warn, error).
	Logger *slog.Logger
	// Configure, if set, may change the engine's config before it starts
	// (for example the clients' metadata refresh interval).
	Configure func(*router.EngineConfig)
}

// Run runs plan on the backend in-process until the test ends (or Stop),
// and waits until every stage is ready. A plan without Security gets the
// backend's, and the engine's client configs apply it.
func Run(t testing.TB, b Backend, plan *pipeline.Plan, opts RunOptions) *Running {
	t.Helper()
	stages, err := plan.Stages(opts.Stages...)
	if err != nil {
		t.Fatal(err)
	}
	log := opts.Logger
	if log == nil {
		level := slog.LevelWarn
		_ = level.UnmarshalText([]byte(os.Getenv("MILLRACE_TEST_LOG")))
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	}
	if plan.Security == nil {
		plan.Security = b.Security
	}
	ecfg := router.EngineConfig{Plan: plan, Stages: stages, Brokers: b.Brokers,
		StopTimeout: 10 * time.Second, Sarama: b.SaramaConfig(t), Logger: log}
	if b.Security != nil {
		// The engine's default producer config, with the backend's Security.
		ecfg.Producer = transport.NewProducerConfig(plan.ClientID)
		if err := transport.SetCompression(ecfg.Producer, plan.Compression); err != nil {
			t.Fatal(err)
		}
		if err := b.Security.Apply(ecfg.Producer); err != nil {
			t.Fatal(err)
		}
	}
	if opts.Configure != nil {
		opts.Configure(&ecfg)
	}
	eng, err := router.NewEngine(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{Plan: plan, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- eng.Run(ctx) }()
	t.Cleanup(func() { _ = r.Stop() })
	select {
	case <-eng.Ready():
	case err := <-r.done:
		r.done <- err
		t.Fatalf("engine stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("engine not ready after 60s")
	}
	return r
}

// Stop stops the engine gracefully and returns its error.
func (r *Running) Stop() error {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(60 * time.Second):
		return errors.New("engine did not stop within 60s")
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
