package exactjson_test

import (
	"bytes"
	"math"
	"math/big"
	"testing"

	"github.com/itchyny/gojq"

	"github.com/millrace/millrace/internal/exactjson"
)

// encodeSamples are values as gojq emits them, for what parsing JSON
// cannot give: floats, big ints, NaN, infinities, invalid strings.
var encodeSamples = []any{
	nil, true, false, 0, -7, math.MaxInt, 1.5, 1e-7, 1e21, 123456789.125, -0.0, math.NaN(), math.Inf(1), math.Inf(-1), 1e-9,
	new(big.Int).Lsh(big.NewInt(1), 100), "", "a\"b\\c\b\f\n\r\t\x00\x1f\x7f<>&\u2028é😀", "bad \xff\xfe utf8",
	[]any{}, map[string]any{}, []any{1, "x", []any{map[string]any{"b": 1, "a": []any{map[string]any{"z": nil, "y": 2}}}}},
	map[string]any{"k\xff": "v", "b": map[string]any{"d": 1, "c": map[string]any{"f": 1, "e": 2}}, "a": 3},
}

func TestEncoder_writes_what_gojq_Marshal_writes(t *testing.T) {
	e := exactjson.GetEncoder()
	defer e.Put()
	for _, v := range encodeSamples {
		want, _ := gojq.Marshal(v)
		got, replaced := e.Encode(v)
		if !bytes.Equal(got, want) {
			t.Errorf("Encode(%#v) = %s, want %s", v, got, want)
		}
		if r := bytes.Contains(want, []byte(`\ufffd`)); replaced != r {
			t.Errorf("Encode(%#v) replaced = %v, want %v", v, replaced, r)
		}
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range jsonSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := exactjson.Parse(data)
		if err != nil {
			return
		}
		// Run it through jq, so that values come as gojq makes them too.
		for _, in := range []any{v, jqIdentity(v)} {
			want, _ := gojq.Marshal(in)
			e := exactjson.GetEncoder()
			got, _ := e.Encode(in)
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode(%q) = %s, want %s", data, got, want)
			}
			e.Put()
		}
	})
}

// normalise turns v's numbers into those jq arithmetic makes (floats, big
// ints), compiled once: FuzzEncode runs it for every input.
var normalise = func() *gojq.Code {
	q, err := gojq.Parse(`walk(if type == "number" then . * 1.5 / 1.5 else . end)`)
	if err != nil {
		panic(err)
	}
	c, err := gojq.Compile(q)
	if err != nil {
		panic(err)
	}
	return c
}()

// jqIdentity runs v through normalise; v itself if that fails.
func jqIdentity(v any) any {
	out, _ := normalise.Run(v).Next()
	if _, ok := out.(error); ok {
		return v
	}
	return out
}

func BenchmarkEncode(b *testing.B) {
	v, err := exactjson.Parse(orderPayload)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e := exactjson.GetEncoder()
		text, _ := e.Encode(v)
		_ = append([]byte(nil), text...) // what a filter keeps
		e.Put()
	}
}

func BenchmarkEncode_gojq_Marshal(b *testing.B) {
	v, err := exactjson.Parse(orderPayload)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = gojq.Marshal(v)
	}
}
