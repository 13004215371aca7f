package std_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/testkit/filtertest"
)

// buildLog builds a log filter whose entries, at debug level and up, go to
// the returned buffer as JSON lines.
func buildLog(t *testing.T, config string) (filters.Filter, *bytes.Buffer) {
	t.Helper()
	spec, cfg := parse(t, "log", config)
	var buf bytes.Buffer
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := spec.New(cfg)
	if err != nil {
		t.Fatalf("new log %q: %v", config, err)
	}
	return f, &buf
}

// entries decodes the JSON log lines in buf, without their time.
func entries(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		delete(e, "time")
		out = append(out, e)
	}
	return out
}

func TestLog_logs_records(t *testing.T) {
	headers := filters.HeadersOf(filters.HeaderJob, "job-1", "b", "2")
	tests := []struct {
		name, config string
		msg          filters.Message
		want         map[string]any
	}{
		{"defaults", "{}", filters.Message{Key: []byte("k"), Payload: []byte(`{"a":1}`), Headers: headers},
			map[string]any{"level": "INFO", "msg": "record", "key": "k", "payload": `{"a":1}`, "size": 7.0}},
		{"no key", "{}", filters.Message{Payload: []byte("p")},
			map[string]any{"level": "INFO", "msg": "record", "payload": "p", "size": 1.0}},
		{"empty key", "{}", filters.Message{Key: []byte{}, Payload: []byte("p")},
			map[string]any{"level": "INFO", "msg": "record", "key": "", "payload": "p", "size": 1.0}},
		{"level", "level: warn", filters.Message{Payload: []byte("p")},
			map[string]any{"level": "WARN", "msg": "record", "payload": "p", "size": 1.0}},
		{"truncated", "max_bytes: 4", filters.Message{Payload: []byte("abcdefgh")},
			map[string]any{"level": "INFO", "msg": "record", "payload": "abcd", "size": 8.0}},
		{"truncated at a rune", "max_bytes: 4", filters.Message{Payload: []byte("abcé")},
			map[string]any{"level": "INFO", "msg": "record", "payload": "abc", "size": 5.0}},
		{"no payload", "max_bytes: 0", filters.Message{Payload: []byte("abc")},
			map[string]any{"level": "INFO", "msg": "record", "size": 3.0}},
		{"headers", "headers: true", filters.Message{Payload: []byte("p"), Headers: headers},
			map[string]any{"level": "INFO", "msg": "record", "payload": "p", "size": 1.0,
				"headers": map[string]any{"b": "2", filters.HeaderJob: "job-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, buf := buildLog(t, tt.config)
			in := tt.msg
			want := *in.Copy()
			out, err := f.Process(context.Background(), &in)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if len(out) != 1 || !reflect.DeepEqual(*out[0], in) || !bytes.Equal(out[0].Payload, want.Payload) || !bytes.Equal(out[0].Key, want.Key) {
				t.Errorf("Process changed the record: got %+v, want %+v", out, want)
			}
			got := entries(t, buf)
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("log = %v, want [%v]", got, tt.want)
			}
		})
	}
}

func TestLog_skips_disabled_levels(t *testing.T) {
	spec, cfg := parse(t, "log", "level: debug")
	var buf bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f, err := spec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := &filters.Message{Payload: []byte("p")}
	out, err := f.Process(context.Background(), in)
	if err != nil || len(out) != 1 || out[0] != in {
		t.Errorf("Process = %v, %v; want the record passed on", out, err)
	}
	if buf.Len() != 0 {
		t.Errorf("logged %q below the logger's level", buf.String())
	}
}

func TestLog_rejects_bad_config(t *testing.T) {
	checkFieldErrors(t, "log", []fieldErrorCase{
		{"unknown level", "level: verbose", "level", `"verbose"`},
		{"upper-case level", "level: INFO", "level", `"INFO"`},
		{"negative max_bytes", "max_bytes: -1", "max_bytes", "negative"},
	})
}

func TestLog_conforms(t *testing.T) {
	spec, _ := filters.Lookup("log")
	var buf syncBuffer
	records := []*filters.Message{
		{Key: []byte("k"), Payload: []byte(`{"a":1}`), Headers: filters.HeadersOf("h", "v")},
		{Payload: []byte("no key, a long payload cut at max_bytes")},
		{Key: []byte("k\xff"), Payload: []byte("\x00\xff bytes")},
	}
	var cases []filtertest.Case
	for i, r := range records {
		cases = append(cases, filtertest.Case{Name: fmt.Sprintf("record %d", i), In: r, Want: []*filters.Message{r}})
	}
	filtertest.Run(t, spec, filtertest.Suite{
		Config: "level: debug\nmax_bytes: 8\nheaders: true",
		Cases:  cases,
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if !strings.Contains(buf.String(), `msg=record key=k payload="{\"a\":1}" size=7 headers.h=v`) {
		t.Errorf("log:\n%s", buf.String())
	}
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
