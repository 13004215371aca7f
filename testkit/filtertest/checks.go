package filtertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
)

// runner runs the checks on one filter.
type runner struct {
	s Suite
	f filters.Filter
	// returned holds the calls of the cases check, to look at again after
	// the others.
	returned []returned
}

// returned is a call as it was when Process returned.
type returned struct {
	name     string
	in       *guarded
	inAt     snapshot
	out      []*filters.Message
	outAt    []snapshot
	returned time.Time
}

// cases runs each case once, checks its outcome and outputs, that the
// input's bytes are untouched and that the outputs are independent.
func (r *runner) cases(t *testing.T) {
	if len(r.s.Cases) == 0 {
		t.Fatal("the suite has no cases")
	}
	for _, c := range r.s.Cases {
		if c.Blocks {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			in := guard(c.In)
			res, ok := r.call(in.msg)
			at := time.Now()
			switch {
			case !ok:
				t.Fatalf("Process did not return within %s", r.s.CallTimeout)
			case res.panicked != nil:
				t.Fatalf("Process panicked: %v", res.panicked)
			}
			if w := in.written(); w != "" {
				t.Errorf("Process %s: the stage shares those bytes with the record it read; assign a new slice instead", w)
			}
			r.returned = append(r.returned, returned{name: c.Name, in: in, inAt: snap(in.msg),
				out: res.out, outAt: snapAll(res.out), returned: at})
			if d := independence(res.out); d != "" {
				t.Error(d)
			}
			if msg := r.judge(c, res); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// call runs Process with the suite's timeout.
func (r *runner) call(msg *filters.Message) (result, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), r.s.CallTimeout)
	defer cancel()
	return call(ctx, r.f, msg, r.s.CallTimeout+r.s.CancelWithin)
}

// judge says how a call of case c went wrong, or "".
func (r *runner) judge(c Case, res result) string {
	if res.panicked != nil {
		return fmt.Sprintf("Process panicked: %v", res.panicked)
	}
	if c.Check != nil {
		if err := c.Check(res.out, res.err); err != nil {
			return fmt.Sprintf("Check: %v", err)
		}
	}
	switch got := outcome(res.err); {
	case got != c.Outcome && c.Outcome == FailsPermanently && res.err != nil:
		return fmt.Sprintf("Process returned %v, which filters.IsPermanent does not recognise: "+
			"wrap errors with %%w, never %%v, so that a filters.Permanent error stays one", res.err)
	case got != c.Outcome:
		return fmt.Sprintf("Process returned %s (%v), want %s", got, res.err, c.Outcome)
	case got == FailsPermanently && !filters.IsPermanent(fmt.Errorf("stage: %w", res.err)):
		return fmt.Sprintf("Process returned %v, which is no longer permanent once wrapped", res.err)
	}
	if c.Want != nil && res.err == nil {
		if len(res.out) != len(c.Want) {
			return fmt.Sprintf("Process returned %d messages %s, want %d %s", len(res.out), showAll(res.out), len(c.Want), showAll(c.Want))
		}
		for i, w := range c.Want {
			if d := snap(w).diff(res.out[i]); d != "" {
				return fmt.Sprintf("output %d: %s", i, d)
			}
		}
	}
	return ""
}

func outcome(err error) Outcome {
	switch {
	case err == nil:
		return Succeeds
	case filters.IsPermanent(err):
		return FailsPermanently
	}
	return Fails
}

func showAll(ms []*filters.Message) string {
	s := "["
	for i, m := range ms {
		if i > 0 {
			s += ", "
		}
		if m == nil {
			s += "nil"
			continue
		}
		s += fmt.Sprintf("{key %s payload %s headers %s}", show(m.Key), show(m.Payload), showHeaders(m.Headers))
	}
	return s + "]"
}

// concurrent runs every case from several goroutines at once on the one
// filter, checking each call as the cases check does; run it with -race.
func (r *runner) concurrent(t *testing.T) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems = map[string]bool{}
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if msg := fmt.Sprintf(format, args...); !problems[msg] {
			problems[msg] = true
			t.Error(msg)
		}
	}
	start := make(chan struct{})
	for g := range r.s.Goroutines {
		wg.Go(func() {
			<-start
			for i := range r.s.Cases {
				c := r.s.Cases[(i+g)%len(r.s.Cases)] // each goroutine in another order
				if c.Blocks {
					continue
				}
				in := guard(c.In)
				res, ok := r.call(in.msg)
				if !ok {
					report("case %q: Process did not return within %s", c.Name, r.s.CallTimeout)
				} else if msg := r.judge(c, res); msg != "" {
					report("case %q, run concurrently with the others: %s", c.Name, msg)
				} else if w := in.written(); w != "" {
					report("case %q, run concurrently with the others: Process %s", c.Name, w)
				}
			}
		})
	}
	close(start)
	wg.Wait()
}

