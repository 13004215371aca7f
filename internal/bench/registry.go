package main

import (
	metrics "github.com/rcrowley/go-metrics"
)

// nilRegistry is a go-metrics registry that keeps nothing: the bench's own
// clients (helperConfig) use it so that their requests stay out of
// transport.KafkaRequests, and so that, like millrace's clients, they do
// not pay for sarama's metrics (a metrics.NewRegistry would keep rates and
// histograms per request, and its meters would tick for good, in the CPU
// and allocations measured over every drain). Every metric it hands out is
// go-metrics' no-op kind; no constructor is called.
type nilRegistry struct{}

func (nilRegistry) GetOrRegister(_ string, metric any) any {
	switch metric.(type) {
	case func() metrics.Meter, metrics.Meter:
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

func (nilRegistry) Each(func(string, any))            {}
func (nilRegistry) Get(string) any                    { return nil }
func (nilRegistry) GetAll() map[string]map[string]any { return nil }
func (nilRegistry) Register(string, any) error        { return nil }
func (nilRegistry) RunHealthchecks()                  {}
func (nilRegistry) Unregister(string)                 {}
func (nilRegistry) UnregisterAll()                    {}
