package yamlscalar_test

import (
	"fmt"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/internal/yamlscalar"
)

// value returns the node of v in the document `v: <src>`.
func value(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("v: "+src+"\n"), &doc); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return doc.Content[0].Content[1]
}

// TestDecode_is_strict pins what pipelines.yaml and filter configs accept.
// Where the two decoders disagreed before they were one, the comment says
// which of them took the value and how.
func TestDecode_is_strict(t *testing.T) {
	type decode func(*yaml.Node) (any, error)
	var (
		str decode = func(n *yaml.Node) (any, error) { return yamlscalar.String(n) }
		num decode = func(n *yaml.Node) (any, error) { return yamlscalar.Int(n) }
		flt decode = func(n *yaml.Node) (any, error) { return yamlscalar.Float(n) }
		bln decode = func(n *yaml.Node) (any, error) { return yamlscalar.Bool(n) }
		dur decode = func(n *yaml.Node) (any, error) { return yamlscalar.Duration(n) }
		bad        = "bad"
	)
	tests := []struct {
		kind   string
		decode decode
		src    string
		want   any // or bad
	}{
		{"string", str, "abc", "abc"},
		{"string", str, "42", "42"},
		{"string", str, "true", "true"},
		{"string", str, `"quoted"`, "quoted"},
		{"string", str, "''", ""},
		{"string", str, "[a]", bad},
		{"string", str, "{a: b}", bad},
		{"string", str, "~", bad},

		{"int", num, "42", 42},
		{"int", num, "-7", -7},
		{"int", num, "+7", 7},
		{"int", num, "1_000_000", 1000000},
		{"int", num, `"42"`, 42},
		{"int", num, "'1_000'", bad}, // a quoted string is no YAML number: filters took it
		{"int", num, "017", 17},      // decimal: filters read octal 15
		{"int", num, "0x10", bad},    // filters took 16
		{"int", num, "0o17", bad},    // filters took 15
		{"int", num, "0b11", bad},    // filters took 3
		{"int", num, "2147483647", 2147483647},
		{"int", num, "2147483648", bad},
		{"int", num, "-2147483649", bad},
		{"int", num, "1e3", bad},
		{"int", num, "1.0", bad},
		{"int", num, "true", bad},
		{"int", num, "[1]", bad},
		{"int", num, "~", bad},

		{"float", flt, "1.5", 1.5},
		{"float", flt, "2", 2.0},
		{"float", flt, "-0.5", -0.5},
		{"float", flt, "1e-3", 0.001},
		{"float", flt, ".5", 0.5},
		{"float", flt, "1_000.5", 1000.5},
		{"float", flt, `"0.25"`, 0.25},
		{"float", flt, "NaN", bad},   // filters took NaN
		{"float", flt, ".nan", bad},  // YAML's NaN
		{"float", flt, "Inf", bad},   // filters took +Inf
		{"float", flt, "-.inf", bad}, // YAML's -Inf
		{"float", flt, "1e400", bad},
		{"float", flt, "0x1p-2", bad}, // both took 0.25
		{"float", flt, "lots", bad},
		{"float", flt, "{}", bad},

		{"bool", bln, "true", true},
		{"bool", bln, "false", false},
		{"bool", bln, "True", true},
		{"bool", bln, "FALSE", false},
		{"bool", bln, "yes", bad},
		{"bool", bln, "on", bad},
		{"bool", bln, `"true"`, bad},
		{"bool", bln, "1", bad},

		{"duration", dur, "500ms", 500 * time.Millisecond},
		{"duration", dur, "1h30m", 90 * time.Minute},
		{"duration", dur, "1.5s", 1500 * time.Millisecond},
		{"duration", dur, `"30s"`, 30 * time.Second},
		{"duration", dur, "-1s", -time.Second},
		{"duration", dur, "0", time.Duration(0)},
		{"duration", dur, "5", bad},
		{"duration", dur, "8d", bad},
		{"duration", dur, "1_000ms", bad},
		{"duration", dur, "[1s]", bad},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.src, func(t *testing.T) {
			got, err := tt.decode(value(t, tt.src))
			switch {
			case tt.want == bad && err == nil:
				t.Fatalf("got %v (%T), want an error", got, got)
			case tt.want != bad && err != nil:
				t.Fatalf("error %v, want %v", err, tt.want)
			case tt.want != bad && fmt.Sprint(got) != fmt.Sprint(tt.want):
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecode_errors_say_what_is_wanted(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{func() error { _, err := yamlscalar.String(value(t, "[a]")); return err }(), "want a string"},
		{func() error { _, err := yamlscalar.Int(value(t, "x")); return err }(), "want a whole number"},
		{func() error { _, err := yamlscalar.Float(value(t, "NaN")); return err }(), "want a number"},
		{func() error { _, err := yamlscalar.Bool(value(t, "yes")); return err }(), "want true or false"},
		{func() error { _, err := yamlscalar.Duration(value(t, "5")); return err }(), "want a duration like 30s or 5m"},
	}
	for _, tt := range tests {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("error %v, want %q", tt.err, tt.want)
		}
	}
}

func TestNull_is_an_absent_value(t *testing.T) {
	for src, want := range map[string]bool{"~": true, "null": true, "": true, "'~'": false, `""`: false, "0": false, "[]": false} {
		if got := yamlscalar.Null(value(t, src)); got != want {
			t.Errorf("Null(%q) = %v, want %v", src, got, want)
		}
	}
}