// cancellation checks that calls return once their context ends.
func (r *runner) cancellation(t *testing.T) {
	blocks := false
	for _, c := range r.s.Cases {
		if !c.Blocks {
			t.Run(c.Name+"/cancelled before the call", func(t *testing.T) { r.cancelledBefore(t, c) })
			continue
		}
		blocks = true
		t.Run(c.Name+"/cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			r.blocked(t, ctx, c, "cancelled")
		})
		t.Run(c.Name+"/deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			r.blocked(t, ctx, c, "past its deadline")
		})
	}
	if !blocks {
		t.Log("no case Blocks: only calls with a context cancelled before them were checked")
	}
}

// cancelledBefore runs c with a context cancelled before the call: any
// outcome but a permanent error that stems from the cancellation.
func (r *runner) cancelledBefore(t *testing.T, c Case) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := guard(c.In)
	res, ok := call(ctx, r.f, in.msg, r.s.CancelWithin)
	switch {
	case !ok:
		t.Fatalf("Process did not return within %s with a cancelled context", r.s.CancelWithin)
	case res.panicked != nil:
		t.Fatalf("Process panicked: %v", res.panicked)
	case errors.Is(res.err, context.Canceled) && filters.IsPermanent(res.err):
		t.Errorf("Process returned %v for a cancelled context: marked permanent, the record would be "+
			"quarantined for the process stopping", res.err)
	}
	if w := in.written(); w != "" {
		t.Errorf("Process %s", w)
	}
}

// blocked runs c, which works until ctx ends, and checks how it stops.
func (r *runner) blocked(t *testing.T, ctx context.Context, c Case, how string) {
	in := guard(c.In)
	began := time.Now()
	res, ok := call(ctx, r.f, in.msg, 50*time.Millisecond+r.s.CancelWithin)
	switch {
	case !ok:
		t.Fatalf("Process did not return within %s of its context being %s: it must honour ctx", r.s.CancelWithin, how)
	case res.panicked != nil:
		t.Fatalf("Process panicked: %v", res.panicked)
	case time.Since(began) < 45*time.Millisecond:
		t.Fatalf("Process returned (%v) before its context ended: a case that Blocks must work until then", res.err)
	case res.err == nil:
		t.Errorf("Process succeeded with its context %s: it must return an error (the record was not done)", how)
	case filters.IsPermanent(res.err):
		t.Errorf("Process returned %v with its context %s: marked permanent, the record would be quarantined "+
			"for a timeout or a stop; return ctx.Err() (wrapped with %%w)", res.err, how)
	case !errors.Is(res.err, ctx.Err()):
		t.Logf("Process returned %v with its context %s; wrapping ctx.Err() with %%w says why", res.err, how)
	}
	if w := in.written(); w != "" {
		t.Errorf("Process %s", w)
	}
}

// afterReturn checks that nothing the cases check gave Process or got
// from it changed since it returned.
func (r *runner) afterReturn(t *testing.T) {
	if len(r.returned) > 0 {
		time.Sleep(max(0, 20*time.Millisecond-time.Since(r.returned[len(r.returned)-1].returned)))
	}
	for _, c := range r.returned {
		if w := c.in.written(); w != "" {
			t.Errorf("case %q: after Process returned, it %s", c.name, w)
		}
		if d := c.inAt.diff(c.in.msg); d != "" {
			t.Errorf("case %q: the input changed after Process returned: %s", c.name, d)
		}
		for i, m := range c.out {
			if d := c.outAt[i].diff(m); d != "" {
				t.Errorf("case %q: output %d changed after Process returned: %s", c.name, i, d)
			}
		}
	}
}
