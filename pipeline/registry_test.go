package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
)

// onlyHere is a registry holding one filter that the default registry does
// not know.
func onlyHere(t *testing.T) *filters.Registry {
	t.Helper()
	var r filters.Registry
	r.MustRegister(filters.Spec{
		Name:    "only-here",
		Summary: "A filter of one test's registry.",
		Fields:  []filters.Field{{Name: "n", Type: filters.Int, Default: 1, Description: "a number"}},
		New: func(cfg filters.Config) (filters.Filter, error) {
			return filters.Func(func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
				return []*filters.Message{m}, nil
			}), nil
		},
	})
	return &r
}

func TestParse_validates_stages_against_the_given_registry(t *testing.T) {
	file := func(filter string) []byte {
		return []byte("version: 1\npipelines:\n  - name: p\n    input: p.in\n    stages:\n      - {name: s, filter: " + filter + "}\n")
	}
	reg := onlyHere(t)
	tests := []struct {
		name, filter string
		opts         []pipeline.Option
		want         string // part of the one problem; "" for a valid file
	}{
		{"its own filter", "only-here", []pipeline.Option{pipeline.WithRegistry(reg)}, ""},
		{"not the default registry's", "jq", []pipeline.Option{pipeline.WithRegistry(reg)},
			`6:27: pipeline "p" stage "s": unknown filter "jq" (known filters: only-here)`},
		{"the default registry without the option", "only-here", nil, `unknown filter "only-here" (known filters: exec, jq, log`},
		{"the default registry's filter", "log", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := pipeline.Parse("x.yaml", file(tt.filter), noEnv, tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				stages, _ := f.Plan().Stages()
				if len(stages) != 1 || stages[0].Filter.Name != tt.filter || stages[0].Filter.New == nil {
					t.Fatalf("plan's stage has filter %q, want %q", stages[0].Filter.Name, tt.filter)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse: %v, want a problem with %q", err, tt.want)
			}
		})
	}
}

func TestLoad_takes_options(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	src := "version: 1\npipelines:\n  - name: p\n    input: p.in\n    stages: [{name: s, filter: only-here, config: {n: 2}}]\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := pipeline.Load(path, pipeline.WithRegistry(onlyHere(t)))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Plan().Stages(); st[0].Config.Int("n") != 2 {
		t.Fatalf("config n = %d, want 2", st[0].Config.Int("n"))
	}
}
