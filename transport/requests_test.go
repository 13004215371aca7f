package transport_test

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
	metrics "github.com/rcrowley/go-metrics"
)

// UncountedMetrics hands out no counting meter.
func TestUncountedMetrics_counts_nothing(t *testing.T) {
	m := transport.UncountedMetrics().GetOrRegister("protocol-requests-rate-0", metrics.NewMeter)
	if _, ok := m.(metrics.NilMeter); !ok {
		t.Errorf("UncountedMetrics gave a %T for Produce requests, want a metrics.NilMeter", m)
	}
	c := transport.NewSaramaConfig("x").MetricRegistry.GetOrRegister("protocol-requests-rate-0", metrics.NewMeter)
	if _, ok := c.(metrics.NilMeter); ok {
		t.Error("NewSaramaConfig's registry does not count Produce requests")
	}
}

// TestKafkaRequests_counts_what_clients_send: a producer made with
// NewProducerConfig counts its Metadata and Produce requests.
func TestKafkaRequests_counts_what_clients_send(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic := "requests-" + testkit.Unique()
		b.CreateTopic(t, topic, 1)
		before := transport.KafkaRequests()
		p, err := sarama.NewSyncProducer(b.Brokers, transport.NewProducerConfig("requests-test"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		const n = 3
		for i := range n {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("x")}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		after := transport.KafkaRequests()
		// Other tests of the package may run clients meanwhile: only
		// growth by at least what this producer sent is asserted.
		if got := after[0] - before[0]; got < n {
			t.Errorf("Produce requests counted: %d, want at least %d", got, n)
		}
		if got := after[3] - before[3]; got < 1 {
			t.Errorf("Metadata requests counted: %d, want at least 1", got)
		}
	})
}
