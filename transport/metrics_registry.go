package transport

import metrics "github.com/rcrowley/go-metrics"

// noMetrics is a go-metrics registry that keeps nothing but the count of
// requests by API key ([KafkaRequests]): every other metric sarama asks it
// for is the no-op kind. Sarama's own metrics (rates and
// histograms kept per request, per broker and per topic) are not exported
// anywhere by millrace, which has its Prometheus metrics; keeping them cost
// a no-op stage 1–2% of its CPU (pprof: go-metrics' sample updates and
// meter marks on every produce request). It is the per-client form of
// go-metrics' process-wide UseNilMetrics, which would also silence metrics
// of other clients in a user's binary.
type noMetrics struct {
	// uncounted leaves the requests out of KafkaRequests too.
	uncounted bool
}

// UncountedMetrics returns a go-metrics registry that keeps nothing, not
// even the request counts of [KafkaRequests]: for a client whose requests
// are not the process's work, such as a benchmark's own (set it as the
// config's MetricRegistry after [NewSaramaConfig]).
func UncountedMetrics() metrics.Registry { return noMetrics{uncounted: true} }

// GetOrRegister returns the no-op metric of the kind that metric (a metric
// or a constructor, as go-metrics passes it) would have made, without
// calling a constructor: a StandardMeter would join go-metrics' global
// ticker for good.
func (r noMetrics) GetOrRegister(name string, metric any) any {
	switch metric.(type) {
	case func() metrics.Meter, metrics.Meter:
		if m := requestMeter(name); m != nil && !r.uncounted {
			return m
		}
		return metrics.NilMeter{}
	case func() metrics.Counter, metrics.Counter:
		return metrics.NilCounter{}
	case func() metrics.Histogram, metrics.Histogram:
		return metrics.NilHistogram{}
	case func() metrics.Timer, metrics.Timer:
		return metrics.NilTimer{}
	case func() metrics.Gauge, metrics.Gauge:
		return metrics.NilGauge{}
	case func() metrics.GaugeFloat64, metrics.GaugeFloat64:
		return metrics.NilGaugeFloat64{}
	case func() metrics.EWMA, metrics.EWMA:
		return metrics.NilEWMA{}
	}
	return metric
}

func (noMetrics) Each(func(string, any))            {}
func (noMetrics) Get(string) any                    { return nil }
func (noMetrics) GetAll() map[string]map[string]any { return nil }
func (noMetrics) Register(string, any) error        { return nil }
func (noMetrics) RunHealthchecks()                  {}
func (noMetrics) Unregister(string)                 {}
func (noMetrics) UnregisterAll()                    {}
