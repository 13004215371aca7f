package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// already handed out to be acked; then they are cancelled, and their
	// handlers get DrainGrace more to return. Default 30s. A rebalance
	// timeout (Consumer.Group.Rebalance.Timeout) shorter than DrainTimeout
	// plus DrainGrace lets Kafka expel the member while it drains.
	DrainTimeout time.Duration
	// NackBackoff is the first wait before a nacked record is handed out
	// again; it doubles up to NackBackoffMax. Defaults 100ms and 10s.
	NackBackoff, NackBackoffMax time.Duration
	// MaxInFlight is how many records of one partition may be handed out
	// and not yet acked at once. Default 256.
	MaxInFlight int
	// SettleFromContext makes the subscriber learn each message's outcome
	// from [Settle] called with the message's context, instead of watching
	// its Ack and Nack (which costs a goroutine per message). The engine
	// uses it; plain Watermill users leave it false.
	SettleFromContext bool
	// Unordered hands out records of the same key concurrently too.
	Unordered bool
	// DueHeader names a header holding the RFC 3339 time before which a
	// record of one of DueTopics must not be handed out (retry tiers). A
	// record not due yet holds back the records behind it in its partition.
	DueHeader string
	DueTopics []string
	// OnAssign is called when a session starts, with its claims, before any
	// record is fetched; an error ends the session (it is retried).
	OnAssign func(ctx context.Context, sess sarama.ConsumerGroupSession) error
	// OnRevoke is called when a session ends, after its claims drained.
	OnRevoke func(sess sarama.ConsumerGroupSession)
	// Fetched, if set, is called for each record the subscriber takes in
	// (a redelivered record again), on the partition's goroutine: it must
	// be quick.
	Fetched func()
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
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 256
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
// Each claimed partition keeps a window of up to MaxInFlight records handed
// out at once. Records with the same key are handed out strictly in offset
// order, one at a time: the next waits until the one before is acked.
// Records with different keys (and records without a key) run
// concurrently. An ack lets the partition's committed offset advance to the
// lowest offset not yet acked, never past it. A nack hands the same record
// out again after a backoff, and later records of its key keep waiting
// behind it. Memory is bounded by the window, not by the backlog.
//
// Close, or a rebalance that revokes a partition, stops fetching and waits
// (up to DrainTimeout) for the records in flight to be acked, then commits
// and releases the partition, so a graceful stop redelivers nothing.
type Subscriber struct {
	cfg      SubscriberConfig
	inFlight atomic.Int64 // records handed out and not settled, over all windows
	ready    atomic.Int64 // records ready to hand out, not handed out yet, over all windows
	closing  chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
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
// messages. topic may list several topics, separated by commas, to read
// them all in one group member. The channel is closed after Close, or when
// ctx ends.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("subscriber is closed")
	default:
	}
	group, closeClients, err := newConsumerGroup(s.cfg.Brokers, s.cfg.Group, s.cfg.Sarama)
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
		h := &groupHandler{s: s, out: out, log: log, stop: runCtx.Done()}
		s.consume(runCtx, group, strings.Split(topic, ","), h, log)
		if err := group.Close(); err != nil {
			log.Warn("closing consumer group", "err", err)
		}
		if err := closeClients(); err != nil {
			log.Warn("closing consumer group's clients", "err", err)
		}
	}()
	go func() {
		for err := range group.Errors() {
			log.Warn("consumer group error", "err", err)
		}
	}()
	return out, nil
}

func (s *Subscriber) consume(ctx context.Context, group sarama.ConsumerGroup, topics []string, h *groupHandler, log *slog.Logger) {
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		err := group.Consume(ctx, topics, h)
		switch {
		case err == nil || ctx.Err() != nil:
			backoff = 250 * time.Millisecond
			continue
		case errors.Is(err, context.Canceled) || errors.Is(err, sarama.ErrRebalanceInProgress):
			// A rebalance ended the session while it was being set up
			// (OnAssign reading its state): routine, the member rejoins.
			log.Info("consumer group session ended by a rebalance before it started; rejoining", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if errors.Is(err, sarama.ErrFencedInstancedId) {
			log.Error("another process joined this consumer group with the same group.instance.id (--instance-id, "+
				"$MILLRACE_INSTANCE_ID): each process needs its own, or the two fence each other; retrying",
				"instance_id", s.cfg.Sarama.Consumer.Group.InstanceId, "err", err, "retry_in", backoff)
		} else {
			log.Error("consuming failed, retrying", "err", err, "retry_in", backoff)
		}
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
	admin, err := sarama.NewClusterAdmin(s.cfg.Brokers, s.cfg.Sarama)
	if err != nil {
		return fmt.Errorf("initialize topic %s: %w", topic, err)
	}
	defer admin.Close()
	for _, t := range strings.Split(topic, ",") {
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: int32(s.cfg.InitializePartitions), ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("initialize topic %s: %w", t, err)
		}
	}
	return nil
}

// InFlight is how many records the subscriber has handed out and not had
// settled yet, over all its partitions.
func (s *Subscriber) InFlight() int64 { return s.inFlight.Load() }

// Ready is the number of records fetched and ready to hand out, not
// handed out yet, over all the subscriber's windows: records on their way
// to a handler (records queued behind their key or not due yet are not
// counted).
func (s *Subscriber) Ready() int64 { return s.ready.Load() }

// Close stops every subscription gracefully; see [Subscriber].
func (s *Subscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

type groupHandler struct {
	s    *Subscriber
	out  chan<- *message.Message
	log  *slog.Logger
	stop <-chan struct{}
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.log.Debug("partitions assigned", "claims", sess.Claims(), "generation", sess.GenerationID())
	if h.s.cfg.OnAssign != nil {
		return h.s.cfg.OnAssign(sess.Context(), sess)
	}
	return nil
}

func (h *groupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	if h.s.cfg.OnRevoke != nil {
		h.s.cfg.OnRevoke(sess)
	}
	return nil
}

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	w := &window{
		h: h, sess: sess, claim: claim,
		waiting: map[string][]*entry{},
		wake:    make(chan struct{}, 1),
		exit:    make(chan struct{}),
		ordered: !h.s.cfg.Unordered,
		high:    -1,
	}
	if slices.Contains(h.s.cfg.DueTopics, claim.Topic()) {
		w.dueHeader = h.s.cfg.DueHeader
	}
	w.run()
	return nil
}
