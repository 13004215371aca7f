package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/millrace/millrace/filters"
	_ "github.com/millrace/millrace/filters/std" // jq
	"github.com/millrace/millrace/internal/admin"
	"github.com/millrace/millrace/internal/gctune"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/router"
)

// noopFilter is the name of the filter that passes records on unchanged.
const noopFilter = "bench-noop"

// waitFilter is the name of the filter that waits ioWait per record (an
// I/O-bound filter: a call to a slow service), then passes it on.
const waitFilter = "bench-wait"

// ioWait is how long waitFilter waits per record: a stage of concurrency c
// can move at most c/ioWait = c × 100 records/s.
const ioWait = 10 * time.Millisecond

func init() {
	filters.MustRegister(filters.Spec{
		Name:        noopFilter,
		Summary:     "Passes every record on unchanged (benchmarks only).",
		Description: "Returns the message it is given, so a stage with it measures millrace's transport and engine alone.",
		New: func(filters.Config) (filters.Filter, error) {
			return filters.Func(func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
				return []*filters.Message{m}, nil
			}), nil
		},
	})
	filters.MustRegister(filters.Spec{
		Name:        waitFilter,
		Summary:     "Waits 10 ms per record, then passes it on unchanged (benchmarks only).",
		Description: "Stands for an I/O-bound filter (a call to a service that answers in 10 ms): it holds its record on a timer that gives up when the call's context ends, using no CPU while it waits.",
		New: func(filters.Config) (filters.Filter, error) {
			return filters.Func(func(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
				t := time.NewTimer(ioWait)
				defer t.Stop()
				select {
				case <-t.C:
					return []*filters.Message{m}, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}), nil
		},
	})
}

// stageYAML is the filter and config lines of one stage in pipelines.yaml.
type stageYAML struct {
	filter string
	config string // a YAML flow mapping, or ""
	// concurrency and maxInFlight are the stage's own `concurrency` and
	// `max_in_flight` when positive (else the defaults').
	concurrency, maxInFlight int
}

var (
	noopStage = stageYAML{filter: noopFilter}
	jqStage   = stageYAML{filter: "jq", config: `{program: '.n = (.n + 1)'}`}
)

// ioStage is the stage of the io case of concurrency c: waitFilter with
// `concurrency: c` and `max_in_flight: c`. Concurrency bounds the records
// the stage's filter works on at once in the process, over every partition
// it holds (router: one slot pool per stage); max_in_flight bounds the
// records handed out per partition (transport/window.go), 256 by default.
// c per partition lets one partition alone fill every slot, and is what
// the README advises for slow filters (a rebalance waits for the records
// handed out).
func ioStage(c int) stageYAML {
	return stageYAML{filter: waitFilter, concurrency: c, maxInFlight: c}
}

// millraceSetup is what varies between the millrace cases besides their
// stages.
type millraceSetup struct {
	// metrics gives the engine Prometheus metrics, as `millrace run` has.
	metrics bool
	// results puts `results: {}` on the pipeline: every stage emits a job
	// event per settled record to "<name>.jobs" and the engine runs the
	// folder, which writes each finished job to "<name>.jobs.status"
	// (docs/jobs.md).
	results bool
}

// pipelinesYAML is a pipelines file with one pipeline named name from in to
// out through stages (named s1, s2, …; their topics are "<name>.s2", …),
// with job results when results is set.
func pipelinesYAML(o options, name, in, out string, results bool, stages ...stageYAML) string {
	var b strings.Builder
	b.WriteString("version: 1\n")
	if o.broker != "" {
		fmt.Fprintf(&b, "broker: {%s}\n", o.broker)
	}
	fmt.Fprintf(&b, "defaults:\n  partitions: %d\n", o.partitions)
	if o.concurrency > 0 {
		fmt.Fprintf(&b, "  concurrency: %d\n", o.concurrency)
	}
	fmt.Fprintf(&b, "pipelines:\n  - name: %s\n    input: %s\n    output: %s\n", name, in, out)
	if results {
		b.WriteString("    results: {}\n")
	}
	b.WriteString("    stages:\n")
	for i, s := range stages {
		fmt.Fprintf(&b, "      - name: s%d\n        filter: %s\n", i+1, s.filter)
		if s.config != "" {
			fmt.Fprintf(&b, "        config: %s\n", s.config)
		}
		if s.concurrency > 0 {
			fmt.Fprintf(&b, "        concurrency: %d\n", s.concurrency)
		}
		if s.maxInFlight > 0 {
			fmt.Fprintf(&b, "        max_in_flight: %d\n", s.maxInFlight)
		}
	}
	return b.String()
}

// millraceRunner returns a system that runs a millrace pipeline of stages
// in this process with router.NewEngine, as `millrace run` would (with
// what setup adds), from a pipelines file the bench writes. The pipeline is
// named after the case's prefix, so its topics and consumer groups
// (the job folder's too) are fresh.
func millraceRunner(setup millraceSetup, stages ...stageYAML) func(ctx context.Context, e *env, prefix, in, out string) error {
	return func(ctx context.Context, e *env, prefix, in, out string) error {
		src := pipelinesYAML(e.opts, prefix, in, out, setup.results, stages...)
		f, err := pipeline.Parse(prefix+".yaml", []byte(src), os.LookupEnv)
		if err != nil {
			return fmt.Errorf("millrace: pipelines file:\n%s\n%w", src, err)
		}
		var m *router.Metrics
		if setup.metrics {
			if m, err = router.NewMetrics(admin.NewRegistry()); err != nil {
				return fmt.Errorf("millrace: %w", err)
			}
		}
		// The GC as millrace run sets it (internal/gctune), for this
		// case only: the raw loop keeps Go's default.
		if _, ok := os.LookupEnv("GOGC"); !ok {
			defer debug.SetGCPercent(debug.SetGCPercent(gctune.Percent))
		}
		eng, err := router.NewEngine(router.EngineConfig{
			Plan: f.Plan(), Brokers: e.brokers, StopTimeout: 15 * time.Second, Logger: e.log, Metrics: m,
		})
		if err != nil {
			return fmt.Errorf("millrace: %w", err)
		}
		if err := eng.Run(ctx); err != nil {
			return fmt.Errorf("millrace: %w", err)
		}
		return nil
	}
}
