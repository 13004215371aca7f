package main

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// The latency case reports the run with the median p99 and lists every
// run's; a run that failed stands for the case.
func TestMedianLatency(t *testing.T) {
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	run := func(p99 float64) latencyResult {
		return latencyResult{want: 10, got: 10, p50: ms(1), p99: ms(p99)}
	}
	for _, tc := range []struct {
		name string
		p99s []float64
		want float64
		note string
	}{
		{"one run", []float64{17.2}, 17.2, ""},
		{"three runs", []float64{17.2, 9.8, 12.0}, 12.0, "median of 3 runs, their p99 9.8, 12.0, 17.2 ms"},
		{"two runs: the higher", []float64{9.8, 12.0}, 12.0, "median of 2 runs, their p99 9.8, 12.0 ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rs []latencyResult
			for _, p := range tc.p99s {
				rs = append(rs, run(p))
			}
			m := medianLatency(rs)
			if m.p99 != ms(tc.want) {
				t.Errorf("p99 %s, want %s", m.p99, ms(tc.want))
			}
			if got := m.runsNote(); got != tc.note {
				t.Errorf("note %q, want %q", got, tc.note)
			}
			if len(tc.p99s) > 1 && !slices.IsSorted(m.p99s) {
				t.Errorf("p99s %v not sorted", m.p99s)
			}
		})
	}
	failed := run(5)
	failed.err = errors.New("broker gone")
	m := medianLatency([]latencyResult{run(9), failed, run(11)})
	if m.err == nil || m.p99s != nil {
		t.Errorf("a failed run must stand for the case: got %+v", m)
	}
}
