package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// MetadataRefresh is how often clients refresh the cluster's metadata, and
// so how soon a stage's group leader sees partitions added to a topic it
// reads and rebalances to read them (sarama's default is 10 minutes; the
// Java client's metadata.max.age.ms is 5).
const MetadataRefresh = 30 * time.Second

// KafkaVersion is the protocol version millrace speaks. Kafka 4.x dropped
// the oldest request versions, so it must not be lower than 2.8.
var KafkaVersion = sarama.V3_6_0_0

// DefaultSessionTimeout is how long a consumer group member may go without
// a heartbeat before the coordinator evicts it (Kafka's and sarama's
// default for classic groups).
const DefaultSessionTimeout = 10 * time.Second

// DefaultRebalanceTimeout bounds how long the coordinator waits for the
// members to rejoin in a rebalance (sarama's default; the Java client's is
// max.poll.interval.ms, 5 minutes).
const DefaultRebalanceTimeout = 60 * time.Second

// joinGroupTimeoutLapse is the Java client's JOIN_GROUP_TIMEOUT_LAPSE: how
// much longer than the rebalance timeout it waits for a JoinGroup response.
const joinGroupTimeoutLapse = 5 * time.Second

// SetGroupTimeouts sets the consumer group timeouts of c together:
// the session timeout, the heartbeat interval (a third of the session
// timeout, as Kafka advises), the rebalance timeout, and a read timeout
// long enough for the requests the coordinator may hold for a whole
// rebalance timeout (JoinGroup, and SyncGroup while the leader assigns).
//
// The Java client waits max(request.timeout.ms, rebalance + 5 s) for a
// JoinGroup (AbstractCoordinator.JOIN_GROUP_TIMEOUT_LAPSE). Sarama has one
// read timeout for every request, so c.Net.ReadTimeout is raised to
// rebalance + 5 s when it is shorter, never lowered. With a shorter read
// timeout a member gives up on a JoinGroup the coordinator still holds,
// rejoins, and the rebalance waits for it again.
func SetGroupTimeouts(c *sarama.Config, session, rebalance time.Duration) {
	c.Consumer.Group.Session.Timeout = session
	c.Consumer.Group.Heartbeat.Interval = session / 3
	c.Consumer.Group.Rebalance.Timeout = rebalance
	c.Net.ReadTimeout = max(c.Net.ReadTimeout, rebalance+joinGroupTimeoutLapse)
}

// DefaultMaxPartitionFetchBytes is how many bytes of one partition a
// fetch returns at most (max.partition.fetch.bytes; a larger record batch
// still comes whole): 256 KiB, a quarter of the Java client's and sarama's
// 1 MiB. A consumer holds what it fetched decompressed, and decoded into
// one message per record: a stage draining 1,000,000 snappy-compressed
// records (8 to 1 compressible) over 8 partitions peaked at 314 MB of RSS
// with 1 MiB, 115 MB with 256 KiB, at the same records/s (make bench, case
// rss; uncompressed 92 → 63 MB).
const DefaultMaxPartitionFetchBytes = 256 << 10

// NewSaramaConfig returns the client config millrace uses everywhere:
// consumer groups start at the oldest offset, fetch at most
// [DefaultMaxPartitionFetchBytes] per partition, offsets are auto-committed
// (only marked offsets, which the subscriber marks after an ack), group
// timeouts are the defaults set together by [SetGroupTimeouts], producers
// wait for all in-sync replicas and partition keys the way Java clients do.
// Sarama's go-metrics are off but for the count of requests by API
// ([KafkaRequests]); millrace exports its own metrics, to Prometheus.
// It is the config of consuming and admin clients: a producer on it is
// not idempotent, and a batch its retries send again after the broker
// applied it (REQUEST_TIMED_OUT) is written twice. Producers use
// [NewProducerConfig].
func NewSaramaConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = KafkaVersion
	c.ClientID = "millrace"
	if clientID != "" {
		c.ClientID = clientID
	}
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	c.Consumer.Fetch.Default = DefaultMaxPartitionFetchBytes
	// Range co-partitions: a member that owns partition p of a stage's
	// input also owns partition p of its retry tiers (same partition
	// counts), which parking records behind a retried key relies on. It is
	// also stateless; sarama's sticky strategy keeps state and races when
	// one config serves several consumer groups.
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	SetGroupTimeouts(c, DefaultSessionTimeout, DefaultRebalanceTimeout)
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 10
	c.Producer.Retry.Backoff = 250 * time.Millisecond
	c.Producer.Partitioner = NewMurmur2Partitioner
	c.Metadata.Retry.Max = 5
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	c.Metadata.RefreshFrequency = MetadataRefresh
	c.MetricRegistry = noMetrics{}
	return c
}

