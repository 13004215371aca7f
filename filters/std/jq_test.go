package std_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/testkit/filtertest"
)

// runJQ builds a jq filter from config and runs it on one message.
func runJQ(t *testing.T, config string, msg *filters.Message) ([]*filters.Message, error) {
	t.Helper()
	return build(t, "jq", config).Process(context.Background(), msg)
}

func TestJQ_transforms_payload(t *testing.T) {
	tests := []struct {
		name, program, payload string
		want                   []string
	}{
		{"identity compacts", ".", `{ "b": 1,  "a": [1, 2] }`, []string{`{"a":[1,2],"b":1}`}},
		{"projection", "{id: .id, total: (.qty * .price)}", `{"id":"o-1","qty":3,"price":2.5}`, []string{`{"id":"o-1","total":7.5}`}},
		{"scalar result", ".name", `{"name":"ada"}`, []string{`"ada"`}},
		{"large integers stay exact", ".id", `{"id":123456789012345678901234567890}`, []string{`123456789012345678901234567890`}},
		{"int64 ids stay exact", "{id}", `{"id":9007199254740993}`, []string{`{"id":9007199254740993}`}},
		{"decimals keep their text", ".", `{"price":1.10}`, []string{`{"price":1.10}`}},
		{"arithmetic on large integers", ".n + 1", `{"n":9007199254740993}`, []string{`9007199254740994`}},
		{"unicode and escapes", ".s", `{"s":"h\u00e9\"<&>"}`, []string{`"hé\"<&>"`}},
		{"top-level scalar input", ". * 2", `21`, []string{`42`}},
		{"multiple results fan out", ".items[]", `{"items":[1,"two",{"three":3}]}`, []string{`1`, `"two"`, `{"three":3}`}},
		{"null results are dropped", ".items[]", `{"items":[1,null,2]}`, []string{`1`, `2`}},
		{"false is kept", ".ok", `{"ok":false}`, []string{`false`}},
		{"select drops", "select(.ok)", `{"ok":false}`, []string{}},
		{"empty drops", "empty", `{}`, []string{}},
		{"null drops", "null", `{}`, []string{}},
		{"missing field drops", ".missing", `{}`, []string{}},
		{"halt ends without error", "1, halt, 2", `{}`, []string{`1`}},
		{"debug passes its input on", "debug | .a", `{"a":1}`, []string{`1`}},
		{"debug with a message", `debug("seen") | .a`, `{"a":1}`, []string{`1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runJQ(t, "program: '"+tt.program+"'", &filters.Message{Payload: []byte(tt.payload)})
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if got := payloads(out); !slices.Equal(got, tt.want) {
				t.Errorf("payloads = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestJQ_fans_out_multiple_results(t *testing.T) {
	f := build(t, "jq", "program: .items[]")
	in := &filters.Message{
		Key:     []byte("order-1"),
		Payload: []byte(`{"items":[{"sku":"a"},{"sku":"b"},{"sku":"c"}]}`),
		Headers: filters.HeadersOf(filters.HeaderJob, "job-1", "tenant", "acme"),
	}
	out, err := f.Process(context.Background(), in)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	want := []string{`{"sku":"a"}`, `{"sku":"b"}`, `{"sku":"c"}`}
	if got := payloads(out); !slices.Equal(got, want) {
		t.Fatalf("payloads = %q, want %q", got, want)
	}
	for i, m := range out {
		if string(m.Key) != "order-1" || m.Headers.Get(filters.HeaderJob) != "job-1" || m.Headers.Get("tenant") != "acme" || len(m.Headers) != 2 {
			t.Errorf("message %d: key %q headers %v, want the input's", i, m.Key, m.Headers)
		}
	}
	// The messages must not share memory: the engine may change each.
	out[1].Key[0] = 'X'
	out[1].Headers.Set("tenant", "changed")
	for _, i := range []int{0, 2} {
		if string(out[i].Key) != "order-1" || out[i].Headers.Get("tenant") != "acme" {
			t.Errorf("message %d changed with message 1: key %q headers %v", i, out[i].Key, out[i].Headers)
		}
	}
}

func TestJQ_binds_key_and_headers(t *testing.T) {
	tests := []struct {
		name, program string
		key           []byte
		headers       filters.Headers
		want          string
	}{
		{"key", "{key: $key}", []byte("k-1"), nil, `{"key":"k-1"}`},
		{"no key is null", "{key: $key}", nil, nil, `{"key":null}`},
		{"empty key is a string", "{key: $key}", []byte{}, nil, `{"key":""}`},
		{"headers", "$headers", nil, filters.HeadersOf("a", "1", filters.HeaderJob, "j"), `{"a":"1","millrace-job":"j"}`},
		{"no headers is an empty object", "$headers", nil, nil, `{}`},
		{"both", `"\($key)/\($headers.tenant)"`, []byte("k"), filters.HeadersOf("tenant", "acme"), `"k/acme"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runJQ(t, fmt.Sprintf("program: %q", tt.program),
				&filters.Message{Key: tt.key, Payload: []byte(`{}`), Headers: tt.headers})
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if got := payloads(out); len(got) != 1 || got[0] != tt.want {
				t.Errorf("payloads = %q, want [%q]", got, tt.want)
			}
		})
	}
}

