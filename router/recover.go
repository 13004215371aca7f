package router

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/millrace/millrace/filters"
)

// panicError is a filter's panic as a failure: a retryable one, whose
// quarantine copy carries the stack summary (millrace-stack).
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// filterCall is one call of a stage's filter.
type filterCall func(ctx context.Context) ([]*filters.Message, error)

// recovered runs f, turning a panic into a *panicError with a short stack
// summary: a filter's panic fails its record, never the process. (A panic
// in millrace's own middleware is caught by Watermill's Recoverer inside
// settle; see chain.)
func recovered(ctx context.Context, f filterCall) (outs []*filters.Message, err error) {
	defer func() {
		if v := recover(); v != nil {
			outs, err = nil, &panicError{value: v, stack: stackSummary(3, 6)}
		}
	}()
	return f(ctx)
}

// stackSummary is a short summary of the panicking goroutine's stack:
// up to max frames, innermost first, without runtime and millrace frames.
func stackSummary(skip, max int) string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(skip, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var out []string
	for len(out) < max {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") && !strings.HasPrefix(f.Function, "github.com/millrace/millrace/router.") {
			out = append(out, fmt.Sprintf("%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line))
		}
		if !more {
			break
		}
	}
	return strings.Join(out, " < ")
}
