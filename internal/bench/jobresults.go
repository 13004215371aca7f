package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/IBM/sarama"
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

// jobResultsSettled is the check of a pipeline of stages stages with
// `results:` (docs/jobs.md): the folder must have written a status for
// each of the n jobs (one per backlog record, which enters with no
// millrace-job header), every one succeeded. The events topic
// "<prefix>.jobs" and the status topic "<prefix>.jobs.status" are not
// outputs: the drain counts only the output topic, and deletes them with
// the case's other topics.
func jobResultsSettled(stages int) func(ctx context.Context, e *env, prefix string, n int) checked {
	return func(ctx context.Context, e *env, prefix string, n int) checked {
		events, status := pipeline.JobsTopic(prefix), pipeline.JobStatusTopic(prefix)
		tick := time.NewTicker(jobsPoll)
		defer tick.Stop()
		want := int64(n)
		var end int64
		var found jobTally
		var lastErr error
		for {
			select {
			case <-ctx.Done():
				err := fmt.Errorf("job results: the status topic holds %d records for %d jobs, %d of them read as finished: %w",
					end, n, found.finished(), ctx.Err())
				if lastErr != nil {
					err = fmt.Errorf("%w (last error: %v)", err, lastErr)
				}
				return checked{err: err}
			case <-tick.C:
			}
			// The engine creates the topics after it starts: until then
			// they are unknown.
			if end, lastErr = e.logEnd(status); lastErr != nil || end < want {
				continue
			}
			at := time.Now()
			if found, lastErr = e.tallyJobs(ctx, status, n); lastErr != nil {
				continue
			}
			if found.finished() < n {
				want = end + 1 // some were written twice: wait for more
				continue
			}
			if found.failed > 0 {
				return checked{at: at, err: fmt.Errorf("job results: %d of %d jobs failed", found.failed, n)}
			}
			ev, err := e.logEnd(events)
			if err != nil {
				return checked{at: at, err: fmt.Errorf("job results: %w", err)}
			}
			if ev < int64(stages*n) {
				return checked{at: at, err: fmt.Errorf("job results: %d events for %d records settled at %d stages", ev, n, stages)}
			}
			return checked{at: at, note: fmt.Sprintf("all %s jobs succeeded; %s events, %s status records",
				fmtCount(n), fmtCount(int(ev)), fmtCount(int(end)))}
		}
	}
}

// jobTally counts the distinct jobs of a status topic by their state.
type jobTally struct{ succeeded, failed, other int }

func (t jobTally) finished() int { return t.succeeded + t.failed }

// tallyJobs reads a status topic (fresh: it starts at offset 0) to its
// current log end, outside any consumer group, and counts each job (record
// key) once, by its latest status.
func (e *env) tallyJobs(ctx context.Context, topic string, n int) (jobTally, error) {
	ends, err := e.logEnds(topic)
	if err != nil {
		return jobTally{}, err
	}
	c, err := sarama.NewConsumer(e.brokers, e.config("millrace-bench-jobs"))
	if err != nil {
		return jobTally{}, fmt.Errorf("read %s: open consumer: %w", topic, err)
	}
	defer c.Close()
	latest := make(map[string]jobs.State, n)
	for p, end := range ends {
		err := kafkaops.ReadEach(ctx, c, topic, p, 0, end, func(m *sarama.ConsumerMessage) {
			var rec jobs.StatusRecord
			if json.Unmarshal(m.Value, &rec) == nil {
				latest[string(m.Key)] = rec.Status.State
			}
		})
		if err != nil {
			return jobTally{}, err
		}
	}
	var t jobTally
	for _, s := range latest {
		switch s {
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
