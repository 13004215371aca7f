package jqkey_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/itchyny/gojq"

	"github.com/millrace/millrace/internal/exactjson"
	"github.com/millrace/millrace/internal/jqkey"
)

func TestBytes_is_the_one_meaning_of_a_jq_key(t *testing.T) {
	big1, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	tests := []struct {
		name string
		v    any
		want string
		err  string // part of the error, "" for none
	}{
		{"a string is its bytes", "o-1", "o-1", ""},
		{"an empty string", "", "", ""},
		{"a string that is not UTF-8 is its bytes", "k\xff", "k\xff", ""},
		{"a string with characters JSON escapes", "a\"b\n<&>", "a\"b\n<&>", ""},
		{"an int", 42, "42", ""},
		{"a number as written", json.Number("1.50"), "1.50", ""},
		{"a large number as written", json.Number("12345678901234567890"), "12345678901234567890", ""},
		{"a computed float", 7.5, "7.5", ""},
		{"a big integer", big1, "123456789012345678901234567890", ""},
		{"true", true, "true", ""},
		{"false", false, "false", ""},
		{"an object, keys sorted", map[string]any{"b": 1, "a": "x"}, `{"a":"x","b":1}`, ""},
		{"no HTML escaping", map[string]any{"s": "<&>\u2028"}, "{\"s\":\"<&>\u2028\"}", ""},
		{"an array", []any{1, "x", nil, []any{}}, `[1,"x",null,[]]`, ""},
		{"an object holding bytes that are not UTF-8", map[string]any{"a": []any{"x\xff"}}, "", "string at .a[0] is not valid UTF-8"},
		{"an object key that is not UTF-8", map[string]any{"k\xfe": 1}, "", "is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jqkey.Bytes(tt.v)
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Bytes = %q, %v; want an error with %q", got, err, tt.err)
			case tt.err == "" && (err != nil || string(got) != tt.want):
				t.Fatalf("Bytes = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestFirst_takes_the_first_result_or_none(t *testing.T) {
	tests := []struct {
		expr, input string
		want        string // the key, "<none>" for no key
		err         string // part of the error, "" for none
	}{
		{".a", `{"a":"x"}`, "x", ""},
		{".a[]", `{"a":["x","y"]}`, "x", ""},
		{".a, error(\"late\")", `{"a":1}`, "1", ""},
		{".missing", `{}`, "<none>", ""},
		{"null", `{}`, "<none>", ""},
		{"empty", `{}`, "<none>", ""},
		{"halt", `{}`, "<none>", ""},
		{"empty, 1", `{}`, "1", ""},
		{".o", `{"o":{"b":1,"a":[2,1.50]}}`, `{"a":[2,1.50],"b":1}`, ""},
		{`error("boom")`, `{}`, "", "boom"},
		{`"stop" | halt_error`, `{}`, "", "stop"},
		{".a.b", `{"a":"s"}`, "", "expected an object"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			q, err := gojq.Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			code, err := gojq.Compile(q)
			if err != nil {
				t.Fatal(err)
			}
			input, err := exactjson.Parse([]byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			v, ok, err := jqkey.First(code.Run(input))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("First = %v, %v, %v; want an error with %q", v, ok, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := "<none>"
			if ok {
				b, err := jqkey.Bytes(v)
				if err != nil {
					t.Fatal(err)
				}
				got = string(b)
			}
			if got != tt.want {
				t.Fatalf("key %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFirst_returns_a_cancelled_runs_error(t *testing.T) {
	q, _ := gojq.Parse("last(repeat(1))")
	code, _ := gojq.Compile(q)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := jqkey.First(code.RunWithContext(ctx, nil))
	if !errors.Is(err, ctx.Err()) {
		t.Fatalf("error %v, want %v", err, ctx.Err())
	}
}
