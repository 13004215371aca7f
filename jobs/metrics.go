package jobs

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the job results' counters. A nil *Metrics counts nothing.
type Metrics struct {
	finishedTotal *prometheus.CounterVec
	replies       *prometheus.CounterVec
	callbacks     *prometheus.CounterVec
}

// NewMetrics registers the job results' metrics with reg:
//
//   - millrace_jobs_finished_total{pipeline,status}: jobs that finished,
//     status succeeded or failed (each job once, though a restart may fold
//     its events again);
//   - millrace_replies_total{pipeline,result}: replies sent, or refused
//     (result="refused": millrace-reply-to named a topic that is not in
//     results.reply_topics);
//   - millrace_callbacks_total{pipeline,result}: callback attempts that
//     delivered, will be retried, or gave up (result delivered, retry,
//     failed).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		finishedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "millrace_jobs_finished_total",
			Help: "Jobs that finished, by status (succeeded, failed)."}, []string{"pipeline", "status"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "millrace_replies_total",
			Help: "Job replies sent, or refused because millrace-reply-to named a topic not in results.reply_topics."},
			[]string{"pipeline", "result"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "millrace_callbacks_total",
			Help: "Callback attempts, by result (delivered, retry, failed)."}, []string{"pipeline", "result"}),
	}
	for _, c := range []prometheus.Collector{m.finishedTotal, m.replies, m.callbacks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) finished(pipeline string, s State) {
	if m != nil {
		m.finishedTotal.WithLabelValues(pipeline, string(s)).Inc()
	}
}

func (m *Metrics) replySent(pipeline string) {
	if m != nil {
		m.replies.WithLabelValues(pipeline, "sent").Inc()
	}
}

func (m *Metrics) replyRefused(pipeline string) {
	if m != nil {
		m.replies.WithLabelValues(pipeline, "refused").Inc()
	}
}

// callbackOutcome counts the callback outcomes of pipeline's jobs.
func (m *Metrics) callbackOutcome(pipeline string) func(CallbackOutcome) {
	return func(o CallbackOutcome) {
		if m == nil {
			return
		}
		result := map[CallbackOutcome]string{CallbackDelivered: "delivered", CallbackRetried: "retry", CallbackGivenUp: "failed"}[o]
		m.callbacks.WithLabelValues(pipeline, result).Inc()
	}
}
