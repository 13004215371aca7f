package testkit_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
)

// settle waits until the stages of pipeline name have committed all of
// their input, then returns the records of its output and quarantine.
func settle(t *testing.T, b testkit.Backend, name string, stages ...string) (out, quarantined []testkit.Record) {
	t.Helper()
	in := name + ".in"
	for _, s := range stages {
		testkit.Eventually(t, time.Minute, func() bool {
			return b.GroupLag(t, "millrace."+name+"."+s, in) == 0
		}, "stage %s did not commit its input", s)
		in = name + "." + s
	}
	return b.ReadAll(t, name+".out"), b.ReadAll(t, name+".quarantine")
}

func TestDedup_keys_are_byte_exact_and_no_record_is_dropped_for_one(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		byID, byHeader := "dedup-id-"+testkit.Unique(), "dedup-header-"+testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 1}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - {name: flaky, filter: test-flaky, dedup: {key: .id, window: 1h}}
  - name: %[2]s
    input: %[2]s.in
    output: %[2]s.out
    stages:
      - {name: flaky, filter: test-flaky, dedup: {key: "header:idem", window: 1h}}
`, byID, byHeader))
		testkit.Run(t, b, plan, testkit.RunOptions{})
		// Ids x\xff and x\xfe are not UTF-8: decoded as JSON both became
		// x\uFFFD, one key, and the second was dropped as a duplicate.
		ids := []string{"x\xff", "x\xfe", "x\xff"}
		var inID, inHeader []testkit.Record
		for i, id := range ids {
			inID = append(inID, testkit.Record{Key: []byte("k"), Value: fmt.Appendf(nil, `{"id":"%s","seq":%d}`, id, i)})
			inHeader = append(inHeader, testkit.Record{Key: []byte("k"), Value: fmt.Appendf(nil, `{"seq":%d}`, i),
				Headers: map[string]string{"idem": id}})
		}
		control := testkit.Record{Key: []byte("k"), Value: []byte(`{"id":"y","seq":3}`)}
		b.Produce(t, byID+".in", append(inID, control, control))
		b.Produce(t, byHeader+".in", inHeader)

		// A jq key on a payload that is not UTF-8 cannot be exact: each
		// such record is quarantined, unchanged, with the reason.
		out, quarantined := settle(t, b, byID, "flaky")
		t.Logf("%s: key .id: %d sent, %d out, %d quarantined", b.Name, len(inID)+2, len(out), len(quarantined))
		if got := seqsOf(t, out); !slices.Equal(got, []int{3}) {
			t.Errorf("key .id: output seqs %v, want [3] (the control record, once)", got)
		}
		if len(quarantined) != len(inID) {
			t.Fatalf("key .id: %d records quarantined, want %d", len(quarantined), len(inID))
		}
		for i, q := range quarantined {
			if !bytes.Equal(q.Value, inID[i].Value) {
				t.Errorf("quarantined record %d changed: %q, want %q", i, q.Value, inID[i].Value)
			}
			if e := q.Headers["millrace-error"]; !strings.Contains(e, "payload is not UTF-8: invalid UTF-8 at byte 8") {
				t.Errorf("quarantined record %d: error %q does not say why", i, e)
			}
		}

		// header:NAME keys are the header's bytes: x\xff and x\xfe are
		// two keys, and only the true duplicate is skipped.
		out, quarantined = settle(t, b, byHeader, "flaky")
		t.Logf("%s: key header:idem: %d sent, %d out, %d quarantined", b.Name, len(inHeader), len(out), len(quarantined))
		if got := seqsOf(t, out); !slices.Equal(got, []int{0, 1}) || len(quarantined) != 0 {
			t.Errorf("key header:idem: output seqs %v and %d quarantined, want [0 1] and none", got, len(quarantined))
		}
		for _, r := range out {
			if id := r.Headers["idem"]; id != "x\xff" && id != "x\xfe" {
				t.Errorf("output header idem = %q, want the input's bytes", id)
			}
		}
	})
}

func TestJQ_carries_bytes_exactly_or_quarantines_the_record(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "jq-bytes-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 1}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - {name: mark, filter: jq, config: {program: '.ok = true'}}
`, name))
		testkit.Run(t, b, plan, testkit.RunOptions{})
		in := []testkit.Record{
			{Key: []byte("k\xff\x00"), Value: []byte(`{"n":1}`), Headers: map[string]string{"h": "v\xfe", "n\xff": "\x00"}},
			{Key: []byte("k\xfe"), Value: []byte("{\"s\":\"x\xff\"}"), Headers: map[string]string{"h": "v"}},
			{Key: []byte("k"), Value: []byte(`{"s":"x\ud800"}`)},
		}
		b.Produce(t, name+".in", in)
		out, quarantined := settle(t, b, name, "mark")
		t.Logf("%s: %d sent, %d out, %d quarantined", b.Name, len(in), len(out), len(quarantined))
		if len(out) != 1 || len(quarantined) != 2 {
			for _, r := range out {
				t.Logf("out: key %q value %q", r.Key, r.Value)
			}
			t.Fatalf("%d out and %d quarantined, want 1 and 2", len(out), len(quarantined))
		}
		o := out[0]
		if !bytes.Equal(o.Key, in[0].Key) || string(o.Value) != `{"n":1,"ok":true}` ||
			o.Headers["h"] != "v\xfe" || o.Headers["n\xff"] != "\x00" {
			t.Errorf("output: key %q value %q headers %q; want the input's key and headers byte for byte", o.Key, o.Value, o.Headers)
		}
		// Records of different keys run concurrently: match by key.
		if bytes.Equal(quarantined[0].Key, in[2].Key) {
			quarantined[0], quarantined[1] = quarantined[1], quarantined[0]
		}
		for i, want := range []string{"invalid UTF-8 at byte 7", `lone surrogate \ud800 at byte 7`} {
			q, r := quarantined[i], in[i+1]
			if !bytes.Equal(q.Key, r.Key) || !bytes.Equal(q.Value, r.Value) {
				t.Errorf("quarantined record %d changed: key %q value %q, want %q %q", i, q.Key, q.Value, r.Key, r.Value)
			}
			if e := q.Headers["millrace-error"]; !strings.Contains(e, want) {
				t.Errorf("quarantined record %d: error %q, want one with %q", i, e, want)
			}
		}
	})
}
