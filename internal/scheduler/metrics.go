package scheduler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/pipeline"
)

// Reasons a tick was skipped (millrace_schedule_skipped_total's reason).
const (
	// reasonOverlap: the schedule's previous job was still running.
	reasonOverlap = "overlap"
	// reasonCatchUp: missed while no process led, and catch_up passed it
	// over.
	reasonCatchUp = "catch_up"
	// reasonProgram: the payload or key program failed for the tick.
	reasonProgram = "program"
)

// Metrics are the scheduler's. A nil *Metrics counts nothing.
type Metrics struct {
	fires    *prometheus.CounterVec
	skipped  *prometheus.CounterVec
	lastTick *prometheus.GaugeVec
	leader   prometheus.Gauge
}

// NewMetrics registers the scheduler's metrics with reg:
//
//   - millrace_schedule_fired_total{pipeline,schedule}: ticks whose record
//     this process sent (catch-up included);
//   - millrace_schedule_skipped_total{pipeline,schedule,reason}: ticks
//     not fired, reason overlap (the previous job was still running),
//     catch_up (missed while no process led, and catch_up passed it over)
//     or program (the payload or key program failed);
//   - millrace_schedule_last_fired_timestamp_seconds{pipeline,schedule}:
//     the scheduled time of the last tick this process fired, Unix seconds;
//   - millrace_schedule_leader: 1 while this process leads (fires the
//     schedules), else 0.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	sl := []string{"pipeline", "schedule"}
	m := &Metrics{
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "millrace_schedule_fired_total",
			Help: "Ticks of a schedule whose record this process sent, catch-up included."}, sl),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "millrace_schedule_skipped_total",
			Help: "Ticks of a schedule not fired: overlap (the previous job still ran), catch_up (missed while no process led), program (the payload or key program failed)."},
			append(sl, "reason")),
		lastTick: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "millrace_schedule_last_fired_timestamp_seconds",
			Help: "Scheduled time of the last tick of a schedule this process fired, in Unix seconds."}, sl),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "millrace_schedule_leader",
			Help: "1 while this process leads the scheduler group: it is the one that fires the schedules."}),
	}
	for _, c := range []prometheus.Collector{m.fires, m.skipped, m.lastTick, m.leader} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) setLeading(on bool) {
	if m == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	m.leader.Set(v)
}

func (m *Metrics) fired(sp *pipeline.SchedulePlan, t time.Time) {
	if m == nil {
		return
	}
	m.fires.WithLabelValues(sp.Pipeline, sp.Name).Inc()
	m.lastTick.WithLabelValues(sp.Pipeline, sp.Name).Set(float64(t.Unix()))
}

func (m *Metrics) skip(sp *pipeline.SchedulePlan, reason string, n int) {
	if m == nil {
		return
	}
	m.skipped.WithLabelValues(sp.Pipeline, sp.Name, reason).Add(float64(n))
}
