package main

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
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

// The latency case says how busy the cores were over its measured records
// and how many requests the system sent per record.
func TestLatencyBusyNote(t *testing.T) {
	r := latencyResult{want: 10_000, window: 10 * time.Second, use: used{
		cpu: 7400 * time.Millisecond, broker: 10200 * time.Millisecond, brokerMeasured: true,
		jit: 500 * time.Millisecond, jitMeasured: true, machine: 18600 * time.Millisecond,
		requests: map[int16]int64{int16(kmsg.Produce): 28_000, int16(kmsg.Fetch): 26_000, int16(kmsg.OffsetCommit): 100}, counted: true,
	}}
	want := fmt.Sprintf("cores busy: bench 0.74, broker 0.97 (+ JIT 0.05), machine 1.86 of %d; 5.4 Kafka requests per record (Produce 2.8, Fetch 2.6)", runtime.NumCPU())
	if got := r.busyNote(); got != want {
		t.Errorf("busyNote:\n got %q\nwant %q", got, want)
	}
	if got := (latencyResult{want: 10}).busyNote(); got != "" {
		t.Errorf("not measured: got %q, want \"\"", got)
	}
}
