package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/millrace/millrace/pipeline"
)

// EnsureTopics creates the topics that do not exist yet, with
// replicationFactor replicas (-1: the broker's default). Existing topics are
// left alone; one with fewer partitions than asked is logged, since per-key
// order forbids adding partitions behind the user's back.
func EnsureTopics(client sarama.Client, topics []pipeline.Topic, replicationFactor int, log *slog.Logger) error {
	admin, existing, err := listTopics(client)
	if err != nil {
		return err
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

// offsetWaitMax bounds how long GetOffset retries a broker that is not
// ready to answer for a partition yet.
var offsetWaitMax = 30 * time.Second

// GetOffset is client.GetOffset, retried with backoff (50 ms doubling to
// 1 s, for up to offsetWaitMax or until ctx ends) while the broker answers
// with an error that time fixes. A topic created a moment ago is the usual
// case: until its leader is known everywhere, Kafka answers ListOffsets
// with NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, OFFSET_NOT_AVAILABLE
// or UNKNOWN_TOPIC_OR_PARTITION, and sarama retries only once.
func GetOffset(ctx context.Context, client sarama.Client, topic string, partition int32, at int64) (int64, error) {
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
// stops answering with once a partition's leadership has settled, or
// sarama's for a connection to the leader that was closed under the client
// (ErrNotConnected: the next attempt opens it again; seen once restoring a
// dedup changelog on the embedded broker).
func offsetErrorPasses(err error) bool {
	for _, e := range []error{sarama.ErrNotLeaderForPartition, sarama.ErrLeaderNotAvailable,
		sarama.ErrOffsetNotAvailable, sarama.ErrUnknownTopicOrPartition, sarama.ErrRequestTimedOut,
		sarama.ErrFencedLeaderEpoch, sarama.ErrUnknownLeaderEpoch, sarama.ErrNotConnected} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// CoPartition gives a stage's own topics (its retry tiers and dedup
// changelog) exactly as many partitions as its inputs have: partition p of
// a tier or changelog holds what belongs to input partition p, and the
// range assignor gives one member partition p of every topic of the stage
// only when their counts are equal. An own topic that does not exist is
// created, one with fewer partitions is grown (CreatePartitions; records
// are pinned to partitions, so no key moves). It fails, naming the topics,
// when the inputs differ in partition count or an own topic has more
// partitions than the inputs: Kafka cannot remove partitions. grown reports
// whether a topic was created or grown.
func CoPartition(client sarama.Client, stage string, inputs []string, own []pipeline.Topic, replicationFactor int, log *slog.Logger) (grown bool, err error) {
	if len(own) == 0 {
		return false, nil
	}
	if err := client.RefreshMetadata(); err != nil {
		return false, fmt.Errorf("stage %s: refresh metadata: %w", stage, err)
	}
	want := -1
	for _, in := range inputs {
		ps, err := client.Partitions(in)
		if err != nil {
			return false, fmt.Errorf("stage %s: partitions of input %s: %w", stage, in, err)
		}
		switch n := len(ps); {
		case want < 0:
			want = n
		case n != want:
			return false, fmt.Errorf("stage %s reads %s (%d partitions) and %s (%d partitions): a stage with retry tiers or dedup needs "+
				"inputs with the same partition count (its state is kept per partition number); give them the same count",
				stage, inputs[0], want, in, n)
		}
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return false, fmt.Errorf("open cluster admin: %w", err)
	}
	// Closing the admin would close the shared client.
	for _, t := range own {
		ps, err := client.Partitions(t.Name)
		have := len(ps)
		switch {
		case errors.Is(err, sarama.ErrUnknownTopicOrPartition):
			t.Partitions = want
			if err := EnsureTopics(client, []pipeline.Topic{t}, replicationFactor, log); err != nil {
				return grown, err
			}
			grown = true
		case err != nil:
			return grown, fmt.Errorf("stage %s: partitions of %s: %w", stage, t.Name, err)
		case have > want:
			return grown, fmt.Errorf("stage %s: %s has %d partitions, more than its input %s (%d): partition counts must be equal "+
				"(Kafka cannot remove partitions); once the stage is drained, delete %s, or add partitions to the input",
				stage, t.Name, have, inputs[0], want, t.Name)
		case have < want:
			if err := admin.CreatePartitions(t.Name, int32(want), nil, false); err != nil && !errors.Is(err, sarama.ErrInvalidPartitions) {
				return grown, fmt.Errorf("stage %s: grow %s from %d to %d partitions: %w", stage, t.Name, have, want, err)
			}
			log.Info("grew topic to match the stage's input", "stage", stage, "topic", t.Name, "from", have, "to", want)
			grown = true
		}
	}
	if grown {
		if err := client.RefreshMetadata(); err != nil {
			return grown, fmt.Errorf("stage %s: refresh metadata: %w", stage, err)
		}
	}
	return grown, nil
}

// listTopics returns a cluster admin on client (not to be closed: that
// would close the client) and the topics that exist.
func listTopics(client sarama.Client) (sarama.ClusterAdmin, map[string]sarama.TopicDetail, error) {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, nil, fmt.Errorf("open cluster admin: %w", err)
	}
	existing, err := admin.ListTopics()
	if err != nil {
		return nil, nil, fmt.Errorf("list topics: %w", err)
	}
	return admin, existing, nil
}
