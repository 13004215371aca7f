package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/millrace/millrace/testkit"
)

// header is a record header; a nil value is a null one.
type header struct{ key, value []byte }

// rawRecord is a record as kcat produces it: a nil key is none, a nil
// payload a tombstone (null).
type rawRecord struct {
	key     []byte
	headers []header
	payload []byte
}

// awkwardRecords are records whose bytes a lossy printer would change or
// confuse: invalid UTF-8 in key, header names and values and payload,
// repeated headers, a null header, a tombstone, a JSON string payload
// beside the same text unquoted, and JSON with spaces and HTML characters.
var awkwardRecords = []rawRecord{
	{key: []byte("k\xff\x00"), payload: []byte("{\"s\":\"\xff\"}"), headers: []header{
		{[]byte("tag"), []byte("x")}, {[]byte("tag"), []byte("y")},
		{[]byte("bin"), []byte("\xfe\x01")}, {[]byte("n\xff"), []byte("v")}}},
	{payload: []byte("a\nb"), headers: []header{{[]byte("nul"), nil}}},
	{key: []byte("tomb")},
	{payload: []byte(`"quoted"`)},
	{payload: []byte(`quoted`)},
	{key: []byte("user:1"), payload: []byte(`{ "a": 1, "h": "<&>\u00e9" }`)},
}

// kcatProduce sends records to topic with kcat, one invocation each, so
// that no millrace code touches them on the way in.
func kcatProduce(t *testing.T, brokers, topic string, recs []rawRecord) {
	t.Helper()
	kc := kcat(t)
	for i, r := range recs {
		args := []string{"-P", "-b", brokers, "-t", topic, "-D", `\x1e`}
		var in []byte
		if r.key != nil {
			args = append(args, "-K", `\x1f`)
			in = append(append(in, r.key...), 0x1f)
		}
		if r.payload == nil {
			args = append(args, "-Z")
		}
		for _, h := range r.headers {
			if h.value == nil {
				args = append(args, "-H", string(h.key))
			} else {
				args = append(args, "-H", string(h.key)+"="+string(h.value))
			}
		}
		in = append(append(in, r.payload...), 0x1e)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, kc, args...)
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("kcat -P record %d: %v\n%s", i, err, out)
		}
	}
}

// parseRecordJSON reads one line of tail --json or quarantine show --json
// back into the record's bytes, checking that the line is UTF-8 JSON and
// that base64 is used exactly where the bytes are not UTF-8.
func parseRecordJSON(t *testing.T, line string) rawRecord {
	t.Helper()
	if !utf8.ValidString(line) || !json.Valid([]byte(line)) {
		t.Fatalf("line is not UTF-8 JSON: %q", line)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		t.Fatal(err)
	}
	var r rawRecord
	r.key = bytesField(t, obj, "key")
	r.payload = bytesField(t, obj, "payload")
	hs, ok := obj["headers"].([]any)
	if !ok {
		t.Fatalf("headers %v are not a list: %s", obj["headers"], line)
	}
	for _, h := range hs {
		h, ok := h.(map[string]any)
		if !ok || len(h) != 2 {
			t.Fatalf("header %v is not {key, value}: %s", h, line)
		}
		r.headers = append(r.headers, header{bytesField(t, h, "key"), bytesField(t, h, "value")})
	}
	return r
}

// bytesField returns the bytes of field name of obj: its string, nil for
// null, or the bytes of name_base64.
func bytesField(t *testing.T, obj map[string]any, name string) []byte {
	t.Helper()
	s, plain := obj[name]
	b64, encoded := obj[name+"_base64"].(string)
	switch {
	case plain && encoded:
		t.Fatalf("%s and %s_base64 both present: %v", name, name, obj)
	case encoded:
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("%s_base64 %q: %v", name, b64, err)
		}
		if utf8.Valid(b) {
			t.Errorf("%s_base64 %q holds UTF-8 %q: want it as %s", name, b64, b, name)
		}
		return b
	case !plain:
		t.Fatalf("neither %s nor %s_base64 in %v", name, name, obj)
	case s == nil:
		return nil
	}
	str, ok := s.(string)
	if !ok {
		t.Fatalf("%s is %T %v, want a string", name, s, s)
	}
	return []byte(str)
}

