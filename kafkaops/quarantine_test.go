package kafkaops_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// quarantined returns a record as a stage quarantines it.
func quarantined(key, value, stage, err, first, last string, more ...string) testkit.Record {
	h := filters.HeadersOf(append([]string{transport.MessageIDHeader, "id-" + key, filters.HeaderStage, stage,
		filters.HeaderError, err, filters.HeaderAttempt, "3", filters.HeaderOrigin, "in/0/1",
		filters.HeaderFirstFailure, first, filters.HeaderLastFailure, last, filters.HeaderJob, "job-" + key}, more...)...)
	return testkit.Record{Key: []byte(key), Value: []byte(value), HeaderList: h}
}

func TestCountQuarantine_groups_by_stage_and_error_with_first_and_last_failure(t *testing.T) {
	b := testkit.Embedded(t)
	topic := "count-" + testkit.Unique() + ".quarantine"
	b.CreateTopic(t, topic, 2)
	b.Produce(t, topic, []testkit.Record{
		quarantined("a", "1", "price", "boom", "2026-01-01T10:00:00Z", "2026-01-01T10:05:00Z"),
		quarantined("b", "2", "price", "boom", "2026-01-01T09:00:00Z", "2026-01-01T09:01:00Z"),
		quarantined("c", "3", "price", "bad input", "2026-01-02T00:00:00Z", "2026-01-02T00:00:01Z"),
		quarantined("d", "4", "confirm", "timeout", "2026-01-03T00:00:00Z", "2026-01-03T00:00:00Z"),
		quarantined("e", "5", "price", "boom", "2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"),
	})
	opts := kafkaops.QuarantineOptions{Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second}, Topic: topic}
	got, err := kafkaops.CountQuarantine(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []kafkaops.ErrorCount{
		{Stage: "confirm", Error: "timeout", Count: 1, FirstFailure: "2026-01-03T00:00:00Z", LastFailure: "2026-01-03T00:00:00Z"},
		{Stage: "price", Error: "boom", Count: 3, FirstFailure: "2026-01-01T09:00:00Z", LastFailure: "2026-01-01T12:00:00Z"},
		{Stage: "price", Error: "bad input", Count: 1, FirstFailure: "2026-01-02T00:00:00Z", LastFailure: "2026-01-02T00:00:01Z"},
	}
	if got.Total != 5 || len(got.Errors) != len(want) {
		t.Fatalf("counts %+v, want 5 in %+v", got, want)
	}
	for i := range want {
		if got.Errors[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got.Errors[i], want[i])
		}
	}
	opts.Select = kafkaops.QuarantineSelection{Stage: "price", Error: regexp.MustCompile("^bo")}
	if got, err := kafkaops.CountQuarantine(context.Background(), opts); err != nil || got.Total != 3 || len(got.Errors) != 1 {
		t.Fatalf("selected counts %+v, %v; want the 3 boom records of price", got, err)
	}
}

func TestShowQuarantine_hands_out_the_selected_records_up_to_the_limit(t *testing.T) {
	b := testkit.Embedded(t)
	topic := "show-" + testkit.Unique() + ".quarantine"
	b.CreateTopic(t, topic, 1)
	var recs []testkit.Record
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		stage := "price"
		if k == "b" {
			stage = "confirm"
		}
		recs = append(recs, quarantined(k, k, stage, "boom", "2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z"))
	}
	b.Produce(t, topic, recs)
	opts := kafkaops.QuarantineOptions{Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second}, Topic: topic,
		Select: kafkaops.QuarantineSelection{Stage: "price"}}
	var keys string
	n, err := kafkaops.ShowQuarantine(context.Background(), opts, 3, func(m *kafkaops.Record) { keys += string(m.Key) })
	if err != nil || n != 3 || keys != "acd" {
		t.Fatalf("ShowQuarantine --stage price --limit 3: %d records %q, %v; want a, c, d", n, keys, err)
	}
}

func TestQuarantineSelection_selects_by_stage_error_and_time(t *testing.T) {
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	rec := &kafkaops.Record{Timestamp: at, Headers: []*kafkaops.Header{
		{Key: []byte(filters.HeaderStage), Value: []byte("old")}, {Key: []byte(filters.HeaderStage), Value: []byte("price")},
		{Key: []byte(filters.HeaderError), Value: []byte("dial tcp: connection refused")}}}
	for _, tt := range []struct {
		name string
		sel  kafkaops.QuarantineSelection
		want bool
	}{
		{"everything", kafkaops.QuarantineSelection{}, true},
		{"its stage (the last header of the name)", kafkaops.QuarantineSelection{Stage: "price"}, true},
		{"an earlier value of the header", kafkaops.QuarantineSelection{Stage: "old"}, false},
		{"its error", kafkaops.QuarantineSelection{Error: regexp.MustCompile("refused")}, true},
		{"another error", kafkaops.QuarantineSelection{Error: regexp.MustCompile("^timeout")}, false},
		{"since its time", kafkaops.QuarantineSelection{Since: at}, true},
		{"until its time", kafkaops.QuarantineSelection{Until: at}, false},
		{"until after", kafkaops.QuarantineSelection{Since: at.Add(-time.Hour), Until: at.Add(time.Millisecond)}, true},
		{"since after", kafkaops.QuarantineSelection{Since: at.Add(time.Millisecond)}, false},
	} {
		if got := tt.sel.Selects(rec); got != tt.want {
			t.Errorf("%s: Selects = %v, want %v", tt.name, got, tt.want)
		}
	}
}
