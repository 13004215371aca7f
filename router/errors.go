package router

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Errors travel outwards through a stage's middleware typed, and settle
// turns them into a settlement of the record's delivery:
//
//   - retryIn: retry inline after a delay (the record waits in its window);
//   - exhausted, or a filters.Permanent error: quarantine it;
//   - transient (publishing failed, or a broker read): not the record's
//     fault, so not an attempt; handed out again with the subscriber's
//     backoff, for ever;
//   - any error while the record's context is cancelled (and not by the
//     stage's timeout): the process is stopping; the record is left for
//     redelivery, never quarantined.

// retryIn is a failed attempt to be retried inline after delay.
type retryIn struct {
	err   error
	delay time.Duration
}

func (e *retryIn) Error() string { return e.err.Error() }
func (e *retryIn) Unwrap() error { return e.err }

// exhausted is a failure after the record's last attempt.
type exhausted struct{ err error }

func (e *exhausted) Error() string { return e.err.Error() }
func (e *exhausted) Unwrap() error { return e.err }

// transient is a failure that is not the record's fault.
type transient struct{ err error }

func (e *transient) Error() string { return e.err.Error() }
func (e *transient) Unwrap() error { return e.err }

// stopping reports whether msg was abandoned because the process stops
// (its context was cancelled, and not by the stage's timeout).
func stopping(msg *message.Message) bool {
	ctx := msg.Context()
	return ctx.Err() != nil && !timedOut(ctx)
}
