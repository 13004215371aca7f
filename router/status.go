package router

import (
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/transport"
)

// Outcome is what became of one hand-out of a record at a stage.
type Outcome string

// The outcomes an Event reports.
const (
	// Done: the filter succeeded and its outputs were published (or
	// handed to the producer, for a stage that settles on their acks).
	Done Outcome = "done"
	// Skipped: a deduplicating stage had processed the record's key.
	Skipped Outcome = "skipped"
	// Quarantined: the record failed for good and is in the quarantine.
	Quarantined Outcome = "quarantined"
	// Retried: the attempt failed; the record is tried again (inline or
	// in a retry tier).
	Retried Outcome = "retried"
	// Redelivered: not the record's fault (a broker outage); it is handed
	// out again as the same attempt.
	Redelivered Outcome = "redelivered"
	// Stopped: the process stops; the record is left for redelivery.
	Stopped Outcome = "stopped"
)

// Event is what a stage did with one hand-out of a record, for metrics
// and job status.
type Event struct {
	Pipeline, Stage string
	Origin          transport.Record
	// Attempt is the attempt's number (millrace-attempt).
	Attempt int
	Outcome Outcome
	// Outputs is how many records the filter returned (Done only).
	Outputs int
	// Tiered says a Retried record was moved to a retry tier (else it is
	// retried inline).
	Tiered bool
	// Err is why it was not Done (nil otherwise).
	Err error
	// Took is the time from the hand-out reaching the middleware to its
	// outcome.
	Took time.Duration
}

// Observer receives one Event per hand-out, on the handler's goroutine: it
// must not block.
type Observer func(Event)

// statusConfig configures statusMiddleware.
type statusConfig struct {
	pipeline, stage string
	records         *records
	observe         Observer
	now             func() time.Time
}

// statusMiddleware is the metrics/status slot of a stage: it sits inside
// settle and outside quarantine, so it sees every outcome — a quarantined
// record returns no error from quarantine, and the stage notes it on the
// hand-out — and reports it to the observer.
func statusMiddleware(cfg statusConfig) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			start := cfg.now()
			out, err := h(msg)
			e := Event{Pipeline: cfg.pipeline, Stage: cfg.stage, Attempt: cfg.records.attempt(msg), Err: err}
			e.Origin, _ = transport.RecordFrom(msg.Context())
			st := stateOf(msg)
			var (
				r *retryIn
				t *transient
			)
			switch {
			case err == nil && st != nil && st.quarantined:
				e.Outcome = Quarantined
			case err == nil && st != nil && st.skipped:
				e.Outcome = Skipped
			case err == nil && st != nil && st.tiered:
				e.Outcome, e.Tiered = Retried, true
			case err == nil:
				e.Outcome = Done
				if st != nil {
					e.Outputs = st.outputs
				}
			case stopping(msg):
				e.Outcome = Stopped
			case errors.As(err, &r), !errors.As(err, &t) && !filters.IsPermanent(err):
				e.Outcome = Retried
			default:
				e.Outcome = Redelivered
			}
			e.Took = cfg.now().Sub(start)
			cfg.observe(e)
			return out, err
		}
	}
}
