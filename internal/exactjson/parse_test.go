package exactjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/millrace/millrace/internal/exactjson"
)

// decodeStd decodes data the way exactjson.Parse must: as json.Decoder with
// UseNumber does, but with integers that fit an int as ints.
func decodeStd(data []byte) (any, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return intsOf(v), true
}

// intsOf replaces the integers in v that fit an int by ints.
func intsOf(v any) any {
	switch v := v.(type) {
	case json.Number:
		if s := v.String(); !strings.ContainsAny(s, ".eE") && s != "-0" {
			if i, err := strconv.ParseInt(s, 10, 0); err == nil {
				return int(i)
			}
		}
	case []any:
		for i, e := range v {
			v[i] = intsOf(e)
		}
	case map[string]any:
		for k, e := range v {
			v[k] = intsOf(e)
		}
	}
	return v
}

var jsonSamples = []string{
	`null`, `true`, `false`, `0`, `-0`, `-1.5e+10`, `1E2`, `12345678901234567890123`, `""`,
	`9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`,
	` {"a" : [1, 2.50, {"b": null}], "c": "d" } `,
	`{"a":1,"a":2}`,
	`[]`, `{}`, `[[],[{}]]`,
	`"tab\tquote\"slash\/uni\u00e9\ud83d\ude00"`,
	`"héllo wörld"`,
	"\"bad \xff utf8\"",
	"{\"k\xfe\":\"v\"}",
	`"\ud800"`,
	"\t\r\n[1 ,\n2 ]\n",
	`"\udc00\ud800x"`, `"\ud83d\u0041"`, `"\ud83d\ude00\ud83d"`, "\"ok\" ", `[1e5,-0.5E-3,0e0]`,
}

// invalidSamples are fuzz seeds that are not JSON.
var invalidSamples = []string{
	"01", "-", "1.", "1e", "1e+", ".5", "+1", "\"\x01\"", `"\x"`, `"\u12"`, "\xef\xbb\xbf1", "tru", "nulll", `{"a" 1}`, `{1:2}`, `[1 2]`,
}

func TestParse_matches_encoding_json(t *testing.T) {
	for _, s := range jsonSamples {
		want, _ := decodeStd([]byte(s))
		got, err := exactjson.Parse([]byte(s))
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %#v, want %#v", s, got, want)
		}
	}
}

// Nesting is refused past json.Valid's depth, 10000.
func TestParse_nests_as_deep_as_encoding_json(t *testing.T) {
	for _, n := range []int{10000, 10001} {
		for _, open := range []string{"[", `{"a":`} {
			close := map[string]string{"[": "]", `{"a":`: "}"}[open]
			data := []byte(strings.Repeat(open, n) + "1" + strings.Repeat(close, n))
			_, err := exactjson.Parse(data)
			if want := json.Valid(data); (err == nil) != want {
				t.Errorf("%d times %s: Parse error %v, json.Valid %v", n, open, err, want)
			}
		}
	}
}

func TestParseText_says_where_the_text_is_not_exact(t *testing.T) {
	tests := []struct{ text, want string }{
		{"{\"a\":\"x\xffy\",\"b\":\"\\ud800\"}", "invalid UTF-8 at byte 7"},
		{`{"a":"\ud83d\ude00","b":"\udc00"}`, `lone surrogate \udc00 at byte 25 has no UTF-8 form`},
		{`[1,]`, "invalid character ']' looking for beginning of value (at byte 4)"},
	}
	for _, tt := range tests {
		_, err := exactjson.ParseText([]byte(tt.text))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseText(%q): %v, want %q", tt.text, err, tt.want)
		}
	}
	if v, err := exactjson.ParseText([]byte(`{"a":"é\u00e9\ud83d\ude00"}`)); err != nil || v.(map[string]any)["a"] != "éé😀" {
		t.Errorf("ParseText of exact text = %#v, %v", v, err)
	}
}

func TestParse_rejects_invalid_JSON(t *testing.T) {
	for _, s := range []string{``, ` `, `{`, `{"a":1}x`, `1 2`, `[1,]`, `nul`, `'a'`, `{"a":1}{"b":2}`} {
		if v, err := exactjson.Parse([]byte(s)); err == nil {
			t.Errorf("Parse(%q) = %#v, want an error", s, v)
		}
	}
}

func TestParse_says_why_text_is_not_JSON(t *testing.T) {
	tests := []struct{ text, want string }{
		{"", "empty"},
		{" \n\t", "empty"},
		{`{"a":1} {"a":2}`, "more than one JSON value (the second at byte 8)"},
		{"1 2", "more than one JSON value (the second at byte 2)"},
		{`{"a":1}x`, "invalid character 'x' after top-level value (at byte 8)"},
		{`{"a":`, "unexpected end of JSON input (at byte 5)"},
		{`[1,]`, "invalid character ']' looking for beginning of value (at byte 4)"},
	}
	for _, tt := range tests {
		if _, err := exactjson.Parse([]byte(tt.text)); err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q): %v, want %q", tt.text, err, tt.want)
		}
	}
}

// orderPayload is a 262-byte order, as the benchmarks of the filters use.
var orderPayload = []byte(`{"id":"ord-20240611-000042","customer_id":"cust-7f3a9c","qty":3,"price":19.99,` +
	`"currency":"EUR","status":"paid","created_at":"2024-06-11T09:42:17Z","tags":["priority","gift"],` +
	`"shipping":{"method":"express","country":"DE","zip":"10115"},"note":"leave at the door"}`)

func BenchmarkParse(b *testing.B) {
	b.SetBytes(int64(len(orderPayload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := exactjson.Parse(orderPayload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse_encoding_json is what Parse replaces: json.Decoder with
// UseNumber, checking that one value fills the text.
func BenchmarkParse_encoding_json(b *testing.B) {
	b.SetBytes(int64(len(orderPayload)))
	b.ReportAllocs()
	for b.Loop() {
		dec := json.NewDecoder(bytes.NewReader(orderPayload))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			b.Fatal(err)
		}
		if _, err := dec.Token(); err != io.EOF {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range append(jsonSamples, invalidSamples...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, ok := decodeStd(data)
		got, err := exactjson.Parse(data)
		if ok != (err == nil) {
			t.Fatalf("Parse(%q): error %v, encoding/json ok %v", data, err, ok)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse(%q) = %#v, want %#v", data, got, want)
		}
		// ParseText is Parse, then CheckText.
		v, textErr := exactjson.ParseText(data)
		switch check := exactjson.CheckText(data); {
		case err != nil:
			if textErr == nil || textErr.Error() != err.Error() {
				t.Fatalf("ParseText(%q): %v, want Parse's %v", data, textErr, err)
			}
		case check != nil:
			var te *exactjson.TextError
			if !errors.As(textErr, &te) || te.Error() != check.Error() {
				t.Fatalf("ParseText(%q): %v, want CheckText's %v", data, textErr, check)
			}
		case textErr != nil || !reflect.DeepEqual(v, want):
			t.Fatalf("ParseText(%q) = %#v, %v; want %#v", data, v, textErr, want)
		}
	})
}
