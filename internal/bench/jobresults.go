package main

import (
	"context"
	"fmt"
	"time"

	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
)

// jobsPoll is how often a results check reads the status topic's log end:
// the resolution of the time the last job finished.
const jobsPoll = 20 * time.Millisecond

// checked is what a system's check found.
type checked struct {
	// at is when it passed: here, when the status topic held the last
	// job's status.
	at time.Time
	// note says what was found, for the report.
	note string
	err  error
}

// jobResultsSettled is the check of a pipeline of stages stages (named
// s1, s2, …, as pipelinesYAML names them) with `results:` (docs/jobs.md):
// once the events topic holds an event per record and stage, a jobs.View
// folds it, and each of the n jobs (one per backlog record, which enters
// with no millrace-job header) must have succeeded. The events topic
// "<prefix>.jobs" and the status topic "<prefix>.jobs.status" (written only
// for jobs with a reply or callback: none here) are not outputs: the drain
// counts only the output topic, and deletes them with the case's other
// topics.
func jobResultsSettled(stages int) func(ctx context.Context, e *env, prefix string, n int) checked {
	return func(ctx context.Context, e *env, prefix string, n int) checked {
		events := pipeline.JobsTopic(prefix)
		shape := jobs.Shape{Pipeline: prefix, Output: true}
		for i := range stages {
			shape.Stages = append(shape.Stages, fmt.Sprintf("s%d", i+1))
		}
		tick := time.NewTicker(jobsPoll)
		defer tick.Stop()
		want := int64(stages * n)
		var end int64
		var lastErr error
		for {
			select {
			case <-ctx.Done():
				err := fmt.Errorf("job results: the events topic holds %d events for %d jobs of %d stages: %w", end, n, stages, ctx.Err())
				if lastErr != nil {
					err = fmt.Errorf("%w (last error: %v)", err, lastErr)
				}
				return checked{err: err}
			case <-tick.C:
			}
			// The engine creates the topics after it starts: until then
			// they are unknown.
			if end, lastErr = e.logEnd(events); lastErr != nil || end < want {
				continue
			}
			at := time.Now()
			found, err := e.tallyJobs(ctx, jobs.Source{Shape: shape, Topic: events})
			if err != nil {
				return checked{at: at, err: fmt.Errorf("job results: %w", err)}
			}
			if found.succeeded != n {
				return checked{at: at, err: fmt.Errorf("job results: %d of %d jobs succeeded (%d failed, %d not finished)",
					found.succeeded, n, found.failed, found.other)}
			}
			return checked{at: at, note: fmt.Sprintf("all %s jobs succeeded; %s events", fmtCount(n), fmtCount(int(end)))}
		}
	}
}

// jobTally counts jobs by their state.
type jobTally struct{ succeeded, failed, other int }

// tallyJobs folds an events topic to its current log end with a jobs.View
// and counts the jobs by state.
func (e *env) tallyJobs(ctx context.Context, src jobs.Source) (jobTally, error) {
	v, err := jobs.OpenView(ctx, kafkaops.Cluster{Brokers: e.brokers, ClientID: "millrace-bench-jobs"}, jobs.ViewConfig{Source: src})
	if err != nil {
		return jobTally{}, err
	}
	defer v.Close()
	var t jobTally
	for _, s := range v.List(jobs.Filter{}) {
		switch s.State {
		case jobs.StateSucceeded:
			t.succeeded++
		case jobs.StateFailed:
			t.failed++
		default:
			t.other++
		}
	}
	return t, nil
}
