package std_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/millrace/millrace/filters/std"
)

// decodeStd decodes data the way std.ParseJSON must: as json.Decoder with
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
}

func TestParseJSON_matches_encoding_json(t *testing.T) {
	for _, s := range jsonSamples {
		want, _ := decodeStd([]byte(s))
		got, err := std.ParseJSON([]byte(s))
		if err != nil {
			t.Errorf("ParseJSON(%q): %v", s, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseJSON(%q) = %#v, want %#v", s, got, want)
		}
	}
}

func TestParseJSON_rejects_invalid_JSON(t *testing.T) {
	for _, s := range []string{``, ` `, `{`, `{"a":1}x`, `1 2`, `[1,]`, `nul`, `'a'`, `{"a":1}{"b":2}`} {
		if v, err := std.ParseJSON([]byte(s)); err == nil {
			t.Errorf("ParseJSON(%q) = %#v, want an error", s, v)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, ok := decodeStd(data)
		got, err := std.ParseJSON(data)
		if ok != (err == nil) {
			t.Fatalf("ParseJSON(%q): error %v, encoding/json ok %v", data, err, ok)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseJSON(%q) = %#v, want %#v", data, got, want)
		}
	})
}
