package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
)

// Topic is a topic to create.
type Topic struct {
	Name       string
	Partitions int
	// Config holds topic configs to create it with (e.g. cleanup.policy).
	Config map[string]string
}

// EnsureTopics creates the topics that do not exist yet, with
// replicationFactor replicas (-1: the broker's default). Existing topics are
// left alone; one with fewer partitions than asked is logged, since per-key
// order forbids adding partitions behind the user's back.
func EnsureTopics(client sarama.Client, topics []Topic, replicationFactor int, log *slog.Logger) error {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("open cluster admin: %w", err)
	}
	// Closing the admin would close the shared client.
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, t := range topics {
		if d, ok := existing[t.Name]; ok {
			if int(d.NumPartitions) < t.Partitions {
				log.Warn("topic has fewer partitions than configured; leaving it as it is",
					"topic", t.Name, "partitions", d.NumPartitions, "configured", t.Partitions)
			}
			continue
		}
		var configs map[string]*string
		for k, v := range t.Config {
			if configs == nil {
				configs = map[string]*string{}
			}
			configs[k] = &v
		}
		err := admin.CreateTopic(t.Name, &sarama.TopicDetail{
			NumPartitions:     int32(t.Partitions),
			ReplicationFactor: int16(replicationFactor),
			ConfigEntries:     configs,
		}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t.Name, err)
		}
		if err == nil {
			log.Info("created topic", "topic", t.Name, "partitions", t.Partitions)
		}
	}
	return client.RefreshMetadata()
}

// offsetWaitMax bounds how long getOffset retries a broker that is not
// ready to answer for a partition yet.
var offsetWaitMax = 30 * time.Second

// getOffset is client.GetOffset, retried with backoff (50 ms doubling to
// 1 s, for up to offsetWaitMax or until ctx ends) while the broker answers
// with an error that time fixes. A topic created a moment ago is the usual
// case: until its leader is known everywhere, Kafka answers ListOffsets
// with NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, OFFSET_NOT_AVAILABLE
// or UNKNOWN_TOPIC_OR_PARTITION, and sarama retries only once.
func getOffset(ctx context.Context, client sarama.Client, topic string, partition int32, at int64) (int64, error) {
	deadline := time.Now().Add(offsetWaitMax)
	backoff := 50 * time.Millisecond
	for {
		off, err := client.GetOffset(topic, partition, at)
		if err == nil || !offsetErrorPasses(err) || time.Now().Add(backoff).After(deadline) {
			return off, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return off, err
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// offsetErrorPasses says whether err, from a ListOffsets, is one a broker
// stops answering with once a partition's leadership has settled.
func offsetErrorPasses(err error) bool {
	for _, e := range []error{sarama.ErrNotLeaderForPartition, sarama.ErrLeaderNotAvailable,
		sarama.ErrOffsetNotAvailable, sarama.ErrUnknownTopicOrPartition, sarama.ErrRequestTimedOut,
		sarama.ErrFencedLeaderEpoch, sarama.ErrUnknownLeaderEpoch} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
