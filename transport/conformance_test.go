package transport_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func testSaramaConfig() *sarama.Config {
	c := transport.NewSaramaConfig("conformance")
	c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Group.Rebalance.Timeout = 3 * time.Second
	return c
}

func pubSub(t *testing.T, b testkit.Backend, group string, keyed bool) (message.Publisher, message.Subscriber) {
	pub, err := transport.NewPublisher(b.Brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := transport.NewSubscriber(transport.SubscriberConfig{
		Brokers: b.Brokers, Group: group, Sarama: testSaramaConfig(),
		DrainTimeout: 5 * time.Second, NackBackoff: 10 * time.Millisecond, NackBackoffMax: 10 * time.Millisecond,
		InitializePartitions: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	var p message.Publisher = pub
	if keyed {
		p = sameKeyPublisher{p}
	}
	return p, sub
}

// sameKeyPublisher gives every message one key, so all of them share a
// partition and their order is guaranteed.
type sameKeyPublisher struct{ message.Publisher }

func (p sameKeyPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		transport.SetMessageKey(m, []byte("one-key"))
	}
	return p.Publisher.Publish(topic, msgs...)
}

// TestTransport_passes_watermill_conformance runs Watermill's own Pub/Sub
// test suite against millrace's transport. Order is only guaranteed per
// key, so the suite runs twice: keyless (no order) and with one key (order).
func TestTransport_passes_watermill_conformance(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		for _, keyed := range []bool{false, true} {
			name := "unkeyed"
			if keyed {
				name = "one_key_ordered"
			}
			t.Run(name, func(t *testing.T) {
				tests.TestPubSub(t,
					tests.Features{
						ConsumerGroups:                   true,
						ExactlyOnceDelivery:              false,
						GuaranteedOrder:                  keyed,
						Persistent:                       true,
						NewSubscriberReceivesOldMessages: false,
					},
					func(t *testing.T) (message.Publisher, message.Subscriber) {
						return pubSub(t, b, "conformance", keyed)
					},
					func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
						return pubSub(t, b, group, keyed)
					},
				)
			})
		}
	})
}
