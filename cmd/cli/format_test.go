package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/transport"
)

func TestFormat_offsets_plan_as_text_and_json(t *testing.T) {
	o := offsetsOptions{ResetOptions: kafkaops.ResetOptions{Group: "millrace.orders.price",
		Spec: kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)}},
		pipeline: "orders", stage: "price"}
	r := newOffsetsReport(o, []kafkaops.OffsetReset{
		{Topic: "orders.price", Partition: 0, Current: 1200, Committed: true, Target: 1130, LogStart: 0, LogEnd: 1300},
		{Topic: "orders.price", Partition: 1, Current: 5, Target: 9, LogStart: 5, LogEnd: 20},
	})
	var b bytes.Buffer
	r.print(&b)
	want := `stage orders/price, consumer group millrace.orders.price, to-time 2026-11-20T14:00:00Z:
TOPIC         PARTITION  CURRENT  TARGET  REPROCESS  SKIP
orders.price  0          1200     1130    70         0
orders.price  1          5*       9       0          4
* no committed offset: the stage would start at the log start
70 records to reprocess, 4 to skip (dry run: nothing changed; add --execute to apply)
`
	if b.String() != want {
		t.Errorf("text plan:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := writeJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{
  "pipeline": "orders",
  "stage": "price",
  "group": "millrace.orders.price",
  "reset": "to-time 2026-11-20T14:00:00Z",
  "executed": false,
  "partitions": [
    {
      "topic": "orders.price",
      "partition": 0,
      "current": 1200,
      "committed": true,
      "target": 1130,
      "log_start": 0,
      "log_end": 1300,
      "reprocess": 70,
      "skip": 0
    },
    {
      "topic": "orders.price",
      "partition": 1,
      "current": 5,
      "committed": false,
      "target": 9,
      "log_start": 5,
      "log_end": 20,
      "reprocess": 0,
      "skip": 4
    }
  ],
  "reprocess": 70,
  "skip": 4
}
`
	if b.String() != wantJSON {
		t.Errorf("JSON plan:\n%s\nwant:\n%s", b.String(), wantJSON)
	}
	r.Executed, r.Partitions = true, r.Partitions[:1]
	r.Reprocess, r.Skip = 1, 0
	b.Reset()
	r.print(&b)
	if !strings.HasSuffix(b.String(), "\n1 record to reprocess, 0 to skip; offsets committed\n") || strings.Contains(b.String(), "*") {
		t.Errorf("executed plan:\n%s", b.String())
	}
}

func TestFormat_replay_and_copy_summaries(t *testing.T) {
	rs := replaySummary{Pipeline: "orders", Sent: 3, SentTo: map[string]int{"orders.price": 2, "orders": 1},
		Skipped: map[string]int{kafkaops.SkipReplayed: 4, kafkaops.SkipLimit: 1}, Failed: map[string]int{kafkaops.FailNoStage: 1}}
	for _, tt := range []struct {
		name string
		got  func(*bytes.Buffer)
		want string
	}{
		{"replay", func(b *bytes.Buffer) { rs.print(b) },
			"sent 3 records (1 orders, 2 orders.price)\nskipped: 4 already replayed, 1 over --limit\nfailed: 1 stage not in the pipelines file\n"},
		{"replay dry run of nothing", func(b *bytes.Buffer) {
			replaySummary{DryRun: true, SentTo: map[string]int{}, Skipped: map[string]int{}, Failed: map[string]int{}}.print(b)
		}, "would send 0 records\n"},
		{"replay JSON", func(b *bytes.Buffer) { _ = writeJSON(b, rs) },
			"{\n  \"pipeline\": \"orders\",\n  \"dry_run\": false,\n  \"sent\": 3,\n  \"sent_to\": {\n    \"orders\": 1,\n    \"orders.price\": 2\n  },\n" +
				"  \"skipped\": {\n    \"already replayed\": 4,\n    \"over --limit\": 1\n  },\n  \"failed\": {\n    \"stage not in the pipelines file\": 1\n  }\n}\n"},
		{"copy", func(b *bytes.Buffer) {
			copySummary{From: "a", To: "b", Copied: 1, PerPartition: map[int32]int{2: 1}, Skipped: 3, Error: "broker gone"}.print(b)
		}, "copied 1 record from a to b (3 later than --until left out)\nstopped by an error: broker gone\n"},
		{"copy dry run", func(b *bytes.Buffer) { copySummary{From: "a", To: "b", DryRun: true, Copied: 25}.print(b) },
			"would copy 25 records from a to b\n"},
		{"copy JSON", func(b *bytes.Buffer) {
			_ = writeJSON(b, copySummary{From: "a", To: "b", Copied: 3, PerPartition: map[int32]int{0: 1, 10: 2}})
		}, "{\n  \"from\": \"a\",\n  \"to\": \"b\",\n  \"dry_run\": false,\n  \"copied\": 3,\n  \"per_partition\": {\n    \"0\": 1,\n    \"10\": 2\n  },\n  \"skipped_after_until\": 0\n}\n"},
	} {
		var b bytes.Buffer
		tt.got(&b)
		if b.String() != tt.want {
			t.Errorf("%s:\n%q\nwant\n%q", tt.name, b.String(), tt.want)
		}
	}
}

func TestFormat_quarantine_counts_as_a_table_and_json(t *testing.T) {
	rows := []errorCount{
		{Stage: "price", Error: "boom\nat line 2", Count: 12, Replayed: 5, FirstFailure: "2026-01-01T10:00:00.123Z", LastFailure: "2026-01-02T10:00:00Z"},
		{Stage: "work", Error: "exit 1: \xff" + strings.Repeat("a", 130), Count: 1, FirstFailure: "x", LastFailure: "y"},
	}
	var b bytes.Buffer
	printCounts(&b, "orders.quarantine", 13, 5, rows)
	want := "orders.quarantine: 13 quarantined records, 5 replayed, 8 waiting\n" +
		"STAGE  COUNT  REPLAYED  FIRST FAILURE         LAST FAILURE          ERROR\n" +
		"price  12     5         2026-01-01T10:00:00Z  2026-01-02T10:00:00Z  boom at line 2\n" +
		"work   1      0         x                     y                     \"exit 1: \\xff" + strings.Repeat("a", 108) + "...\"\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printCounts(&b, "orders.quarantine", 0, 0, nil)
	if b.String() != "orders.quarantine: 0 quarantined records\n" {
		t.Errorf("empty table: %q", b.String())
	}
	b.Reset()
	_ = writeJSON(&b, map[string]any{"pipeline": "orders", "topic": "orders.quarantine", "total": 13, "errors": rows[1:]})
	wantJSON := "{\n  \"errors\": [\n    {\n      \"stage\": \"work\",\n      \"error_base64\": \"ZXhpdCAxOiD/" + strings.Repeat("YWFh", 43) + "YQ==\",\n" +
		"      \"count\": 1,\n      \"replayed\": 0,\n      \"first_failure\": \"x\",\n      \"last_failure\": \"y\"\n    }\n  ],\n" +
		"  \"pipeline\": \"orders\",\n  \"topic\": \"orders.quarantine\",\n  \"total\": 13\n}\n"
	if b.String() != wantJSON {
		t.Errorf("JSON:\n%s\nwant:\n%s", b.String(), wantJSON)
	}
}

// awkward is a record whose bytes a lossy printer would change.
func awkward() *kafkaops.Record {
	return &kafkaops.Record{Topic: "t.quarantine", Partition: 1, Offset: 7, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC),
		Key: []byte("k\xff"), Value: []byte("a\nb"), Headers: []*kafkaops.Header{
			{Key: []byte(transport.MessageIDHeader), Value: []byte("0b5e…")},
			{Key: []byte("tag"), Value: []byte("x")}, {Key: []byte("tag"), Value: []byte("y y")},
			{Key: []byte("nul")}, {Key: []byte("bin"), Value: []byte{0xfe}}}}
}

func TestFormat_records_as_text_keep_every_byte_but_the_message_id(t *testing.T) {
	m := awkward()
	if got, want := recordText(m), `1/7 key="k\xff" tag=x tag="y y" nul bin="\xfe" | "a\nb"`; got != want {
		t.Errorf("recordText:\n%s\nwant\n%s", got, want)
	}
	var b bytes.Buffer
	printQuarantined(&b, m)
	want := "t.quarantine 1/7 key=\"k\\xff\" at 2026-01-02T03:04:05Z\n  tag: x\n  tag: y y\n  nul: \n  bin: \"\\xfe\"\n  payload: \"a\\nb\"\n\n"
	if b.String() != want {
		t.Errorf("printQuarantined:\n%q\nwant\n%q", b.String(), want)
	}
	tomb := &kafkaops.Record{Value: nil, Key: nil}
	if got := recordText(tomb); got != "0/0 | " {
		t.Errorf("a tombstone without a key prints %q", got)
	}
	if got := recordText(&kafkaops.Record{Value: []byte{}, Key: []byte{}}); got != `0/0 key="" | ""` {
		t.Errorf("an empty key and payload print %q", got)
	}
}

// Records as JSON keep every byte, and leave out the message id header
// as text does (it showed before: issue 12 §6).
func TestFormat_records_as_json_keep_every_byte_but_the_message_id(t *testing.T) {
	got := string(recordJSON(awkward()))
	want := `{"topic":"t.quarantine","partition":1,"offset":7,"timestamp":"2026-01-02T03:04:05.0000006Z","key_base64":"a/8=",` +
		`"headers":[{"key":"tag","value":"x"},{"key":"tag","value":"y y"},{"key":"nul","value":null},` +
		`{"key":"bin","value_base64":"/g=="}],"payload":"a\nb"}`
	if got != want {
		t.Errorf("recordJSON:\n%s\nwant\n%s", got, want)
	}
}

func TestFormat_produce_validate_and_progress_lines(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{produceSummary(kafkaops.ProduceResult{Sent: 1, FirstJob: "j-1"}, "orders"), "sent 1 record to orders: job j-1\n"},
		{produceSummary(kafkaops.ProduceResult{Sent: 500, Failed: 2}, "orders.high"), "sent 500 records to orders.high\n"},
		{notSent(1), "1 line was not sent\n"},
		{notSent(2), "2 lines were not sent\n"},
		{progressLine(kafkaops.Progress{Read: 40, Total: 100, Sent: 38}), "\r[============                  ] 40/100 read, 38 sent"},
		{progressLine(kafkaops.Progress{Read: 120, Total: 100}), "\r[==============================] 120/100 read, 0 sent"},
	} {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
}

func TestExitCode_one_error_type_decides(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		started bool
		code    int
		msg     string
	}{
		{"success", nil, true, 0, ""},
		{"a failure", errors.New("cannot reach Kafka"), true, 1, "millrace: cannot reach Kafka"},
		{"a failure already printed", errPrinted, true, 1, ""},
		{"bad usage", usagef("--rate %q: want records per second", "x"), true, 2,
			`millrace: --rate "x": want records per second (see 'millrace replay topic --help')`},
		{"cobra refused the command line", errors.New("unknown flag: --x"), false, 2,
			"millrace: unknown flag: --x (see 'millrace replay topic --help')"},
		{"bad usage wrapped", errors.Join(usagef("--port 1: x")), true, 2, "millrace: --port 1: x (see 'millrace replay topic --help')"},
	} {
		code, msg := exitCode(tt.err, "millrace replay topic", tt.started)
		if code != tt.code || msg != tt.msg {
			t.Errorf("%s: exit %d %q, want %d %q", tt.name, code, msg, tt.code, tt.msg)
		}
	}
}

func TestFormat_validate_line(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/p.yaml"
	if err := os.WriteFile(file, []byte(testPipelines), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"validate", "-f", file}, strings.NewReader(""), &out, &errb)
	if want := file + ": ok (2 pipelines, 3 stages, 11 topics)\n"; code != 0 || out.String() != want || errb.Len() != 0 {
		t.Errorf("validate: exit %d, %q %q; want %q", code, out.String(), errb.String(), want)
	}
}
