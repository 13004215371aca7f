package testkit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Record is a Kafka record as tests produce and read it.
type Record struct {
	Key   []byte
	Value []byte
	// Headers are the record's headers by name; of a name that repeats,
	// the last value (as Kafka's Headers.lastHeader).
	Headers map[string]string
	// HeaderList are the headers as they are on the record: in order,
	// names possibly repeated (KIP-82). Produce writes HeaderList when it
	// is set, else Headers (in no particular order).
	HeaderList filters.Headers
	Partition  int32
	Offset     int64
}

// SaramaConfig returns the client config testkit's helpers use:
// transport.NewSaramaConfig with the backend's Security applied.
func (b Backend) SaramaConfig(t testing.TB) *sarama.Config {
	t.Helper()
	c, err := b.saramaConfig()
	if err != nil {
		t.Fatalf("client config for %s: %v", b.Name, err)
	}
	return c
}

func (b Backend) saramaConfig() (*sarama.Config, error) {
	c := transport.NewSaramaConfig("testkit")
	if err := b.Security.Apply(c); err != nil {
		return nil, err
	}
	return c, nil
}

// connect opens a client for the backend, retrying for up to 30 s.
func (b Backend) connect() (sarama.Client, error) {
	cfg, err := b.saramaConfig()
	if err != nil {
		return nil, err
	}
	return transport.ConnectTimeout(context.Background(), b.Brokers, cfg, 30*time.Second)
}

// Client returns a sarama client for the backend, closed when the test ends.
func (b Backend) Client(t testing.TB) sarama.Client {
	t.Helper()
	c, err := b.connect()
	if err != nil {
		t.Fatalf("connect to %s: %v", b.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// CreateTopic creates a topic with the given partitions.
func (b Backend) CreateTopic(t testing.TB, topic string, partitions int) {
	t.Helper()
	c := b.Client(t)
	if err := kafkaops.EnsureTopics(c, []pipeline.Topic{{Name: topic, Partitions: partitions}}, -1, discard()); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// Produce sends records to topic, waiting for the broker's acks. The
// producer is idempotent, as millrace's are (transport.NewProducerConfig):
// a send retried after a timeout under load once wrote a record twice and
// failed a test that counts them.
func (b Backend) Produce(t testing.TB, topic string, records []Record) {
	t.Helper()
	cfg := transport.NewProducerConfig("testkit")
	if err := b.Security.Apply(cfg); err != nil {
		t.Fatalf("producer config for %s: %v", b.Name, err)
	}
	client, err := transport.ConnectTimeout(context.Background(), b.Brokers, cfg, 30*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", b.Name, err)
	}
	defer client.Close()
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("open producer: %v", err)
	}
	defer p.Close()
	const batch = 1000
	for start := 0; start < len(records); start += batch {
		msgs := make([]*sarama.ProducerMessage, 0, batch)
		for _, r := range records[start:min(start+batch, len(records))] {
			m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(r.Value)}
			if r.Key != nil {
				m.Key = sarama.ByteEncoder(r.Key)
			}
			for _, h := range r.HeaderList {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
			}
			if r.HeaderList == nil {
				for k, v := range r.Headers {
					m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
				}
			}
			msgs = append(msgs, m)
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// Read reads topic from the beginning until it holds n records or timeout
// passes, and returns them ordered by partition and offset. It fails the
// test on timeout, saying how many records had arrived.
func (b Backend) Read(t testing.TB, topic string, n int, timeout time.Duration) []Record {
	t.Helper()
	recs, err := b.readUntil(topic, timeout, func(got int) bool { return got >= n })
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	if len(recs) < n {
		t.Fatalf("read %s: got %d records within %s, want %d", topic, len(recs), timeout, n)
	}
	return recs
}

// ReadAll reads every record in topic now (up to the end offsets at call time).
func (b Backend) ReadAll(t testing.TB, topic string) []Record {
	t.Helper()
	c := b.Client(t)
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	total := 0
	for _, p := range parts {
		// kafkaops.GetOffset waits out a leader that is settling (a topic
		// created a moment before: NOT_LEADER from real Kafka).
		end, err1 := kafkaops.GetOffset(context.Background(), c, topic, p, sarama.OffsetNewest)
		start, err2 := kafkaops.GetOffset(context.Background(), c, topic, p, sarama.OffsetOldest)
		if err1 != nil || err2 != nil {
			t.Fatalf("offsets of %s/%d: %v %v", topic, p, err1, err2)
		}
		total += int(end - start)
	}
	return b.Read(t, topic, total, 30*time.Second)
}

func (b Backend) readUntil(topic string, timeout time.Duration, done func(int) bool) ([]Record, error) {
	if done(0) {
		return nil, nil
	}
	c, err := b.connect()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	consumer, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		recs []Record
	)
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := consumePartition(consumer, c, topic, p)
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case <-stop:
					return
				case m := <-pc.Messages():
					mu.Lock()
					recs = append(recs, fromSarama(m))
					if done(len(recs)) {
						once.Do(func() { close(stop) })
					}
					mu.Unlock()
				}
			}
		}()
	}
	select {
	case <-stop:
	case <-time.After(timeout):
		once.Do(func() { close(stop) })
	}
	wg.Wait()
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	return recs, nil
}

// consumePartition starts reading topic/p from its oldest offset, waiting
// up to 30 s for a partition created a moment ago to get its leader (Kafka
// answers NOT_LEADER_OR_FOLLOWER or LEADER_NOT_AVAILABLE until then).
func consumePartition(consumer sarama.Consumer, c sarama.Client, topic string, p int32) (sarama.PartitionConsumer, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err == nil || time.Now().After(deadline) ||
			!(errors.Is(err, sarama.ErrNotLeaderForPartition) || errors.Is(err, sarama.ErrLeaderNotAvailable)) {
			return pc, err
		}
		time.Sleep(100 * time.Millisecond) // a retry backoff: nothing to wait on
		_ = c.RefreshMetadata(topic)
	}
}

func fromSarama(m *sarama.ConsumerMessage) Record {
	h := make(map[string]string, len(m.Headers))
	list := make(filters.Headers, 0, len(m.Headers))
	for _, x := range m.Headers {
		list = append(list, filters.Header{Key: string(x.Key), Value: x.Value})
		h[string(x.Key)] = string(x.Value)
	}
	return Record{Key: m.Key, Value: m.Value, Headers: h, HeaderList: list, Partition: m.Partition, Offset: m.Offset}
}

// GroupLag returns how many records of topic the consumer group has not
// committed yet.
func (b Backend) GroupLag(t testing.TB, group, topic string) int64 {
	t.Helper()
	c := b.Client(t)
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		// The embedded broker's answer for a group that has not committed
		// yet (Kafka returns no offsets): nothing is committed.
		resp, err = &sarama.OffsetFetchResponse{}, nil
	}
	if err != nil {
		t.Fatalf("offsets of group %s: %v", group, err)
	}
	var lag int64
	for _, p := range parts {
		end, err := kafkaops.GetOffset(context.Background(), c, topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("end offset %s/%d: %v", topic, p, err)
		}
		committed := int64(0)
		if blk := resp.GetBlock(topic, p); blk != nil && blk.Offset >= 0 {
			committed = blk.Offset
		}
		lag += end - committed
	}
	return lag
}

// Eventually polls cond every 50ms until it is true, failing the test
// with msg after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, fmt.Sprintf(format, args...))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Admin returns a cluster admin for the backend.
func (b Backend) Admin(t testing.TB) sarama.ClusterAdmin {
	t.Helper()
	a, err := sarama.NewClusterAdminFromClient(b.Client(t))
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	return a
}
