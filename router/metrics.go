package router

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/scheduler"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are the Prometheus metrics of the stages an engine runs, and of
// its producer, named by Prometheus's conventions with the prefix
// millrace_ and labelled pipeline and stage (never a key, a job id or an
// error text). Build them once per process with NewMetrics and give them
// to every engine of it (EngineConfig.Metrics); nil means none.
type Metrics struct {
	consumed, produced, dropped *prometheus.CounterVec
	quarantined, skipped        *prometheus.CounterVec
	filterErrors, retries       *prometheus.CounterVec
	filterDuration, latency     *prometheus.HistogramVec
	inFlight, ready, lag        *prometheus.GaugeVec
	producerErrors              prometheus.Counter
	inFlightFuncs               sync.Map // stage id → func() int64 (inFlightCollector)
	stageLabels                 []string
	// jobs are the job results' metrics (jobs.NewMetrics).
	jobs *jobs.Metrics
	// schedules are the scheduler's metrics (scheduler.NewMetrics).
	schedules *scheduler.Metrics
}

// Reasons a filter call failed, for millrace_filter_errors_total.
const (
	reasonError     = "error"
	reasonPanic     = "panic"
	reasonTimeout   = "timeout"
	reasonPermanent = "permanent"
)

// NewMetrics makes the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	sl := []string{"pipeline", "stage"}
	counter := func(name, help string, extra ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append(append([]string(nil), sl...), extra...))
	}
	m := &Metrics{
		stageLabels: sl,
		consumed:    counter("millrace_records_consumed_total", "Records a stage read from its inputs and retry tiers (a redelivered record counts again)."),
		produced:    counter("millrace_records_produced_total", "Output records a stage published and the broker acknowledged."),
		dropped:     counter("millrace_records_dropped_total", "Records whose filter returned no output."),
		quarantined: counter("millrace_records_quarantined_total", "Records a stage moved to its pipeline's quarantine topic."),
		skipped:     counter("millrace_dedup_skipped_total", "Records a deduplicating stage skipped: their key was processed within the window."),
		filterErrors: counter("millrace_filter_errors_total",
			"Failed filter calls, by reason: error, panic, timeout (past the stage's timeout) or permanent (filters.Permanent).", "reason"),
		retries: counter("millrace_retries_total", "Failed attempts retried, by kind: inline (the record waits in place) or tier (moved to a retry tier).", "kind"),
		filterDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "millrace_filter_duration_seconds",
			Help:    "Time of one filter call.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, sl),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "millrace_record_latency_seconds",
			Help:    "Age of a record when its outputs were acknowledged: from the record's timestamp to the ack (end-to-end at this stage).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}}, sl),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "millrace_in_flight_records",
			Help: "Records of a stage handed out and not settled yet, in this process."}, sl),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "millrace_stage_ready",
			Help: "1 once the stage joined its consumer group and its producer is connected; 0 before, and once a graceful stop begins."}, sl),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "millrace_consumer_lag_records",
			Help: "Records of a stage's input or retry tier partition not committed by its consumer group yet: log end minus committed offset " +
				"(every stage of the pipelines file, refreshed every few seconds; each process exports it, so aggregate with max)."},
			append(append([]string(nil), sl...), "topic", "partition")),
		producerErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "millrace_producer_errors_total",
			Help: "Records the producer could not publish (each is retried or quarantined, never dropped)."}),
	}
	for _, c := range []prometheus.Collector{m.consumed, m.produced, m.dropped, m.quarantined, m.skipped, m.filterErrors, m.retries,
		m.filterDuration, m.latency, inFlightCollector{m}, m.ready, m.lag, m.producerErrors, kafkaRequestsCollector{}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	var err error
	if m.jobs, err = jobs.NewMetrics(reg); err != nil {
		return nil, err
	}
	m.schedules, err = scheduler.NewMetrics(reg)
	return m, err
}

// scheduleMetrics are the scheduler's metrics; nil without metrics.
func (m *Metrics) scheduleMetrics() *scheduler.Metrics {
	if m == nil {
		return nil
	}
	return m.schedules
}

// inFlightCollector collects millrace_in_flight_records from the stages'
// subscribers when scraped, so the hot path only moves an atomic counter.
type inFlightCollector struct{ m *Metrics }

func (c inFlightCollector) Describe(ch chan<- *prometheus.Desc) { c.m.inFlight.Describe(ch) }

func (c inFlightCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.inFlightFuncs.Range(func(k, v any) bool {
		id := k.([2]string)
		c.m.inFlight.WithLabelValues(id[0], id[1]).Set(float64(v.(func() int64)()))
		return true
	})
	c.m.inFlight.Collect(ch)
}

// kafkaRequestsDesc describes millrace_kafka_requests_total.
var kafkaRequestsDesc = prometheus.NewDesc("millrace_kafka_requests_total",
	"Kafka requests this process's clients sent (stages, producer, admin, lag exporter, job results), by API name as in Kafka's protocol guide "+
		"(Produce, Fetch, OffsetCommit, Heartbeat, …): divided by records, what the process costs the brokers in requests.",
	[]string{"api"}, nil)

// kafkaRequestsCollector collects millrace_kafka_requests_total from
// transport's counts when scraped.
type kafkaRequestsCollector struct{}

func (kafkaRequestsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- kafkaRequestsDesc }

