package transport_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/millrace/millrace/internal/kfake"
	"github.com/millrace/millrace/transport"
)

// A broker answers the requests of one connection one at a time, in order.
// A consumer group's requests to its coordinator (here an offset commit
// the broker holds) go over connections of their own, so they never hold
// the member's fetches: records keep coming while a commit is held.
func TestSubscriber_fetches_while_the_coordinator_holds_a_commit(t *testing.T) {
	const topic = "commit-held"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var holding atomic.Bool
	c.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		if holding.CompareAndSwap(false, true) {
			close(held)
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false // then the broker answers it as usual
	})
	var releaseOnce sync.Once
	releaseCommit := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { releaseCommit(); c.Close() })

	brokers := c.ListenAddrs()
	producer, err := sarama.NewSyncProducer(brokers, transport.NewProducerConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { producer.Close() })
	produce := func(v string) {
		t.Helper()
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := transport.NewSubscriber(transport.SubscriberConfig{
		Brokers: brokers, Group: "g", Sarama: testSaramaConfig(), DrainTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releaseCommit(); sub.Close() })
	msgs, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	next := func(want string, within time.Duration, why string) {
		t.Helper()
		select {
		case m := <-msgs:
			if string(m.Payload) != want {
				t.Fatalf("got record %q, want %q", m.Payload, want)
			}
			m.Ack()
		case <-time.After(within):
			t.Fatalf("record %q did not come within %s%s", want, within, why)
		}
	}
	produce("1")
	next("1", 30*time.Second, "")
	// Its ack is committed within a second (auto-commit), and held.
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("no offset commit within 10 s of an ack")
	}
	// A fetch sent before the commit may still bring "2"; "3" needs one
	// sent after it.
	for _, v := range []string{"2", "3"} {
		produce(v)
		next(v, 5*time.Second, " while an offset commit was held: the commit holds the fetches")
	}
}
