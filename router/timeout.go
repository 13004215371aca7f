package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/transport"
)

// errTimedOut is the cause a record's context is cancelled with when its
// filter call outlives the stage's timeout.
var errTimedOut = errors.New("filter call timed out")

// watchdog enforces a stage's timeout on filter calls without a timer or
// goroutine per call: calls are listed in start order (one timeout for
// all, so the oldest is first), and one goroutine per stage cancels the
// record's context, with cause errTimedOut, of calls past the timeout. A
// filter that ignores its context is waited for, and logged.
type watchdog struct {
	timeout time.Duration
	log     *slog.Logger

	mu         sync.Mutex
	head, tail *handOut
	stop       chan struct{}
	once       sync.Once
}

func newWatchdog(timeout time.Duration, log *slog.Logger) *watchdog {
	w := &watchdog{timeout: timeout, log: log, stop: make(chan struct{})}
	go w.run(min(max(timeout/8, time.Millisecond), time.Second))
	return w
}

func (w *watchdog) watch(d *handOut) {
	d.start, d.expired, d.warned = time.Now(), false, false
	w.mu.Lock()
	d.prev, d.next = w.tail, nil
	if w.tail != nil {
		w.tail.next = d
	} else {
		w.head = d
	}
	w.tail = d
	w.mu.Unlock()
}

func (w *watchdog) done(d *handOut) {
	w.mu.Lock()
	if d.prev != nil {
		d.prev.next = d.next
	} else if w.head == d {
		w.head = d.next
	}
	if d.next != nil {
		d.next.prev = d.prev
	} else if w.tail == d {
		w.tail = d.prev
	}
	d.prev, d.next = nil, nil
	w.mu.Unlock()
}

func (w *watchdog) run(tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.expire(now)
		}
	}
}

// expire cancels the calls past the timeout; they stay listed until they
// return, and one running twice the timeout is logged.
func (w *watchdog) expire(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for d := w.head; d != nil && now.Sub(d.start) >= w.timeout; d = d.next {
		switch running := now.Sub(d.start); {
		case !d.expired:
			d.expired = true
			d.d.Cancel(errTimedOut)
		case running >= 2*w.timeout && !d.warned:
			d.warned = true
			w.log.Warn("filter call ignores its cancelled context; waiting for it", "timeout", w.timeout,
				"running_for", running.Round(time.Millisecond))
		}
	}
}

func (w *watchdog) close() { w.once.Do(func() { close(w.stop) }) }

// timedOut reports whether ctx was cancelled by the watchdog.
func timedOut(ctx context.Context) bool { return errors.Is(transport.Cause(ctx), errTimedOut) }

// withTimeout runs the filter call f for msg, watched by w (nil: no
// timeout): past timeout the record's context is cancelled, with cause
// errTimedOut, and the call fails retryably ("filter call timed out after
// …"). A filter that ignores its context is waited for (and logged by w).
// The call runs recovered: a panic is a failure (recover.go).
func withTimeout(w *watchdog, timeout time.Duration, msg *message.Message, f filterCall) ([]*filters.Message, error) {
	ctx := msg.Context()
	h := stateOf(msg)
	if w == nil || h == nil {
		return recovered(ctx, f)
	}
	w.watch(h)
	outs, err := recovered(ctx, f)
	w.done(h)
	if timedOut(ctx) {
		if err == nil || errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("filter call timed out after %s", timeout)
		}
		return nil, fmt.Errorf("filter call timed out after %s: %w", timeout, err)
	}
	return outs, err
}
