package router

import (
	"errors"
	"fmt"
	"log/slog"

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
