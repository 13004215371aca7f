package main_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
)

func TestProduce_priority_sends_to_the_named_priority_topic(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pipelines.yaml", `version: 1
pipelines:
  - name: rush
    input: rush.in
    partitions: 2
    priority:
      - {topic: rush.high, weight: 8, name: high}
      - {topic: rush.low}
    stages:
      - {name: work, filter: log}
`)
	// An unknown priority is bad usage, found before any broker is reached.
	_, stderr, code := cli(t, dir, "{}\n", "produce", "--brokers", "127.0.0.1:1", "--pipeline", "rush", "--priority", "urgent")
	if code != 2 || !strings.Contains(stderr, `--priority "urgent": pipeline "rush" has no such priority topic (names: high, rush.in, rush.low)`) {
		t.Fatalf("unknown priority: exit %d, stderr:\n%s", code, stderr)
	}

	_, backend := startBroker(t, "broker", dir, freePort(t))
	brokers := backend.Brokers[0]
	for _, tt := range []struct{ priority, topic, lines string }{
		{"high", "rush.high", "{\"n\":1}\n{\"n\":2}\n"},
		{"rush.low", "rush.low", "{\"n\":3}\n"}, // by topic
	} {
		out, stderr, code := cli(t, dir, tt.lines, "produce", "--brokers", brokers, "--pipeline", "rush",
			"--priority", tt.priority, "--key", "k")
		n := strings.Count(tt.lines, "\n")
		if code != 0 || !strings.Contains(out, "to "+tt.topic) {
			t.Fatalf("produce --priority %s: exit %d\n%s%s", tt.priority, code, out, stderr)
		}
		recs := backend.Read(t, tt.topic, n, 30*time.Second)
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		if want := strings.Split(strings.TrimSpace(tt.lines), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s holds %q, want %q", tt.topic, got, want)
		}
	}
	if got := len(backend.ReadAll(t, "rush.high")); got != 2 {
		t.Fatalf("rush.high holds %d records, want 2", got)
	}
}

func TestProduce_key_jq_keys_are_byte_exact(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, name := t.TempDir(), "produce-bytes-"+testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    partitions: 1
    stages:
      - {name: work, filter: log}
`, name))
		// Lines 1 and 2 are not UTF-8: decoded, both ids were x\uFFFD,
		// one key. Line 4's key is $-free @base64d: exact bytes.
		lines := "{\"id\":\"x\xff\"}\n{\"id\":\"x\xfe\"}\n{\"id\":\"ok\"}\n{\"b\":\"eP8=\",\"id\":\"b\"}\n"
		out, stderr, code := cli(t, dir, lines, "produce", "--brokers", strings.Join(b.Brokers, ","), "--pipeline", name,
			"--key-jq", `if .b then .b | @base64d else .id end`)
		t.Logf("%s: exit %d\n%s%s", b.Name, code, out, stderr)
		if code != 1 || !strings.Contains(out, "sent 2 records") ||
			!strings.Contains(stderr, "stdin:1: --key-jq: line is not UTF-8: invalid UTF-8 at byte 8") ||
			!strings.Contains(stderr, "stdin:2: --key-jq: line is not UTF-8: invalid UTF-8 at byte 8") {
			t.Fatalf("produce: exit %d, want 1 with lines 1 and 2 refused", code)
		}
		recs := b.ReadAll(t, name+".in")
		if len(recs) != 2 || string(recs[0].Key) != "ok" || string(recs[1].Key) != "x\xff" {
			t.Fatalf("%s holds %d records; keys %q, want ok and x\\xff", name+".in", len(recs), keysOf(recs))
		}
	})
}

func TestProduce_key_jq_keeps_the_text_of_numbers(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, name := t.TempDir(), "produce-numbers-"+testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    partitions: 1
    stages:
      - {name: work, filter: log}
`, name))
		// As float64 both ids were 9007199254740992.
		lines := "{\"id\":9007199254740993}\n{\"id\":9007199254740992}\n{\"id\":1.50}\n"
		out, stderr, code := cli(t, dir, lines, "produce", "--brokers", strings.Join(b.Brokers, ","), "--pipeline", name, "--key-jq", ".id")
		if code != 0 {
			t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
		}
		want := []string{"9007199254740993", "9007199254740992", "1.50"}
		if got := keysOf(b.ReadAll(t, name+".in")); !slices.Equal(got, want) {
			t.Fatalf("keys %q, want %q", got, want)
		}
	})
}

// TestProduce_key_jq_keys_mean_what_jq_keys_mean: --key-jq keys are those
// of dedup keys and of the jq filter's key: (internal/jqkey). Objects and
// arrays were encoding/json's text, with <, > and & escaped; a halt was an
// error.
func TestProduce_key_jq_keys_mean_what_jq_keys_mean(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, name := t.TempDir(), "produce-meaning-"+testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    partitions: 1
    stages:
      - {name: work, filter: log}
`, name))
		lines := []struct{ line, key string }{ // key "<none>": the record has none
			{`{"k":"s"}`, "s"},
			{`{"k":1.50}`, "1.50"},
			{`{"k":true}`, "true"},
			{`{"k":{"b":1,"a":"<&>"}}`, `{"a":"<&>","b":1}`},
			{`{"k":[2, "x"]}`, `[2,"x"]`},
			{`{"k":null}`, "<none>"},
			{`{"halt":true}`, "<none>"},
		}
		var in strings.Builder
		var want []string
		for _, l := range lines {
			in.WriteString(l.line + "\n")
			want = append(want, l.key)
		}
		out, stderr, code := cli(t, dir, in.String(), "produce", "--brokers", strings.Join(b.Brokers, ","), "--pipeline", name,
			"--key-jq", `if .halt then halt else .k end`)
		if code != 0 {
			t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
		}
		var got []string
		for _, r := range b.ReadAll(t, name+".in") {
			if r.Key == nil {
				got = append(got, "<none>")
			} else {
				got = append(got, string(r.Key))
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("keys %q, want %q", got, want)
		}
	})
}

func keysOf(recs []testkit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Key))
	}
	return out
}
