package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/kafkaops"
)

// States of a tick, as the schedule topic records them.
const (
	// StatePending: the leader is about to send the tick's record; its
	// partition and the partition's end offset before it are recorded, so
	// that a leader taking over finds out whether it was sent.
	StatePending = "pending"
	// StateFired: the tick's record was sent (the broker acknowledged it).
	StateFired = "fired"
	// StateSkipped: the tick was passed over because the schedule's
	// previous job was still running (overlap: skip).
	StateSkipped = "skipped"
	// StateDisabled: the schedule is disabled (enabled: false); Tick is
	// when a leader saw it so. Enabled again, it starts at its next tick.
	StateDisabled = "disabled"
	// StateLeader is the record a leader writes, under the key "leader",
	// when it takes over; it is no schedule's state.
	StateLeader = "leader"
)

// State is the last tick of one schedule, a record of the schedule topic
// (pipeline.ScheduleTopic: compacted, one partition) keyed by the
// schedule's id "pipeline/name": JSON, written by the leader before
// (pending) and after (fired) it sends a tick's record, or when it skips
// one. The last record of a key is the schedule's state.
type State struct {
	// Tick is the scheduled time of the tick, UTC.
	Tick time.Time `json:"tick"`
	// State is StatePending, StateFired, StateSkipped or StateDisabled.
	State string `json:"state"`
	// Job is the tick's job id (pending, fired), or of a skipped tick the
	// job that was still running: the schedule's last job.
	Job string `json:"job,omitempty"`
	// Topic, Partition and Offset, of a pending tick, are the pipeline's
	// input, the partition the record goes to and its end offset before.
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition,omitempty"`
	Offset    int64  `json:"offset,omitempty"`
	// At is when the state was written; By is the process that wrote it
	// (host/pid).
	At time.Time `json:"at"`
	By string    `json:"by,omitempty"`
	// Run tells this process's runs of the scheduler apart (random, new
	// each time a process starts one): ticks after a state of the leader's
	// own run passed in a rebalance or a retry of it, not while no process
	// led.
	Run string `json:"run,omitempty"`
	// Generation is the consumer group generation the writer led in:
	// records of a newer one than a leader's own fence it (see
	// Scheduler.write).
	Generation int32 `json:"generation,omitempty"`
	// Schedules, of a leader's record, are the ids of the schedules its
	// pipelines file has.
	Schedules []string `json:"schedules,omitempty"`
}

func (s State) marshal() []byte {
	b, _ := json.Marshal(s) // a struct of strings, numbers and times: never fails
	return b
}

// ReadStates reads the schedule topic from its start to its end and
// returns the last state of each schedule, by id. A record that is not a
// state (not JSON of one) is passed over; a tombstone removes its key.
// The topic must exist. Errors are Kafka's, or ctx's.
func ReadStates(ctx context.Context, client sarama.Client, topic string) (map[string]State, error) {
	states, _, err := readStates(ctx, client, topic)
	return states, err
}

// readStates is ReadStates, and the end offset it read up to.
func readStates(ctx context.Context, client sarama.Client, topic string) (map[string]State, int64, error) {
	end, err := kafkaops.GetOffset(ctx, client, topic, 0, sarama.OffsetNewest)
	if err != nil {
		return nil, 0, fmt.Errorf("end of %s: %w", topic, err)
	}
	start, err := kafkaops.GetOffset(ctx, client, topic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, 0, fmt.Errorf("start of %s: %w", topic, err)
	}
	states := map[string]State{}
	err = kafkaops.FetchRange(ctx, client, topic, 0, start, end, func(m *sarama.ConsumerMessage) {
		id := string(m.Key)
		if m.Value == nil {
			delete(states, id)
			return
		}
		var s State
		if json.Unmarshal(m.Value, &s) == nil && s.State != "" {
			states[id] = s
		}
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", topic, err)
	}
	return states, end, nil
}