// NewProducerConfig is NewSaramaConfig for a producer client: idempotent
// (so retries never duplicate or reorder records), one request in flight
// per broker as idempotence requires, and records compressed with codec
// ("none", "gzip", "snappy", "lz4" or "zstd"; empty means none). It joins
// no group, so its read timeout stays sarama's (and Java's request
// timeout) 30 s. It keeps the metadata of the topics it produces to, as
// Java's producer does, not of every topic (sarama's Metadata.Full): a
// process has a producer per stage (router.Engine).
func NewProducerConfig(clientID string) *sarama.Config {
	c := NewSaramaConfig(clientID)
	c.Metadata.Full = false
	c.Net.ReadTimeout = sarama.NewConfig().Net.ReadTimeout
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Flush.MaxMessages = 0
	c.ChannelBufferSize = 4096
	return c
}

// SetCompression sets the producer's compression codec by name.
func SetCompression(c *sarama.Config, codec string) error {
	switch codec {
	case "", "none":
		c.Producer.Compression = sarama.CompressionNone
	case "gzip":
		c.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		c.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		c.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		c.Producer.Compression = sarama.CompressionZSTD
	default:
		return fmt.Errorf("unknown compression %q: want none, gzip, snappy, lz4 or zstd", codec)
	}
	return nil
}

// Connect opens a sarama client, retrying with backoff (250 ms doubling to
// 5 s) until the cluster answers or ctx ends; the error then says which
// brokers were tried and how often. Each failed attempt is logged to log
// (if not nil).
func Connect(ctx context.Context, brokers []string, cfg *sarama.Config, log *slog.Logger) (sarama.Client, error) {
	return connect(ctx, brokers, cfg, log)
}

// ConnectTimeout bounds [Connect] by a timeout.
func ConnectTimeout(ctx context.Context, brokers []string, cfg *sarama.Config, timeout time.Duration) (sarama.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return Connect(ctx, brokers, cfg, nil)
}

// connect is Connect, logging each failed attempt to log (if not nil).
func connect(ctx context.Context, brokers []string, cfg *sarama.Config, log *slog.Logger) (sarama.Client, error) {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		client, err := newClient(ctx, brokers, cfg)
		if err == nil {
			return client, nil
		}
		if serr := securityError(err, cfg); serr != nil {
			return nil, fmt.Errorf("cannot connect to Kafka at %s: %w", strings.Join(brokers, ","), serr)
		}
		if log != nil && ctx.Err() == nil {
			log.Warn("cannot reach Kafka yet; retrying", "brokers", strings.Join(brokers, ","), "attempt", attempt,
				"retry_in", backoff, "err", err)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				tries := "attempts"
				if attempt == 1 {
					tries = "attempt"
				}
				return nil, fmt.Errorf("cannot reach Kafka at %s (is the broker running?%s) (%d %s): %w",
					strings.Join(brokers, ","), protocolHint(err, cfg), attempt, tries, err)
			}
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// errNoAnswer is the error of an attempt that ctx ended before the brokers
// answered.
var errNoAnswer = errors.New("the brokers did not answer")

// newClient is sarama.NewClient, given up when ctx ends (the client, if
// it comes later, is closed). sarama's own bound on an attempt is its
// read timeout times its metadata retries: minutes with a consumer
// group's read timeout, when a listener takes the connection and never
// answers (a TLS client on a PLAINTEXT listener that waits for the rest
// of a "request").
func newClient(ctx context.Context, brokers []string, cfg *sarama.Config) (sarama.Client, error) {
	type result struct {
		client sarama.Client
		err    error
	}
	done := make(chan result, 1)
	go func() {
		c, err := sarama.NewClient(brokers, cfg)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.client, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.client != nil {
				_ = r.client.Close()
			}
		}()
		return nil, errNoAnswer
	}
}

// protocolHint is what to add to "is the broker running?" when the
// brokers closed the connection or never answered, which is also how a
// listener that wants another security protocol treats a client: the
// protocol the client spoke.
func protocolHint(err error, cfg *sarama.Config) string {
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errNoAnswer) {
		return ""
	}
	proto := "PLAINTEXT"
	switch {
	case cfg.Net.TLS.Enable && cfg.Net.SASL.Enable:
		proto = "SASL_SSL"
	case cfg.Net.TLS.Enable:
		proto = "SSL"
	case cfg.Net.SASL.Enable:
		proto = "SASL_PLAINTEXT"
	}
	return fmt.Sprintf("; if it is, does its listener speak %s? see broker.tls and broker.sasl, $MILLRACE_TLS*, $MILLRACE_SASL_*", proto)
}
