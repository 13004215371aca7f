package router

import (
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/transport"
)

// settleConfig configures settleMiddleware.
type settleConfig struct {
	records *records
	log     *slog.Logger
	// bigStack grows the handler's stack to 8 KiB at once: a stage that
	// emits job events needs more than 4 (see growStackMore), as does one
	// whose filter says so (filters.Spec.DeepStack).
	bigStack bool
}

// settleMiddleware is the outermost middleware of a stage: it settles each
// record's delivery with the outcome of the middleware inside it — Ack on
// success (unless the handler settles it on its outputs' acks), and for an
// error as errors.go says: RetryAfter the delay of a retryIn, Redeliver a
// transient failure, RetryAfter the backoff for anything else. A failure is
// logged here, at the level it deserves, and not returned to Watermill,
// whose router would log every one at ERROR ("Handler returned error"): a
// broker outage made thousands of such lines. A message that is not a
// delivery of the transport is left to Watermill's Ack and Nack.
func settleMiddleware(cfg settleConfig) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if cfg.bigStack {
				growStackMore()
			} else {
				growStack()
			}
			out, err := h(msg)
			d, ok := transport.DeliveryOf(msg.Context())
			switch {
			case !ok:
				return out, err
			case err == nil:
				if !d.SettlesLater() {
					d.Ack()
				}
				return out, nil
			}
			cfg.logFailure(msg, err) // first: once settled, the window may hand the record out again
			var (
				r *retryIn
				t *transient
			)
			switch {
			case errors.As(err, &r):
				d.RetryAfter(r.delay)
			case errors.As(err, &t):
				d.Redeliver()
			default:
				d.RetryAfter(0)
			}
			return out, nil
		}
	}
}

// logFailure logs why a record was not done: stopping at debug, a retry
// after an outage or a failed attempt at info (the record is retried), any
// other error at warn.
func (cfg settleConfig) logFailure(msg *message.Message, err error) {
	var (
		r *retryIn
		t *transient
	)
	switch {
	case stopping(msg):
		cfg.log.Debug("record left for redelivery: the process is stopping", "origin", recordString(msg), "job", jobOf(msg), "err", err)
	case errors.As(err, &r):
		cfg.log.Info("record failed; retrying", "origin", recordString(msg), "job", jobOf(msg), "attempt", cfg.records.attempt(msg),
			"retry_in", r.delay, "err", err)
	case errors.As(err, &t):
		cfg.log.Info("record will be handed out again (not its fault)", "origin", recordString(msg), "job", jobOf(msg), "err", err)
	default:
		cfg.log.Warn("record failed", "origin", recordString(msg), "job", jobOf(msg), "err", err)
	}
}

// growStack makes the handler's goroutine grow its stack now, while it
// holds four frames, rather than deep in the filter call. Watermill starts a
// goroutine per record, with a 2 KiB stack (the runtime's adaptive start
// stays there: most goroutines are small), and a record's handling needs
// more: the stack was copied, with a dozen frames to adjust, once per
// record — 9% of a no-op stage's CPU. Growing it here costs a third of that
// (measured with the bench's -cpuprofile-prefix: runtime.newstack 9.2%
// -> 2.6%). The frame stays below the 4 KiB the stack grows to.
//
//go:noinline
func growStack() {
	var frame [1500]byte
	keep(frame[:])
}

//go:noinline
func keep([]byte) {}

// growStackMore is growStack for a stage that emits job events: its
// chain is deeper, and deriving a job id (sha1) or encoding an event grew
// the stack a second time, from 4 to 8 KiB — 5% of such a stage's CPU.
//
//go:noinline
func growStackMore() {
	var frame [5000]byte
	keep(frame[:])
}