func TestJQ_sets_key_from_each_result(t *testing.T) {
	tests := []struct {
		name, key, payload string
		wantKeys           []string // "<nil>" for no key
	}{
		{"string", ".customer_id", `[{"customer_id":"c-1"},{"customer_id":"c-2"}]`, []string{"c-1", "c-2"}},
		{"number", ".n", `[{"n":42},{"n":1.5},{"n":123456789012345678901}]`, []string{"42", "1.5", "123456789012345678901"}},
		{"bool", ".b", `[{"b":true}]`, []string{"true"}},
		{"null keeps the key", ".missing", `[{"a":1}]`, []string{"old"}},
		{"no result keeps the key", "empty", `[{"a":1}]`, []string{"old"}},
		{"first result wins", ".a[]", `[{"a":["x","y"]}]`, []string{"x"}},
		{"mixed", ".k", `[{"k":"new"},{"k":null},{"k":7}]`, []string{"new", "old", "7"}},
		{"empty string", `""`, `[{}]`, []string{""}},
		{"reads the old key", `$key + "-" + .s`, `[{"s":"a"},{"s":"b"}]`, []string{"old-a", "old-b"}},
		// The meaning of internal/jqkey, as dedup keys and produce --key-jq.
		{"object as sorted compact JSON", ".k", `[{"k":{"b":1,"a":"<&>"}}]`, []string{`{"a":"<&>","b":1}`}},
		{"array as compact JSON", ".k", `[{"k":[2, "x", 1.50]}]`, []string{`[2,"x",1.50]`}},
		{"halt keeps the key", "halt", `[{}]`, []string{"old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runJQ(t, fmt.Sprintf("program: '.[]'\nkey: '%s'", tt.key),
				&filters.Message{Key: []byte("old"), Payload: []byte(tt.payload)})
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			var got []string
			for _, m := range out {
				got = append(got, string(m.Key))
			}
			if !slices.Equal(got, tt.wantKeys) {
				t.Errorf("keys = %q, want %q", got, tt.wantKeys)
			}
		})
	}
}

func TestJQ_rejects_bad_config(t *testing.T) {
	checkFieldErrors(t, "jq", []fieldErrorCase{
		{"parse error", "program: '{id: .id'", "program", "does not parse"},
		{"unknown function", "program: 'nosuchfn(1)'", "program", "does not compile"},
		{"unknown variable", "program: '$nope'", "program", "does not compile"},
		{"empty program", "program: ' '", "program", "empty"},
		{"input is not available", "program: 'input'", "program", "does not compile"},
		{"bad key program", "program: .\nkey: '.a |'", "key", "does not parse"},
		{"empty key program", "program: .\nkey: ''", "key", "empty"},
	})
}

