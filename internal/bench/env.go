package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// env is what the cases of one backend share: the options, the brokers, an
// admin client and the run's unique prefix of topic and group names.
type env struct {
	opts    options
	backend *backend
	brokers []string
	client  sarama.Client
	admin   sarama.ClusterAdmin
	runID   string
	// log receives the warnings of the systems under test.
	log *slog.Logger
	// jit are the JIT compiler threads of a broker process (see
	// jitThreads), looked up when a drain starts.
	jit []int
}

// newEnv connects to the backend's brokers.
func newEnv(ctx context.Context, o options, b *backend) (*env, error) {
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("random run id: %w", err)
	}
	cfg := helperConfig("millrace-bench")
	var client sarama.Client
	var err error
	// The broker may still be starting: retry for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		client, err = sarama.NewClient(b.brokers, cfg)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(b.brokers, ","), err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("open cluster admin: %w", err)
	}
	return &env{
		opts: o, backend: b, brokers: b.brokers, client: client, admin: admin,
		runID: "b" + hex.EncodeToString(id),
		log:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, nil
}

// close closes the admin client and with it the client.
func (e *env) close() {
	if err := e.admin.Close(); err != nil {
		e.logf("close admin client: %v", err)
	}
}

// logf prints a progress line to stderr.
func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// prefix is the unique name prefix of one case's topics and groups:
// "<run id>-<name>". It is a valid millrace pipeline name.
func (e *env) prefix(name string) string { return e.runID + "-" + name }

// config is the sarama config of the bench's own clients (the backlog
// and load producers, the output counter and readers): millrace's, so that
// producers partition keys the way millrace does, but with a metrics
// registry of its own (see helperConfig), so that their requests are not
// counted in transport.KafkaRequests, which the drains report per record.
func (e *env) config(clientID string) *sarama.Config {
	return helperConfig(clientID)
}

// countedConfig is transport.NewSaramaConfig itself: the config of a
// measured system's clients (the raw loop), whose requests
// transport.KafkaRequests counts as it counts the millrace engine's.
func (e *env) countedConfig(clientID string) *sarama.Config {
	return transport.NewSaramaConfig(clientID)
}

// helperConfig is transport.NewSaramaConfig with transport's registry that
// does not count requests either, so that the bench's own clients stay out
// of the figures.
func helperConfig(clientID string) *sarama.Config {
	c := transport.NewSaramaConfig(clientID)
	c.MetricRegistry = transport.UncountedMetrics()
	return c
}

// createTopics creates topics with -partitions partitions each and waits
// until every partition has a leader that answers, so that no case pays
// for (or trips over) a topic that is still being set up: real Kafka
// elects leaders after CreateTopics returns.
func (e *env) createTopics(names ...string) error {
	ts := make([]pipeline.Topic, len(names))
	for i, n := range names {
		ts[i] = pipeline.Topic{Name: n, Partitions: e.opts.partitions}
	}
	return e.ensureTopics(ts)
}

// ensureTopics creates the topics of ts that do not exist, as millrace
// does (kafkaops.EnsureTopics, with their configs), and waits until every
// partition has a leader that answers.
func (e *env) ensureTopics(ts []pipeline.Topic) error {
	if err := kafkaops.EnsureTopics(e.client, ts, -1, e.log); err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, t := range ts {
		for {
			ends, err := e.logEnds(t.Name)
			if err == nil && len(ends) == t.Partitions {
				break
			}
			if err == nil {
				err = fmt.Errorf("%d of %d partitions", len(ends), t.Partitions)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("topic %s is not ready after 30s: %w", t.Name, err)
			}
			time.Sleep(50 * time.Millisecond)
			_ = e.client.RefreshMetadata(t.Name)
		}
	}
	return nil
}

// cleanup deletes every topic of a case (those named "<prefix>.…"), so the
// broker's memory does not carry one case into the next, and collects the
// garbage the case left in this process.
func (e *env) cleanup(prefix string) {
	topics, err := e.admin.ListTopics()
	if err != nil {
		e.logf("list topics to delete: %v", err)
	}
	for name := range topics {
		if strings.HasPrefix(name, prefix+".") {
			if err := e.admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				e.logf("delete topic %s: %v", name, err)
			}
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
}

// logEnds returns the log end offset (high watermark) of each partition of
// topic, asking each leader once.
func (e *env) logEnds(topic string) (map[int32]int64, error) {
	parts, err := e.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	reqs := map[*sarama.Broker]*sarama.OffsetRequest{}
	led := map[*sarama.Broker][]int32{}
	for _, p := range parts {
		b, err := e.client.Leader(topic, p)
		if err != nil {
			return nil, fmt.Errorf("leader of %s/%d: %w", topic, p, err)
		}
		if reqs[b] == nil {
			reqs[b] = sarama.NewOffsetRequest(e.client.Config().Version)
		}
		reqs[b].AddBlock(topic, p, sarama.OffsetNewest, 1)
		led[b] = append(led[b], p)
	}
	ends := make(map[int32]int64, len(parts))
	for b, req := range reqs {
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		for _, p := range led[b] {
			blk := resp.GetBlock(topic, p)
			switch {
			case blk == nil:
				return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, p, sarama.ErrIncompleteResponse)
			case !errors.Is(blk.Err, sarama.ErrNoError):
				return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, p, blk.Err)
			case len(blk.Offsets) != 1:
				return nil, fmt.Errorf("list offsets of %s/%d: %d offsets in the answer", topic, p, len(blk.Offsets))
			}
			ends[p] = blk.Offsets[0]
		}
	}
	return ends, nil
}

// logEnd is the sum of the log end offsets of topic: how many records it
// holds (topics here are fresh, never compacted or truncated).
func (e *env) logEnd(topic string) (int64, error) {
	ends, err := e.logEnds(topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, o := range ends {
		n += o
	}
	return n, nil
}

// topicBytes is the size of topic's logs on the brokers (DescribeLogDirs):
// what the records take as stored, compressed or not.
func (e *env) topicBytes(topic string) (int64, error) {
	var ids []int32
	for _, b := range e.client.Brokers() {
		ids = append(ids, b.ID())
	}
	dirs, err := e.admin.DescribeLogDirs(ids)
	if err != nil {
		return 0, fmt.Errorf("describe log dirs: %w", err)
	}
	var n int64
	for _, ds := range dirs {
		for _, d := range ds {
			for _, t := range d.Topics {
				if t.Topic != topic {
					continue
				}
				for _, p := range t.Partitions {
					n += p.Size
				}
			}
		}
	}
	return n, nil
}
