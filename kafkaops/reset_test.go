package kafkaops_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/testkit"
)

func TestResetOffsets_commits_only_with_execute(t *testing.T) {
	b := testkit.Embedded(t)
	topic, group := "reset-"+testkit.Unique(), "g-"+testkit.Unique()
	b.CreateTopic(t, topic, 2)
	produceAt(t, b, topic, 2, 10, time.Now().Add(-time.Minute))
	client := b.Client(t)
	if err := kafkaops.CommitOffsets(client, group, map[string]map[int32]int64{topic: {0: 10, 1: 10}}); err != nil {
		t.Fatal(err)
	}
	opts := kafkaops.ResetOptions{Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second},
		Group: group, Topics: []string{topic}, Spec: kafkaops.ResetSpec{Kind: kafkaops.ShiftBy, Shift: -4}}
	committed := func() string {
		got, err := kafkaops.CommittedOffsets(client, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	plan, err := kafkaops.ResetOffsets(context.Background(), opts)
	if err != nil || len(plan) != 2 || plan[0].Target != 6 || plan[1].Reprocess() != 4 {
		t.Fatalf("plan %+v, %v; want targets 6", plan, err)
	}
	if got := committed(); got != "map[0:10 1:10]" {
		t.Fatalf("a plan without Execute committed: %s", got)
	}
	opts.Execute = true
	if _, err := kafkaops.ResetOffsets(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if got := committed(); got != "map[0:6 1:6]" {
		t.Fatalf("committed after Execute: %s, want 6 and 6", got)
	}
}
