package filtertest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/filters"
)

// Suite is how to test one filter.
type Suite struct {
	// Config is the YAML config block the filter is built from; "" builds
	// it from the spec's Example.
	Config string
	// Cases are records to run the filter on, with what it must do.
	Cases []Case
	// Goroutines run every case at once in the concurrent check; default 8.
	Goroutines int
	// CancelWithin bounds how long a call may take to return once its
	// context ends; default 2s.
	CancelWithin time.Duration
	// CallTimeout bounds any other call; default 30s.
	CallTimeout time.Duration
	// Logger is the filter's [filters.Config] Logger; default one that
	// discards everything.
	Logger *slog.Logger
}

// Case is one record and what the filter must do with it.
type Case struct {
	Name string
	// In is the record. Run hands Process a copy whose byte slices it
	// watches; In itself is never given to the filter.
	In *filters.Message
	// Outcome is whether Process succeeds (the default) or fails.
	Outcome Outcome
	// Want, if not nil, is what Process must return on success, in order:
	// keys (nil and empty differ), payloads and headers (in order, nil and
	// empty values differ) compared byte for byte. An empty, non-nil Want
	// says the record is dropped.
	Want []*filters.Message
	// Check, if not nil, inspects what Process returned; an error fails the
	// case. It runs on every call of the case, concurrent ones too.
	Check func(out []*filters.Message, err error) error
	// Blocks says Process works on In until its context ends (a command
	// that sleeps, a jq program that never ends). Such a case runs only in
	// the cancellation check: cancelled, or past a deadline, Process must
	// return within Suite.CancelWithin with an error that is not permanent
	// (stopping and timing out are not the record's fault).
	Blocks bool
}

// Outcome is what a call of Process comes to.
type Outcome int

const (
	// Succeeds: Process returns no error.
	Succeeds Outcome = iota
	// Fails: Process returns an error that is not permanent, so the
	// engine retries the record.
	Fails
	// FailsPermanently: Process returns an error that [filters.IsPermanent]
	// recognises, so the engine quarantines the record at once.
	FailsPermanently
)

func (o Outcome) String() string {
	switch o {
	case Succeeds:
		return "success"
	case Fails:
		return "a retryable error"
	case FailsPermanently:
		return "a permanent error"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Run runs the conformance suite on the filter spec describes; see the
// package documentation for what it checks. It fails t for each problem,
// saying what the engine relies on.
func Run(t *testing.T, spec filters.Spec, s Suite) {
	t.Helper()
	s.setDefaults()
	t.Run("spec", func(t *testing.T) { checkSpec(t, spec) })
	f := build(t, spec, s.Config, s.Logger)
	if f == nil {
		return
	}
	if c, ok := f.(filters.Closer); ok {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	r := &runner{s: s, f: f}
	t.Run("cases", r.cases)
	t.Run("concurrent", r.concurrent)
	t.Run("cancellation", r.cancellation)
	t.Run("after return", r.afterReturn)
}

func (s *Suite) setDefaults() {
	if s.Goroutines <= 0 {
		s.Goroutines = 8
	}
	if s.CancelWithin <= 0 {
		s.CancelWithin = 2 * time.Second
	}
	if s.CallTimeout <= 0 {
		s.CallTimeout = 30 * time.Second
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
}

// checkSpec checks the spec and its Example.
func checkSpec(t *testing.T, spec filters.Spec) {
	if err := spec.Validate(); err != nil {
		t.Fatalf("the spec is not valid: %v", err)
	}
	if strings.TrimSpace(spec.Example) == "" && hasRequired(spec) {
		t.Errorf("filter %q has required config fields but no Example", spec.Name)
	}
	f := build(t, spec, "", slog.New(slog.DiscardHandler))
	if c, ok := f.(filters.Closer); ok {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func hasRequired(spec filters.Spec) bool {
	for _, f := range spec.Fields {
		if f.Required {
			return true
		}
	}
	return false
}

// build parses config ("": the spec's Example) and builds the filter, or
// fails t and returns nil.
func build(t *testing.T, spec filters.Spec, config string, logger *slog.Logger) (f filters.Filter) {
	t.Helper()
	what := "config"
	if config == "" {
		config, what = spec.Example, "the spec's Example"
	}
	var node *yaml.Node
	if strings.TrimSpace(config) != "" {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(config), &doc); err != nil {
			t.Fatalf("%s of filter %q is not YAML: %v", what, spec.Name, err)
		}
		if len(doc.Content) > 0 {
			node = doc.Content[0]
		}
	}
	cfg, _, problems := spec.Parse(node)
	for _, p := range problems {
		t.Errorf("%s of filter %q, line %d: %s", what, spec.Name, p.Line, p.Message)
	}
	if len(problems) > 0 {
		t.FailNow()
	}
	cfg.Pipeline, cfg.Stage = "filtertest", "filtertest"
	cfg.Logger = logger
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("building filter %q from %s panicked: %v", spec.Name, what, v)
		}
	}()
	f, err := spec.New(cfg)
	if err != nil {
		t.Fatalf("building filter %q from %s: %v", spec.Name, what, err)
	}
	if f == nil {
		t.Fatalf("building filter %q from %s returned a nil Filter", spec.Name, what)
	}
	return f
}

// result is what one call of Process came to.
type result struct {
	out      []*filters.Message
	err      error
	panicked any
}

// call runs Process and waits for it at most within; ok is false if it
// did not return by then (it is left running).
func call(ctx context.Context, f filters.Filter, msg *filters.Message, within time.Duration) (result, bool) {
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				r = result{panicked: v}
			}
			done <- r
		}()
		r.out, r.err = f.Process(ctx, msg)
	}()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case r := <-done:
		return r, true
	case <-timer.C:
		return result{}, false
	}
}
