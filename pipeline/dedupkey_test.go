package pipeline_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
)

func TestCompileKey_evaluates_headers_and_jq_expressions(t *testing.T) {
	msg := func(key, payload string, headers filters.Headers) *filters.Message {
		m := &filters.Message{Payload: []byte(payload), Headers: headers}
		if key != "" {
			m.Key = []byte(key)
		}
		return m
	}
	order := `{"order_id":"o-1","n":12345678901234567890,"price":9.50,"ok":true,"tags":["a"],"o":{"b":1,"a":2},"empty":""}`
	tests := []struct {
		expr string
		msg  *filters.Message
		key  string
		ok   bool
		err  string // part of the error, "" for none
	}{
		{"header:idem", msg("", "not json", filters.HeadersOf("idem", "k-1")), "k-1", true, ""},
		{"header: idem ", msg("", "", filters.HeadersOf("idem", "k-1")), "k-1", true, ""},
		{"header:idem", msg("", "{}", filters.HeadersOf("other", "x")), "", false, ""},
		{"header:idem", msg("", "{}", filters.HeadersOf("idem", "")), "", false, ""},
		{"header:idem", msg("", "{}", nil), "", false, ""},
		{".order_id", msg("", order, nil), "o-1", true, ""},
		{".n", msg("", order, nil), "12345678901234567890", true, ""},
		{".price", msg("", order, nil), "9.50", true, ""},
		{".ok", msg("", order, nil), "true", true, ""},
		{".tags", msg("", order, nil), `["a"]`, true, ""},
		{".o", msg("", order, nil), `{"a":2,"b":1}`, true, ""},
		{".missing", msg("", order, nil), "", false, ""},
		{".empty", msg("", order, nil), "", false, ""},
		{"empty", msg("", order, nil), "", false, ""},
		{".tags[], .order_id", msg("", order, nil), "a", true, ""},
		{`$key + "/" + .order_id`, msg("c-7", order, nil), "c-7/o-1", true, ""},
		{"$key", msg("", order, nil), "", false, ""},
		{`$headers.idem`, msg("", order, filters.HeadersOf("idem", "h-1")), "h-1", true, ""},
		{".order_id", msg("", "not json", nil), "", false, "payload is not JSON"},
		{".order_id", msg("", "", nil), "", false, "payload is not JSON: empty"},
		{".order_id", msg("", `{"a":1} {"a":2}`, nil), "", false, "more than one JSON value"},
		{".order_id.x", msg("", order, nil), "", false, "failed: expected an object"},
		{`error("boom")`, msg("", order, nil), "", false, "boom"},
		// The meaning of internal/jqkey, as the jq filter's key: and
		// produce --key-jq.
		{".k", msg("", `{"k":{"b":1,"a":"<&>"}}`, nil), `{"a":"<&>","b":1}`, true, ""},
		{".k", msg("", `{"k":[2, "x", 1.50]}`, nil), `[2,"x",1.50]`, true, ""},
		{"halt", msg("", order, nil), "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			keyOf, err := pipeline.CompileKey(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			key, ok, err := keyOf(tt.msg)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one with %q", err, tt.err)
			case tt.err != "" && !filters.IsPermanent(err):
				t.Fatalf("error %v is not permanent", err)
			}
			if key != tt.key || ok != tt.ok {
				t.Fatalf("got %q %v, want %q %v", key, ok, tt.key, tt.ok)
			}
		})
	}
}

func TestCompileKey_rejects_empty_and_broken_expressions(t *testing.T) {
	for expr, want := range map[string]string{
		"":           "key is empty",
		"  ":         "key is empty",
		"header:":    `"header:" needs a header name`,
		"header:  ":  `"header:" needs a header name`,
		".a ||| .b":  "does not parse",
		"$nope":      "does not compile",
		"undefined1": "does not compile",
	} {
		if _, err := pipeline.CompileKey(expr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one with %q", expr, err, want)
		}
	}
}

