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