func TestJQ_requires_program(t *testing.T) {
	spec, _ := filters.Lookup("jq")
	if _, _, problems := spec.Parse(configNode(t, "key: .id")); len(problems) != 1 || !strings.Contains(problems[0].Message, `"program"`) {
		t.Errorf("problems = %+v, want one about program", problems)
	}
}

func TestJQ_fails_permanently_on_bad_records(t *testing.T) {
	tests := []struct {
		name, config, payload, want string
	}{
		{"not JSON", "program: .", `{"a":`, "payload is not JSON"},
		{"empty payload", "program: .", ``, "payload is not JSON"},
		{"two values", "program: .", `{} {}`, "payload is not JSON"},
		{"runtime error", "program: '.a + 1'", `{"a":"x"}`, "jq program failed"},
		{"error()", `program: 'error("bad order")'`, `{}`, "bad order"},
		{"halt_error", `program: '"stop" | halt_error'`, `{}`, "stop"},
		{"error after results", "program: '1, error(\"late\")'\nkey: tostring", `{}`, "late"},
		{"too many results", "program: 'range(200000)'", `{}`, "more than 100000 results"},
		{"key has no exact JSON text", "program: .\nkey: '[.b | @base64d]'", `{"b":"eP8="}`, `key program result has no exact JSON text: string at [0] is not valid UTF-8`},
		{"key program error", "program: .\nkey: '.a.b'", `{"a":"s"}`, "key program failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &filters.Message{Key: []byte("k"), Payload: []byte(tt.payload)}
			out, err := runJQ(t, tt.config, in)
			if err == nil {
				t.Fatalf("Process = %q, want an error", payloads(out))
			}
			if string(in.Key) != "k" || string(in.Payload) != tt.payload {
				t.Errorf("failed record changed to key %q payload %q", in.Key, in.Payload)
			}
			if !filters.IsPermanent(err) {
				t.Errorf("error %q is not permanent", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// A tombstone (a record with no value) is named as one, not as an empty
// payload.
func TestJQ_names_a_tombstone(t *testing.T) {
	_, err := runJQ(t, "program: .", &filters.Message{Key: []byte("k")})
	if !filters.IsPermanent(err) || !strings.Contains(err.Error(), "tombstone") {
		t.Fatalf("Process of a tombstone = %v, want a permanent error naming it a tombstone", err)
	}
}

func TestJQ_never_rewrites_bytes(t *testing.T) {
	tests := []struct {
		name, config string
		msg          *filters.Message
		want         string // part of the permanent error
	}{
		{"payload with invalid UTF-8", "program: .", &filters.Message{Payload: []byte("{\"s\":\"x\xff\"}")},
			"payload is not UTF-8: invalid UTF-8 at byte 7"},
		{"a field the program drops", "program: .a", &filters.Message{Payload: []byte("{\"a\":1,\"b\":\"\xfe\"}")},
			"invalid UTF-8 at byte 12"},
		{"lone surrogate escape", "program: .", &filters.Message{Payload: []byte(`{"s":"x\ud800"}`)},
			`lone surrogate \ud800 at byte 7`},
		{"$key in a result", "program: '{k: $key}'", &filters.Message{Key: []byte("k\xff"), Payload: []byte(`{}`)},
			"jq program result: string at .k is not valid UTF-8"},
		{"$headers in a result", "program: '$headers'", &filters.Message{Headers: filters.HeadersOf("h", "v\xfe"), Payload: []byte(`{}`)},
			"string at .h is not valid UTF-8"},
		{"a header name in a result", "program: '$headers'", &filters.Message{Headers: filters.HeadersOf("h\xfe", "v"), Payload: []byte(`{}`)},
			`string at ["h\xfe"] is not valid UTF-8`},
		{"@base64d", "program: '.b | @base64d'", &filters.Message{Payload: []byte(`{"b":"eP8="}`)},
			"string at . is not valid UTF-8"},
		{"a later result", "program: '.a, [$key]'", &filters.Message{Key: []byte("\xff"), Payload: []byte(`{"a":1}`)},
			"string at [0] is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := string(tt.msg.Payload)
			out, err := runJQ(t, tt.config, tt.msg)
			if err == nil || !filters.IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Process = %q, %v; want a permanent error with %q", payloads(out), err, tt.want)
			}
			if string(tt.msg.Payload) != payload {
				t.Errorf("failed record changed to %q", tt.msg.Payload)
			}
		})
	}
}

func TestJQ_carries_valid_text_exactly(t *testing.T) {
	tests := []struct {
		name, program, payload, want string
	}{
		{"a real U+FFFD", ".", `{"s":"x\ufffd \u00e9"}`, "{\"s\":\"x\uFFFD é\"}"},
		{"an escaped backslash before ufffd", ".", `{"s":"a\\ufffd"}`, `{"s":"a\\ufffd"}`},
		{"a surrogate pair", ".", `{"s":"\ud83d\ude00"}`, `{"s":"😀"}`},
		{"@base64d of text", ".b | @base64d", `{"b":"w6k="}`, `"é"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runJQ(t, fmt.Sprintf("program: %q", tt.program), &filters.Message{Payload: []byte(tt.payload)})
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if got := payloads(out); len(got) != 1 || got[0] != tt.want {
				t.Errorf("payloads = %q, want [%q]", got, tt.want)
			}
		})
	}
}

func TestJQ_passes_key_and_headers_on_byte_for_byte(t *testing.T) {
	key := []byte("k\xff\x00")
	headers := filters.HeadersOf("h\xfe", "v\xff", "bin", "\x00\x01\xc3")
	tests := []struct {
		name, config string
		wantKey      []byte
	}{
		{"key kept", "program: '.items[]'", key},
		{"key set from $key", "program: '.items[]'\nkey: '$key + \"/\" + (. | tostring)'", nil},
		{"key set from a header", "program: '.items[]'\nkey: '$headers.bin'", []byte("\x00\x01\xc3")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runJQ(t, tt.config, &filters.Message{Key: key, Payload: []byte(`{"items":[1,2]}`), Headers: headers.Clone()})
			if err != nil || len(out) != 2 {
				t.Fatalf("Process = %q, %v; want 2 results", payloads(out), err)
			}
			for i, m := range out {
				want := tt.wantKey
				if want == nil {
					want = fmt.Appendf(nil, "%s/%d", key, i+1)
				}
				if !bytes.Equal(m.Key, want) || !slices.EqualFunc(m.Headers, headers, func(a, b filters.Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
					t.Errorf("result %d: key %q headers %q, want key %q headers %q", i, m.Key, m.Headers, want, headers)
				}
			}
		})
	}
}

func TestJQ_honours_context(t *testing.T) {
	f := build(t, "jq", "program: 'last(repeat(1))'") // never ends
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	for name, ctx := range map[string]context.Context{"cancelled": cancelled, "deadline": expired} {
		t.Run(name, func(t *testing.T) {
			_, err := f.Process(ctx, &filters.Message{Payload: []byte(`{}`)})
			if err == nil || !errors.Is(err, ctx.Err()) {
				t.Fatalf("Process error = %v, want %v", err, ctx.Err())
			}
			if filters.IsPermanent(err) {
				t.Errorf("error %q is permanent, want retryable", err)
			}
		})
	}
}

func TestJQ_debug_logs_at_debug_level(t *testing.T) {
	spec, cfg := parse(t, "jq", "program: '.a | debug'")
	var buf bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := spec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Process(context.Background(), &filters.Message{Payload: []byte(`{"a":{"b":1}}`)}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.Contains(got, `value="{\"b\":1}"`) {
		t.Errorf("log = %q, want the debugged value", got)
	}
}

func TestJQ_is_safe_for_concurrent_use(t *testing.T) {
	f := build(t, "jq", "program: '{n: (.n * 2), k: $key}'\nkey: '.n | tostring'")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := g*1000 + i
				out, err := f.Process(context.Background(), &filters.Message{
					Key: fmt.Appendf(nil, "k%d", n), Payload: fmt.Appendf(nil, `{"n":%d}`, n)})
				want := fmt.Sprintf(`{"k":"k%d","n":%d}`, n, 2*n)
				if err != nil || len(out) != 1 || string(out[0].Payload) != want || string(out[0].Key) != fmt.Sprint(2*n) {
					errs <- fmt.Errorf("n=%d: got %q, %v; want %s", n, payloads(out), err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// benchPayload is a ~256-byte order.
var benchPayload = []byte(`{"id":"ord-20240611-000042","customer_id":"cust-7f3a9c","qty":3,"price":19.99,` +
	`"currency":"EUR","status":"paid","created_at":"2024-06-11T09:42:17Z","tags":["priority","gift"],` +
	`"shipping":{"method":"express","country":"DE","zip":"10115"},"note":"leave at the door"}`)

// jq parses and encodes JSON and runs a program: its stage must grow each
// record's stack at once (see filters.Spec.DeepStack).
func TestJQ_asks_for_a_deep_stack(t *testing.T) {
	if spec, ok := filters.Lookup("jq"); !ok || !spec.DeepStack {
		t.Error("the jq filter does not set DeepStack")
	}
}

func BenchmarkJQ(b *testing.B) {
	f := build(b, "jq", "program: '{id: .id, total: (.qty * .price)}'")
	ctx := context.Background()
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	for b.Loop() {
		out, err := f.Process(ctx, &filters.Message{Key: []byte("cust-7f3a9c"), Payload: benchPayload})
		if err != nil || len(out) != 1 {
			b.Fatalf("Process: %v", err)
		}
	}
}

func TestJQ_conforms(t *testing.T) {
	spec, _ := filters.Lookup("jq")
	in := func(key, payload string) *filters.Message {
		m := &filters.Message{Payload: []byte(payload), Headers: filters.HeadersOf("h", "v", filters.HeaderJob, "j")}
		if key != "" {
			m.Key = []byte(key)
		}
		return m
	}
	filtertest.Run(t, spec, filtertest.Suite{
		Config: `program: 'if .spin then last(repeat(1)) elif .items then .items[] elif .drop then empty else {id, n: (.n + 1)} end'
key: '.id'
`,
		Cases: []filtertest.Case{
			{Name: "transforms and sets the key", In: in("k", `{"id":"o-1","n":1}`),
				Want: []*filters.Message{in("o-1", `{"id":"o-1","n":2}`)}},
			{Name: "keeps the key without an id", In: in("k", `{"n":1}`), Want: []*filters.Message{in("k", `{"id":null,"n":2}`)}},
			{Name: "keeps no key", In: in("", `{"n":1}`), Want: []*filters.Message{in("", `{"id":null,"n":2}`)}},
			{Name: "fans out", In: in("k", `{"items":[{"id":"a"},{"id":"b"},{"n":3}]}`),
				Want: []*filters.Message{in("a", `{"id":"a"}`), in("b", `{"id":"b"}`), in("k", `{"n":3}`)}},
			{Name: "drops", In: in("k", `{"drop":true}`), Want: []*filters.Message{}},
			{Name: "not JSON", In: in("k", `{"n":`), Outcome: filtertest.FailsPermanently},
			{Name: "not UTF-8", In: in("k", "{\"id\":\"\xff\"}"), Outcome: filtertest.FailsPermanently},
			{Name: "a runtime error", In: in("k", `{"n":"x"}`), Outcome: filtertest.FailsPermanently},
			{Name: "a program that never ends", In: in("k", `{"spin":true}`), Blocks: true},
		},
	})
}
