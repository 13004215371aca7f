package filters_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/filters"
)

func testSpec(name string) filters.Spec {
	return filters.Spec{
		Name:    name,
		Summary: "A filter for tests.",
		Fields: []filters.Field{
			{Name: "s", Type: filters.String, Required: true, Description: "a string"},
			{Name: "i", Type: filters.Int, Default: 7},
			{Name: "f", Type: filters.Float},
			{Name: "b", Type: filters.Bool},
			{Name: "d", Type: filters.Duration, Default: time.Second},
			{Name: "l", Type: filters.StringList},
			{Name: "m", Type: filters.StringMap},
		},
		New: func(filters.Config) (filters.Filter, error) {
			return filters.Func(func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
				return []*filters.Message{m}, nil
			}), nil
		},
	}
}

func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func TestSpec_Parse_reads_typed_values_and_applies_defaults(t *testing.T) {
	cfg, where, probs := testSpec("t").Parse(node(t, "s: hi\nf: 1.5\nb: true\nl: [a, b]\nm: {x: y}\n"))
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	if cfg.String("s") != "hi" || cfg.Int("i") != 7 || cfg.Float("f") != 1.5 || !cfg.Bool("b") ||
		cfg.Duration("d") != time.Second || strings.Join(cfg.StringList("l"), ",") != "a,b" || cfg.StringMap("m")["x"] != "y" {
		t.Fatalf("unexpected values: %+v", cfg)
	}
	if where["f"].Line != 2 || !cfg.Has("i") {
		t.Fatalf("positions %v", where)
	}
}

func TestSpec_Parse_reports_every_problem_with_its_position(t *testing.T) {
	_, _, probs := testSpec("t").Parse(node(t, "i: many\nb: yes please\nd: 5\nl: x\nm: [1]\nzz: 1\ni: 2\n"))
	var got []string
	for _, p := range probs {
		got = append(got, strings.Join([]string{itoa(p.Line), itoa(p.Column), p.Message}, ":"))
	}
	want := []string{
		`1:4:i: want a whole number, got "many"`,
		`2:4:b: want true or false, got "yes please"`,
		`3:4:d: want a duration like 30s or 5m, got "5"`,
		`4:4:l: want a list of strings, got "x"`,
		`5:4:m: want a mapping of strings, got a list`,
		`6:1:unknown config key "zz" for filter "t" (known: s, i, f, b, d, l, m)`,
		`7:1:config key "i" is set twice`,
		`1:1:filter "t" needs config key "s" (a string)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestSpec_Parse_decodes_scalars_as_pipelines_yaml_does: the config block
// is read by the decoder of the rest of the file (internal/yamlscalar).
func TestSpec_Parse_decodes_scalars_as_pipelines_yaml_does(t *testing.T) {
	tests := []struct {
		src  string
		want string // the value of the field named first in src, or the problem
	}{
		{"f: NaN", `1:4:f: want a number, got "NaN"`},
		{"f: .inf", `1:4:f: want a number, got ".inf"`},
		{"f: 1_000.5", "1000.5"},
		{"i: 0x10", `1:4:i: want a whole number, got "0x10"`},
		{"i: 017", "17"},
		{"i: 1_000", "1000"},
		{"b: yes", `1:4:b: want true or false, got "yes"`},
		{"d: 1h30m", "1h30m0s"},
		// A key with no value counts as absent, as everywhere in the file.
		{"i: ~", "7"},
		{"d:", "1s"},
		{"f: null", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			cfg, _, probs := testSpec("t").Parse(node(t, "s: x\n"+tt.src+"\n"))
			var got string
			if len(probs) > 0 {
				got = fmt.Sprintf("%d:%d:%s", probs[0].Line-1, probs[0].Column, probs[0].Message)
			} else {
				switch name, _, _ := strings.Cut(tt.src, ":"); name {
				case "f":
					got = fmt.Sprint(cfg.Float("f"))
				case "i":
					got = fmt.Sprint(cfg.Int("i"))
				case "b":
					got = fmt.Sprint(cfg.Bool("b"))
				case "d":
					got = cfg.Duration("d").String()
				}
			}
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	if _, _, probs := testSpec("t").Parse(node(t, "s: ~\n")); len(probs) != 1 || !strings.Contains(probs[0].Message, `needs config key "s"`) {
		t.Fatalf("a required key with no value: %+v", probs)
	}
}

func TestRegister_rejects_duplicates_and_bad_specs(t *testing.T) {
	if err := filters.Register(testSpec("test-dup")); err != nil {
		t.Fatal(err)
	}
	if err := filters.Register(testSpec("test-dup")); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate: got %v", err)
	}
	bad := testSpec("Bad Name")
	if err := filters.Register(bad); err == nil {
		t.Fatal("a bad name was accepted")
	}
	wrongDefault := testSpec("test-wrong-default")
	wrongDefault.Fields[1].Default = "seven"
	if err := filters.Register(wrongDefault); err == nil || !strings.Contains(err.Error(), "default") {
		t.Fatalf("wrong default type: got %v", err)
	}
	if _, ok := filters.Lookup("test-dup"); !ok {
		t.Fatal("registered filter not found")
	}
}

func TestPermanent_marks_and_unwraps(t *testing.T) {
	base := errors.New("bad record")
	err := filters.Permanent(base)
	if !filters.IsPermanent(err) || !errors.Is(err, base) || filters.IsPermanent(base) || filters.Permanent(nil) != nil {
		t.Fatal("Permanent does not mark, unwrap or pass nil through")
	}
	if !filters.IsPermanent(errors.Join(errors.New("x"), err)) {
		t.Fatal("a wrapped permanent error is not recognised")
	}
}

func TestSpec_Markdown_documents_fields(t *testing.T) {
	md := testSpec("t").Markdown()
	for _, want := range []string{"## t", "| `s` | string | required | a string |", "| `d` | duration | `1s` |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