func (kafkaRequestsCollector) Collect(ch chan<- prometheus.Metric) {
	for key, n := range transport.KafkaRequests() {
		name := kmsg.NameForKey(key)
		if name == "" || name == "Unknown" { // two unknown keys must not share a series
			name = "ApiKey" + strconv.Itoa(int(key))
		}
		ch <- prometheus.MustNewConstMetric(kafkaRequestsDesc, prometheus.CounterValue, float64(n), name)
	}
}

// stageMetrics are the metrics of one stage, their labels bound once. The
// zero value (a stage without metrics) records nothing.
type stageMetrics struct {
	on                          bool
	consumed, produced, dropped prometheus.Counter
	quarantined, skipped        prometheus.Counter
	errors                      map[string]prometheus.Counter
	inline, tier                prometheus.Counter
	filterDuration, latency     prometheus.Observer
	ready                       prometheus.Gauge
	producerErrors              prometheus.Counter
	lastExemplar                atomic.Int64 // Unix ns of the latency histogram's last exemplar
}

// enabled reports whether the stage records metrics (sm may be nil).
func (sm *stageMetrics) enabled() bool { return sm != nil && sm.on }

// forStage binds the metrics of stage pipeline/stage; inFlight reports its
// records in flight (read when scraped).
func (m *Metrics) forStage(pipeline, stage string, inFlight func() int64) *stageMetrics {
	if m == nil {
		return &stageMetrics{}
	}
	l := []string{pipeline, stage}
	sm := &stageMetrics{on: true,
		consumed: m.consumed.WithLabelValues(l...), produced: m.produced.WithLabelValues(l...),
		dropped: m.dropped.WithLabelValues(l...), quarantined: m.quarantined.WithLabelValues(l...),
		skipped: m.skipped.WithLabelValues(l...), inline: m.retries.WithLabelValues(pipeline, stage, "inline"),
		tier: m.retries.WithLabelValues(pipeline, stage, "tier"), filterDuration: m.filterDuration.WithLabelValues(l...),
		latency: m.latency.WithLabelValues(l...), ready: m.ready.WithLabelValues(l...), producerErrors: m.producerErrors,
		errors: map[string]prometheus.Counter{}}
	for _, r := range []string{reasonError, reasonPanic, reasonTimeout, reasonPermanent} {
		sm.errors[r] = m.filterErrors.WithLabelValues(pipeline, stage, r)
	}
	sm.ready.Set(0)
	if inFlight != nil {
		m.inFlightFuncs.Store([2]string{pipeline, stage}, inFlight)
	}
	return sm
}

// exemplarEvery spaces the exemplars of the latency histogram: one per
// bucket is kept anyway, and making one costs allocations.
const exemplarEvery = time.Second

// acked counts n outputs of a record acknowledged, and observes the
// record's age, with its job id as the exemplar now and then.
func (sm *stageMetrics) acked(n int, recordTime time.Time, st *handOut) {
	if !sm.enabled() {
		return
	}
	sm.produced.Add(float64(n))
	if recordTime.IsZero() || recordTime.Unix() <= 0 {
		return
	}
	now := time.Now()
	age := now.Sub(recordTime).Seconds()
	last := sm.lastExemplar.Load()
	if eo, ok := sm.latency.(prometheus.ExemplarObserver); ok && st != nil && st.built && now.UnixNano()-last >= int64(exemplarEvery) &&
		sm.lastExemplar.CompareAndSwap(last, now.UnixNano()) {
		// The job id is looked up only for the exemplar: a string per
		// record otherwise.
		if job := st.in.Headers.Get(filters.HeaderJob); job != "" {
			eo.ObserveWithExemplar(age, prometheus.Labels{"job_id": job})
			return
		}
	}
	sm.latency.Observe(age)
}

// filterFailed counts a failed filter call by its reason.
func (sm *stageMetrics) filterFailed(msg *message.Message, err error) {
	if !sm.enabled() || stopping(msg) {
		return
	}
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		sm.errors[reasonPanic].Inc()
	case timedOut(msg.Context()):
		sm.errors[reasonTimeout].Inc()
	case filters.IsPermanent(err):
		sm.errors[reasonPermanent].Inc()
	default:
		sm.errors[reasonError].Inc()
	}
}

// producerFailed counts a publish the producer could not complete.
func (sm *stageMetrics) producerFailed() {
	if sm.enabled() {
		sm.producerErrors.Inc()
	}
}

// count adds one to the counter of sm that which picks, if sm records.
func (sm *stageMetrics) count(which func(*stageMetrics) prometheus.Counter) {
	if sm.enabled() {
		which(sm).Inc()
	}
}

// setLag sets the consumer lag of a stage: topic → partition → records.
func (m *Metrics) setLag(pipeline, stage string, lag map[string]map[int32]int64) {
	for t, ps := range lag {
		for p, n := range ps {
			m.lag.WithLabelValues(pipeline, stage, t, strconv.Itoa(int(p))).Set(float64(n))
		}
	}
}

// setReady sets the stage's ready gauge.
func (sm *stageMetrics) setReady(ready bool) {
	if !sm.enabled() {
		return
	}
	v := 0.0
	if ready {
		v = 1
	}
	sm.ready.Set(v)
}

// jobMetrics are the job results' metrics; nil without metrics.
func (m *Metrics) jobMetrics() *jobs.Metrics {
	if m == nil {
		return nil
	}
	return m.jobs
}
