package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

// SubscriberConfig configures a [Subscriber].
type SubscriberConfig struct {
	Brokers []string
	// Group is the consumer group every subscription joins.
	Group string
	// Sarama is the client config; nil means NewSaramaConfig("").
	Sarama *sarama.Config
	// DrainTimeout bounds how long Close, or a rebalance, waits for records
	// already handed out to be acked. Default 30s.
	DrainTimeout time.Duration
	// NackBackoff is the first wait before a nacked record is handed out
	// again; it doubles up to NackBackoffMax. Defaults 100ms and 10s.
	NackBackoff, NackBackoffMax time.Duration
	// InitializePartitions is the partition count SubscribeInitialize
	// creates topics with. Default 8.
	InitializePartitions int
	Logger               *slog.Logger
}

func (c *SubscriberConfig) setDefaults() {
	if c.Sarama == nil {
		c.Sarama = NewSaramaConfig("")
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.NackBackoff <= 0 {
		c.NackBackoff = 100 * time.Millisecond
	}
	if c.NackBackoffMax < c.NackBackoff {
		c.NackBackoffMax = max(10*time.Second, c.NackBackoff)
	}
	if c.InitializePartitions <= 0 {
		c.InitializePartitions = 8
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports what is missing from the config.
func (c SubscriberConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("no brokers")
	}
	if c.Group == "" {
		return errors.New("no consumer group")
	}
	return nil
}

// Subscriber is a Watermill [message.Subscriber] on a Kafka consumer group.
//
// Each claimed partition hands out one record at a time and waits for its
// ack before the next, so records of one partition (and so of one key) are
// processed in offset order. An ack marks the record's offset for commit; a
// nack hands the same record out again after a backoff. Offsets are never
// committed past a record that was not acked. Close stops fetching, waits
// (up to DrainTimeout) for the records in flight to be acked, commits and
// leaves the group, so a graceful stop redelivers nothing.
type Subscriber struct {
	cfg     SubscriberConfig
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a subscriber; it connects on Subscribe.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid subscriber config: %w", err)
	}
	return &Subscriber{cfg: cfg, closing: make(chan struct{})}, nil
}

// Subscribe joins the consumer group for topic and returns the records as
// messages. The channel is closed after Close, or when ctx ends.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("subscriber is closed")
	default:
	}
	group, err := sarama.NewConsumerGroup(s.cfg.Brokers, s.cfg.Group, s.cfg.Sarama)
	if err != nil {
		return nil, fmt.Errorf("join consumer group %s: %w", s.cfg.Group, err)
	}
	out := make(chan *message.Message)
	log := s.cfg.Logger.With("group", s.cfg.Group, "topic", topic)
	runCtx, cancel := context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.closing:
		case <-runCtx.Done():
		}
		// Consume returns once every claim has drained and offsets are committed.
		cancel()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer cancel()
		h := &groupHandler{s: s, out: out, topic: topic, log: log, stop: runCtx.Done()}
		s.consume(runCtx, group, topic, h, log)
		if err := group.Close(); err != nil {
			log.Warn("closing consumer group", "err", err)
		}
	}()
	go func() {
		for err := range group.Errors() {
			log.Warn("consumer group error", "err", err)
		}
	}()
	return out, nil
}

func (s *Subscriber) consume(ctx context.Context, group sarama.ConsumerGroup, topic string, h *groupHandler, log *slog.Logger) {
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := group.Consume(ctx, []string{topic}, h)
		if err == nil || ctx.Err() != nil {
			backoff = 250 * time.Millisecond
			continue
		}
		log.Error("consuming failed, retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

var _ message.SubscribeInitializer = (*Subscriber)(nil)

// SubscribeInitialize creates topic, with InitializePartitions partitions,
// if it does not exist.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	client, err := sarama.NewClient(s.cfg.Brokers, s.cfg.Sarama)
	if err != nil {
		return fmt.Errorf("initialize topic %s: %w", topic, err)
	}
	defer client.Close()
	return EnsureTopics(client, []Topic{{Name: topic, Partitions: s.cfg.InitializePartitions}}, -1, s.cfg.Logger)
}

// Close stops every subscription gracefully; see [Subscriber].
func (s *Subscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

type groupHandler struct {
	s     *Subscriber
	out   chan<- *message.Message
	topic string
	log   *slog.Logger
	stop  <-chan struct{}
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.log.Debug("partitions assigned", "claims", sess.Claims()[h.topic], "generation", sess.GenerationID())
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case <-h.stop:
			return nil
		case rec, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if !h.deliver(sess, rec) {
				return nil
			}
		}
	}
}

// deliver hands one record out until it is acked, and marks it. It returns
// false when the claim must end (shutdown or rebalance).
func (h *groupHandler) deliver(sess sarama.ConsumerGroupSession, rec *sarama.ConsumerMessage) bool {
	msg, err := Marshaler{}.Unmarshal(rec)
	if err != nil {
		h.log.Error("cannot decode record, skipping it", "partition", rec.Partition, "offset", rec.Offset, "err", err)
		sess.MarkMessage(rec, "")
		return true
	}
	ctx, cancel := context.WithCancel(withRecord(context.Background(),
		Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}))
	defer cancel()
	backoff := h.s.cfg.NackBackoff
	for {
		msg.SetContext(ctx)
		select {
		case h.out <- msg:
		case <-sess.Context().Done():
			return false
		case <-h.stop:
			return false
		}
		switch h.await(sess, msg) {
		case acked:
			sess.MarkMessage(rec, "")
			return true
		case abandoned:
			h.log.Warn("record still in flight after the drain timeout; it will be redelivered",
				"partition", rec.Partition, "offset", rec.Offset, "drain_timeout", h.s.cfg.DrainTimeout)
			return false
		}
		select {
		case <-time.After(backoff):
		case <-sess.Context().Done():
			return false
		case <-h.stop:
			return false
		}
		backoff = min(2*backoff, h.s.cfg.NackBackoffMax)
		msg = msg.Copy()
	}
}

type outcome int

const (
	acked outcome = iota
	nacked
	abandoned
)

// await waits for the message's ack or nack. Once the claim is told to stop
// it keeps waiting, for DrainTimeout at most, so in-flight work finishes.
func (h *groupHandler) await(sess sarama.ConsumerGroupSession, msg *message.Message) outcome {
	stop, revoked := h.stop, sess.Context().Done()
	var deadline <-chan time.Time
	for {
		select {
		case <-msg.Acked():
			return acked
		case <-msg.Nacked():
			return nacked
		case <-stop:
			stop, revoked = nil, nil
			deadline = time.After(h.s.cfg.DrainTimeout)
		case <-revoked:
			stop, revoked = nil, nil
			deadline = time.After(h.s.cfg.DrainTimeout)
		case <-deadline:
			return abandoned
		}
	}
}
