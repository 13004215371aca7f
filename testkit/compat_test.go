package testkit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// A stage builds its output records itself (not through Watermill's
// marshaler), so check that a stock watermill-kafka subscriber reads them:
// a message UUID, the payload, the headers the filter kept (an empty value
// stays empty), millrace's job/stage/attempt headers, and no failure
// headers.
func TestPipeline_outputs_are_read_by_a_stock_watermill_kafka_subscriber(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "compat-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 2}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages: [{name: pass, filter: jq, config: {program: '.'}}]
`, name))
		const n = 20
		in := make([]testkit.Record, n)
		for i := range in {
			in[i] = testkit.Record{Key: []byte(fmt.Sprint("k", i%3)), Value: fmt.Appendf(nil, `{"i":%d}`, i),
				Headers: map[string]string{"trace": fmt.Sprint("t-", i), "empty": "", "millrace-error": "stale"}}
		}
		b.CreateTopic(t, name+".in", 2)
		b.Produce(t, name+".in", in)
		testkit.Run(t, b, plan, testkit.RunOptions{})

		cfg := wkafka.DefaultSaramaSubscriberConfig()
		cfg.Version = transport.KafkaVersion
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
			Brokers: b.Brokers, ConsumerGroup: name + ".stock", Unmarshaler: wkafka.DefaultMarshaler{},
			OverwriteSaramaConfig: cfg,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		msgs, err := sub.Subscribe(ctx, name+".out")
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		seen := map[string]bool{}
		for len(seen) < n {
			var m *message.Message
			select {
			case m = <-msgs:
			case <-ctx.Done():
				t.Fatalf("stock subscriber read %d of %d records", len(seen), n)
			}
			m.Ack()
			if m.UUID == "" || ids[m.UUID] {
				t.Errorf("message UUID %q is empty or repeated", m.UUID)
			}
			ids[m.UUID] = true
			md := m.Metadata
			var i int
			if _, err := fmt.Sscanf(string(m.Payload), `{"i":%d}`, &i); err != nil {
				t.Fatalf("payload %q: %v", m.Payload, err)
			}
			want := fmt.Sprint("t-", i)
			if md["trace"] != want {
				t.Errorf("record %d: trace %q, want %q", i, md["trace"], want)
			}
			if v, ok := md["empty"]; !ok || v != "" {
				t.Errorf("record %d: header empty = %q (present %v), want an empty value", i, v, ok)
			}
			if md["millrace-stage"] != "pass" || md["millrace-attempt"] != "1" || md["millrace-job"] == "" {
				t.Errorf("record %d: stage %q attempt %q job %q, want pass, 1 and a job id",
					i, md["millrace-stage"], md["millrace-attempt"], md["millrace-job"])
			}
			if _, ok := md["millrace-error"]; ok {
				t.Errorf("record %d kept the failure header millrace-error", i)
			}
			seen[want] = true
		}
	})
}
