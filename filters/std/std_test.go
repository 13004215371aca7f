package std_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/filters"
	_ "github.com/millrace/millrace/filters/std"
)

// stdFilters are the filters the package must register.
var stdFilters = []string{"exec", "jq", "log"}

// parse parses src as the config block of the filter named name and fails
// the test on any problem.
func parse(t testing.TB, name, src string) (filters.Spec, filters.Config) {
	t.Helper()
	spec, ok := filters.Lookup(name)
	if !ok {
		t.Fatalf("filter %q is not registered", name)
	}
	cfg, _, problems := spec.Parse(configNode(t, src))
	if len(problems) > 0 {
		t.Fatalf("parse %s config %q: %+v", name, src, problems)
	}
	return spec, cfg
}

// configNode returns the YAML node of a config block.
func configNode(t testing.TB, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml %q: %v", src, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("yaml %q is not a mapping", src)
	}
	return doc.Content[0]
}

// build parses src and builds the filter named name, failing the test on
// any error.
func build(t testing.TB, name, src string) filters.Filter {
	t.Helper()
	spec, cfg := parse(t, name, src)
	f, err := spec.New(cfg)
	if err != nil {
		t.Fatalf("new %s %q: %v", name, src, err)
	}
	return f
}

// buildErr parses src and returns the error of building the filter named
// name.
func buildErr(t testing.TB, name, src string) error {
	t.Helper()
	spec, cfg := parse(t, name, src)
	f, err := spec.New(cfg)
	if err == nil {
		t.Fatalf("new %s %q: got %T, want an error", name, src, f)
	}
	return err
}

// payloads returns the payloads of msgs as strings.
func payloads(msgs []*filters.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}

func TestStd_registers_its_filters(t *testing.T) {
	for _, name := range stdFilters {
		if _, ok := filters.Lookup(name); !ok {
			t.Errorf("filter %q is not registered", name)
		}
	}
}

func TestStd_examples_are_documented_and_valid(t *testing.T) {
	specs := filters.All()
	if len(specs) < len(stdFilters) {
		t.Fatalf("%d filters registered, want at least %d", len(specs), len(stdFilters))
	}
	for _, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			if spec.Summary == "" || spec.Description == "" || spec.Example == "" {
				t.Fatalf("spec lacks a summary, description or example")
			}
			if !strings.HasSuffix(spec.Summary, ".") || strings.Count(spec.Summary, ". ") > 0 {
				t.Errorf("summary %q is not one sentence", spec.Summary)
			}
			for _, f := range spec.Fields {
				if f.Description == "" {
					t.Errorf("field %q has no description", f.Name)
				}
			}
			md := spec.Markdown()
			if !strings.Contains(md, strings.TrimRight(spec.Example, "\n")) {
				t.Errorf("markdown lacks the example:\n%s", md)
			}
			for _, f := range spec.Fields {
				if !strings.Contains(md, "`"+f.Name+"`") {
					t.Errorf("markdown lacks field %q:\n%s", f.Name, md)
				}
			}
			cfg, _, problems := spec.Parse(configNode(t, spec.Example))
			if len(problems) > 0 {
				t.Fatalf("example does not parse: %+v", problems)
			}
			if _, err := spec.New(cfg); err != nil {
				t.Fatalf("example does not build: %v", err)
			}
		})
	}
}

// fieldErrorCase is a config that building a filter must reject with a
// FieldError naming field, its text containing want.
type fieldErrorCase struct {
	name, config, field, want string
}

func checkFieldErrors(t *testing.T, filter string, cases []fieldErrorCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := buildErr(t, filter, tt.config)
			if field, ok := filters.ErrorField(err); !ok || field != tt.field {
				t.Errorf("error %q names field %q (%v), want %q", err, field, ok, tt.field)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