func TestCompileKey_is_safe_for_concurrent_use(t *testing.T) {
	keyOf, err := pipeline.CompileKey(`.id + "-" + $key + "-" + $headers.h`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				id := fmt.Sprintf("%d-%d", g, i)
				m := &filters.Message{Key: []byte("k"), Payload: []byte(`{"id":"` + id + `"}`), Headers: filters.HeadersOf("h", "x")}
				if key, ok, err := keyOf(m); err != nil || !ok || key != id+"-k-x" {
					t.Errorf("got %q %v %v", key, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDedupKey_is_byte_exact(t *testing.T) {
	msg := func(key, payload string, headers filters.Headers) *filters.Message {
		m := &filters.Message{Payload: []byte(payload), Headers: headers}
		if key != "" {
			m.Key = []byte(key)
		}
		return m
	}
	tests := []struct {
		name, expr string
		msg        *filters.Message
		key        string // the exact key bytes
		err        string // part of a permanent error, "" for none
	}{
		{"header value of invalid UTF-8", "header:idem", msg("", "{}", filters.HeadersOf("idem", "x\xff")), "x\xff", ""},
		{"another header value", "header:idem", msg("", "{}", filters.HeadersOf("idem", "x\xfe")), "x\xfe", ""},
		{"a string key keeps $key's bytes", "$key", msg("k\xff", "{}", nil), "k\xff", ""},
		{"a joined key keeps $key's bytes", `$key + "/" + .id`, msg("k\xfe", `{"id":"o"}`, nil), "k\xfe/o", ""},
		{"a string key keeps a header's bytes", "$headers.h", msg("", "{}", filters.HeadersOf("h", "v\xfe")), "v\xfe", ""},
		{"a key decoded with @base64d is exact", ".b | @base64d", msg("", `{"b":"eP8="}`, nil), "x\xff", ""},
		{"valid UTF-8 and a real U+FFFD pass", ".id", msg("", `{"id":"é\ufffd😀 \ud83d\ude00"}`, nil), "é\uFFFD😀 😀", ""},
		{"payload with invalid UTF-8", ".id", msg("", "{\"id\":\"x\xff\"}", nil), "", "payload is not UTF-8: invalid UTF-8 at byte 8"},
		{"invalid UTF-8 the expression does not read", ".id", msg("", "{\"id\":\"o\",\"n\":\"\xfe\"}", nil), "", "invalid UTF-8 at byte 15"},
		{"lone high surrogate", ".id", msg("", `{"id":"x\ud800"}`, nil), "", `lone surrogate \ud800 at byte 8`},
		{"lone low surrogate", ".id", msg("", `{"id":"x\uDFFF"}`, nil), "", `lone surrogate \uDFFF at byte 8`},
		{"high surrogate then no low one", ".id", msg("", `{"id":"\ud800\u0041"}`, nil), "", `lone surrogate \ud800 at byte 7`},
		{"non-string key holding $key", "[$key]", msg("k\xff", "{}", nil), "", "not valid UTF-8"},
		{"non-string key holding a header", "$headers", msg("", "{}", filters.HeadersOf("h", "v\xfe")), "", "not valid UTF-8"},
		{"non-string key holding a bad header name", "$headers", msg("", "{}", filters.HeadersOf("h\xfe", "v")), "", "not valid UTF-8"},
		{"object key from $key", "{($key): 1}", msg("k\xff", "{}", nil), "", "not valid UTF-8"},
		{"non-string key holding @base64d", "[.b | @base64d]", msg("", `{"b":"eP8="}`, nil), "", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyOf, err := pipeline.CompileKey(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			key, ok, err := keyOf(tt.msg)
			if tt.err == "" {
				if err != nil || !ok || key != tt.key {
					t.Fatalf("got %q %v %v, want %q", key, ok, err, tt.key)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !filters.IsPermanent(err) {
				t.Fatalf("got %q %v, error %v; want a permanent error with %q", key, ok, err, tt.err)
			}
		})
	}
}

func TestDedupKey_never_maps_two_byte_strings_to_one_key(t *testing.T) {
	// Each group holds payloads (or record keys) whose bytes differ; their
	// keys must differ too, or be permanent errors.
	groups := []struct {
		expr string
		msgs []*filters.Message
	}{
		{".id", []*filters.Message{
			{Payload: []byte("{\"id\":\"x\xff\"}")},
			{Payload: []byte("{\"id\":\"x\xfe\"}")},
			{Payload: []byte(`{"id":"x\ufffd"}`)},
			{Payload: []byte(`{"id":"x\ud800"}`)},
			{Payload: []byte(`{"id":"x\udc00"}`)},
		}},
		{"[$key]", []*filters.Message{
			{Key: []byte("x\xff"), Payload: []byte("{}")},
			{Key: []byte("x\xfe"), Payload: []byte("{}")},
			{Key: []byte("x\uFFFD"), Payload: []byte("{}")},
		}},
		{"$headers", []*filters.Message{
			{Headers: filters.HeadersOf("h", "x\xff"), Payload: []byte("{}")},
			{Headers: filters.HeadersOf("h", "x\xfe"), Payload: []byte("{}")},
			{Headers: filters.HeadersOf("h", "x\uFFFD"), Payload: []byte("{}")},
		}},
	}
	for _, g := range groups {
		keyOf, err := pipeline.CompileKey(g.expr)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for i, m := range g.msgs {
			key, ok, err := keyOf(m)
			if err != nil {
				if !filters.IsPermanent(err) {
					t.Errorf("%s, message %d: error %v is not permanent", g.expr, i, err)
				}
				continue
			}
			if !ok {
				t.Errorf("%s, message %d: no key", g.expr, i)
				continue
			}
			if j, dup := seen[key]; dup {
				t.Errorf("%s: messages %d and %d differ but both have key %q", g.expr, j, i, key)
			}
			seen[key] = i
		}
	}
}
