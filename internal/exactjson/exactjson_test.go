package exactjson_test

import (
	"strings"
	"testing"

	"github.com/millrace/millrace/internal/exactjson"
)

func TestCheckText_finds_bytes_that_do_not_decode_exactly(t *testing.T) {
	tests := []struct {
		text, err string // err "" for none
	}{
		{`{"a":"plain","b":[1,2.5,null]}`, ""},
		{`"é😀\ufffd"`, ""},
		{`"\ud83d\ude00 \uD83D\uDE00"`, ""},
		{`"\\ud800"`, ""}, // an escaped backslash, then text
		{`"\u0000\n\"\u00e9"`, ""},
		{"\"x\xff\"", "invalid UTF-8 at byte 2"},
		{"\"\xed\xa0\x80\"", "invalid UTF-8 at byte 1"}, // a surrogate in UTF-8 form
		{"\"\xc3\"", "invalid UTF-8 at byte 1"},         // truncated
		{`"x\ud800"`, `lone surrogate \ud800 at byte 2 has no UTF-8 form`},
		{`"\udc00"`, `lone surrogate \udc00 at byte 1`},
		{`"\ud800\ud800"`, `lone surrogate \ud800 at byte 1`},
		{`"\ud800\u0041"`, `lone surrogate \ud800 at byte 1`},
		{`"\ud800x"`, `lone surrogate \ud800 at byte 1`},
		{`"\ud83d\ude00\udc00"`, `lone surrogate \udc00 at byte 13`},
		{`"\\\ud800"`, `lone surrogate \ud800 at byte 3`},
	}
	for _, tt := range tests {
		err := exactjson.CheckText([]byte(tt.text))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("CheckText(%q) = %v, want nil", tt.text, err)
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("CheckText(%q) = %v, want %q", tt.text, err, tt.err)
		}
	}
}

func TestCheckValue_names_the_first_invalid_string(t *testing.T) {
	tests := []struct {
		v   any
		err string
	}{
		{map[string]any{"a": []any{1, "é", nil, true}}, ""},
		{"x\xff", "string at . is not valid UTF-8"},
		{[]any{"ok", "x\xfe"}, "string at [1] is not valid UTF-8"},
		{map[string]any{"b": "x\xff", "a": map[string]any{"c": []any{"\xfe"}}}, "string at .a.c[0] is not valid UTF-8"},
		{map[string]any{"k\xff": 1}, `string at ["k\xff"] is not valid UTF-8`},
		{map[string]any{"a b": "\xff"}, `string at ["a b"] is not valid UTF-8`},
	}
	for _, tt := range tests {
		err := exactjson.CheckValue(tt.v)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || err.Error() != tt.err) {
			t.Errorf("CheckValue(%#v) = %v, want %q", tt.v, err, tt.err)
		}
	}
}