// sameRecord reports how got differs from want, "" if not at all;
// watermill's message id header is left out of got.
func sameRecord(got, want rawRecord) string {
	var hs []header
	for _, h := range got.headers {
		if string(h.key) != "_watermill_message_uuid" {
			hs = append(hs, h)
		}
	}
	switch {
	case !bytes.Equal(got.key, want.key) || (got.key == nil) != (want.key == nil):
		return fmt.Sprintf("key %q, want %q", got.key, want.key)
	case !bytes.Equal(got.payload, want.payload) || (got.payload == nil) != (want.payload == nil):
		return fmt.Sprintf("payload %q, want %q", got.payload, want.payload)
	case len(hs) != len(want.headers):
		return fmt.Sprintf("headers %q, want %q", hs, want.headers)
	}
	for i, h := range hs {
		w := want.headers[i]
		if !bytes.Equal(h.key, w.key) || !bytes.Equal(h.value, w.value) || (h.value == nil) != (w.value == nil) {
			return fmt.Sprintf("header %d: %q=%q, want %q=%q", i, h.key, h.value, w.key, w.value)
		}
	}
	return ""
}

// awkwardTopic produces awkwardRecords with kcat into the quarantine topic
// of a pipeline (one partition, so offsets follow the list) and returns
// the directory of its pipelines.yaml and the pipeline's name.
func awkwardTopic(t *testing.T, b testkit.Backend) (dir, name string) {
	t.Helper()
	dir, name = t.TempDir(), "bytes-"+testkit.Unique()
	writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    stages:
      - {name: work, filter: jq, config: {program: .}}
`, name))
	b.CreateTopic(t, name+".quarantine", 1)
	kcatProduce(t, strings.Join(b.Brokers, ","), name+".quarantine", awkwardRecords)
	return dir, name
}

func checkRecordsJSON(t *testing.T, what, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(awkwardRecords) {
		t.Fatalf("%s printed %d lines, want %d:\n%s", what, len(lines), len(awkwardRecords), out)
	}
	for i, line := range lines {
		if diff := sameRecord(parseRecordJSON(t, line), awkwardRecords[i]); diff != "" {
			t.Errorf("%s record %d: %s\n%s", what, i, diff, line)
		}
	}
}

func TestTail_json_prints_every_byte_and_header_as_kcat_sent_it(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, name := awkwardTopic(t, b)
		out, stderr, code := cli(t, dir, "", "tail", name+".quarantine", "--brokers", strings.Join(b.Brokers, ","),
			"--from-beginning", "--exit", "--json")
		if code != 0 {
			t.Fatalf("tail --json: exit %d: %s", code, stderr)
		}
		checkRecordsJSON(t, "tail --json", out)
	})
}

func TestQuarantineShow_json_prints_every_byte_and_header_as_kcat_sent_it(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, name := awkwardTopic(t, b)
		out, stderr, code := cli(t, dir, "", "quarantine", "show", "--pipeline", name, "--brokers", strings.Join(b.Brokers, ","), "--json")
		if code != 0 {
			t.Fatalf("quarantine show --json: exit %d: %s", code, stderr)
		}
		checkRecordsJSON(t, "quarantine show --json", out)
	})
}

func TestTail_and_quarantine_show_text_escape_bytes_that_are_not_printable(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, name := awkwardTopic(t, b)
		brokers := strings.Join(b.Brokers, ",")
		out, stderr, code := cli(t, dir, "", "tail", name+".quarantine", "--brokers", brokers, "--from-beginning", "--exit")
		if code != 0 {
			t.Fatalf("tail: exit %d: %s", code, stderr)
		}
		want := strings.Join([]string{
			`0/0 key="k\xff\x00" tag=x tag=y bin="\xfe\x01" "n\xff"=v | "{\"s\":\"\xff\"}"`,
			`0/1 nul | "a\nb"`,
			`0/2 key=tomb | `,
			`0/3 | "\"quoted\""`,
			`0/4 | quoted`,
			`0/5 key=user:1 | { "a": 1, "h": "<&>\u00e9" }`,
		}, "\n") + "\n"
		if out != want {
			t.Errorf("tail printed\n%s\nwant\n%s", out, want)
		}
		out, stderr, code = cli(t, dir, "", "quarantine", "show", "--pipeline", name, "--brokers", brokers)
		if code != 0 {
			t.Fatalf("quarantine show: exit %d: %s", code, stderr)
		}
		for _, want := range []string{
			` key="k\xff\x00" at `, "\n  tag: x\n  tag: y\n  bin: \"\\xfe\\x01\"\n  \"n\\xff\": v\n  payload: \"{\\\"s\\\":\\\"\\xff\\\"}\"\n",
			"\n  nul: \n  payload: \"a\\nb\"\n", "\n  payload: \"\\\"quoted\\\"\"\n", "\n  payload: quoted\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("quarantine show printed\n%s\nwant it to hold %q", out, want)
			}
		}
		if !utf8.ValidString(out) {
			t.Errorf("quarantine show printed bytes that are not UTF-8: %q", out)
		}
	})
}

func TestQuarantineLs_keeps_the_bytes_of_errors(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, name := t.TempDir(), "bytes-ls-"+testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    stages:
      - {name: work, filter: jq, config: {program: .}}
`, name))
		b.CreateTopic(t, name+".quarantine", 1)
		// An exec filter's error quotes the end of the program's stderr,
		// which may be any bytes; a long one is cut for the table.
		binErr := "command x exited 1: \xff\xfe"
		longErr := strings.Repeat("a", 116) + "é and more"
		kcatProduce(t, strings.Join(b.Brokers, ","), name+".quarantine", []rawRecord{
			{payload: []byte("1"), headers: []header{{[]byte("millrace-stage"), []byte("work")}, {[]byte("millrace-error"), []byte(binErr)}}},
			{payload: []byte("2"), headers: []header{{[]byte("millrace-stage"), []byte("work")}, {[]byte("millrace-error"), []byte(longErr)}}},
		})
		brokers := strings.Join(b.Brokers, ",")
		out, stderr, code := cli(t, dir, "", "quarantine", "ls", "--pipeline", name, "--brokers", brokers, "--json")
		if code != 0 {
			t.Fatalf("quarantine ls --json: exit %d: %s", code, stderr)
		}
		var ls struct{ Errors []map[string]any }
		if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls.Errors) != 2 {
			t.Fatalf("quarantine ls --json printed %s (%v), want 2 errors", out, err)
		}
		var got []string
		for _, e := range ls.Errors {
			got = append(got, string(bytesField(t, e, "error")))
		}
		if !slices.Contains(got, binErr) || !slices.Contains(got, longErr) {
			t.Errorf("quarantine ls --json errors %q, want %q and %q byte for byte", got, binErr, longErr)
		}
		out, stderr, code = cli(t, dir, "", "quarantine", "ls", "--pipeline", name, "--brokers", brokers)
		if code != 0 {
			t.Fatalf("quarantine ls: exit %d: %s", code, stderr)
		}
		if !utf8.ValidString(out) || !strings.Contains(out, `"command x exited 1: \xff\xfe"`) || !strings.Contains(out, strings.Repeat("a", 116)+"...") {
			t.Errorf("quarantine ls printed %q; want UTF-8 with the error's bytes escaped and the long one cut before é", out)
		}
	})
}
