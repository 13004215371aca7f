package transport

import (
	"testing"

	metrics "github.com/rcrowley/go-metrics"
)

// Sarama asks its registry for metrics through go-metrics' GetOrRegister
// helpers; each must come back as the no-op kind, or sarama would keep
// (and, for meters, tick) them for nothing.
func TestNoMetrics_hands_out_no_op_metrics(t *testing.T) {
	r := NewSaramaConfig("").MetricRegistry
	sample := metrics.NewUniformSample(4)
	got := map[string]any{
		"meter":     metrics.GetOrRegisterMeter("m", r),
		"counter":   metrics.GetOrRegisterCounter("c", r),
		"histogram": metrics.GetOrRegisterHistogram("h", r, sample),
		"timer":     metrics.GetOrRegisterTimer("t", r),
		"gauge":     metrics.GetOrRegisterGauge("g", r),
	}
	want := map[string]any{
		"meter":     metrics.NilMeter{},
		"counter":   metrics.NilCounter{},
		"histogram": metrics.NilHistogram{},
		"timer":     metrics.NilTimer{},
		"gauge":     metrics.NilGauge{},
	}
	for kind, m := range got {
		if m != want[kind] {
			t.Errorf("%s: got %T, want %T", kind, m, want[kind])
		}
	}
	metrics.GetOrRegisterMeter("m", r).Mark(3)
	if n := metrics.GetOrRegisterMeter("m", r).Count(); n != 0 {
		t.Errorf("a mark was kept: count %d", n)
	}
}
