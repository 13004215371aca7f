package filters_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
)

// panicText runs f and returns what it panicked with, or "" if it did not.
func panicText(f func()) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprint(v)
		}
	}()
	f()
	return ""
}

func TestConfig_accessors_panic_on_a_field_the_spec_does_not_have(t *testing.T) {
	cfg, _, probs := testSpec("t").Parse(node(t, "s: hi\n"))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	known := "(known: s, i, f, b, d, l, m)"
	tests := []struct {
		name string
		call func()
		want string // the panic's text; "" for none
	}{
		{"String misspelt", func() { cfg.String("ss") }, `filters: filter "t" has no config field "ss" ` + known},
		{"Int misspelt", func() { cfg.Int("I") }, `no config field "I"`},
		{"Float misspelt", func() { cfg.Float("float") }, `no config field "float"`},
		{"Bool misspelt", func() { cfg.Bool("bb") }, `no config field "bb"`},
		{"Duration misspelt", func() { cfg.Duration("dur") }, `no config field "dur"`},
		{"StringList misspelt", func() { cfg.StringList("list") }, `no config field "list"`},
		{"StringMap misspelt", func() { cfg.StringMap("map") }, `no config field "map"`},
		{"Has misspelt", func() { cfg.Has("x") }, `filters: filter "t" has no config field "x" ` + known},
		{"String of an int field", func() { cfg.String("i") }, `filters: config field "i" of filter "t" is an int, not a string`},
		{"Int of a string field", func() { cfg.Int("s") }, `config field "s" of filter "t" is a string, not an int`},
		{"Duration of a float field", func() { cfg.Duration("f") }, `is a float, not a duration`},
		{"a field that is set", func() { cfg.String("s") }, ""},
		{"a field with a default", func() { cfg.Int("i") }, ""},
		{"a field that is not set", func() { cfg.Float("f") }, ""},
		{"Has of a field that is not set", func() { cfg.Has("b") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := panicText(tt.call); got != tt.want && (tt.want == "" || !strings.Contains(got, tt.want)) {
				t.Fatalf("panic %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfig_values_of_fields_that_are_not_set_are_zero(t *testing.T) {
	cfg, _, _ := testSpec("t").Parse(node(t, "s: hi\n"))
	if cfg.Has("f") || cfg.Float("f") != 0 || cfg.Bool("b") || cfg.StringList("l") != nil || cfg.StringMap("m") != nil {
		t.Fatalf("unset fields are not zero: %+v", cfg)
	}
	if !cfg.Has("i") || cfg.Int("i") != 7 || cfg.Duration("d") != time.Second {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

func TestNewConfig_knows_the_fields_it_is_given(t *testing.T) {
	cfg := filters.NewConfig(map[string]any{"program": ".", "n": 3, "wait": time.Second})
	if cfg.String("program") != "." || cfg.Int("n") != 3 || cfg.Duration("wait") != time.Second || cfg.Logger == nil {
		t.Fatalf("NewConfig values: %+v", cfg)
	}
	if got := panicText(func() { cfg.String("progam") }); !strings.Contains(got, `has no config field "progam" (known: n, program, wait)`) {
		t.Fatalf("panic %q", got)
	}
	if got := panicText(func() { cfg.Int("program") }); !strings.Contains(got, `is a string, not an int`) {
		t.Fatalf("panic %q", got)
	}
}

func TestConfig_zero_value_has_no_fields(t *testing.T) {
	var cfg filters.Config
	if got := panicText(func() { cfg.String("program") }); !strings.Contains(got, `has no config field "program" (it takes no config)`) {
		t.Fatalf("panic %q", got)
	}
}
