// Package wait registers the filter "wait": an I/O-bound filter for the
// scale-out test, which waits a fixed time per record (as a call to a
// slow service would) and passes the record on. It is a user's filter
// package as README's "Writing a filter" shows one.
package wait

import (
	"context"
	"fmt"
	"time"

	"github.com/millrace/millrace/filters"
)

func init() {
	filters.MustRegister(filters.Spec{
		Name:    "wait",
		Summary: "Waits ms milliseconds per record, then passes it on unchanged.",
		Fields: []filters.Field{
			{Name: "ms", Type: filters.Int, Required: true, Description: "The wait per record, in milliseconds."},
		},
		Example: "ms: 20",
		New: func(cfg filters.Config) (filters.Filter, error) {
			ms := cfg.Int("ms")
			if ms < 0 {
				return nil, filters.FieldError("ms", fmt.Errorf("must not be negative, got %d", ms))
			}
			d := time.Duration(ms) * time.Millisecond
			return filters.Func(func(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
				t := time.NewTimer(d)
				defer t.Stop()
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-t.C:
					return []*filters.Message{m}, nil
				}
			}), nil
		},
	})
}
