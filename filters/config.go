package filters

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/internal/yamlscalar"
)

// Config is a filter's validated config block, with defaults applied, plus
// where the filter runs.
//
// Its accessors take the name of a field of the filter's spec and return
// the field's value, or the zero value when it is neither set nor has a
// default. A name the spec does not have, or an accessor of another type
// than the field's, is a programming error (a misspelt name would read as
// unset), so they panic, naming the filter, the field and the known fields.
// testkit/filtertest builds every filter from its spec's Example, which
// finds such a mistake in the accessors its constructor calls.
type Config struct {
	// Pipeline and Stage name where the filter runs.
	Pipeline, Stage string
	// Logger is scoped to the pipeline and stage; never nil after Parse.
	Logger *slog.Logger
	// SecretEnv are the environment variables the pipelines file reads
	// its secrets from (pipeline.File.SecretEnv): a filter that runs
	// programs keeps them from the programs.
	SecretEnv []string

	filter string  // the spec's name
	fields []Field // the spec's fields
	values map[string]any
}

// NewConfig returns a Config holding values, for tests and programmatic use.
// Values must already have the Go types of their fields (string, int,
// float64, bool, time.Duration, []string, map[string]string); the fields it
// knows are those of values, so the accessors panic on any other name.
// [Spec.Parse] makes a Config that knows every field of a spec.
func NewConfig(values map[string]any) Config {
	fields := make([]Field, 0, len(values))
	for _, name := range slices.Sorted(maps.Keys(values)) {
		fields = append(fields, Field{Name: name, Type: typeOf(values[name])})
	}
	return Config{Logger: slog.New(slog.DiscardHandler), fields: fields, values: values}
}

// Has reports whether the field is set, explicitly or by a default. It
// panics if the spec has no field called name.
func (c Config) Has(name string) bool {
	c.field(name)
	_, ok := c.values[name]
	return ok
}

// String returns a String field, or "". It panics if the spec has no String
// field called name.
func (c Config) String(name string) string { v, _ := c.value(name, String).(string); return v }

// Int returns an Int field, or 0. It panics if the spec has no Int field
// called name.
func (c Config) Int(name string) int { v, _ := c.value(name, Int).(int); return v }

// Float returns a Float field, or 0. It panics if the spec has no Float
// field called name.
func (c Config) Float(name string) float64 { v, _ := c.value(name, Float).(float64); return v }

// Bool returns a Bool field, or false. It panics if the spec has no Bool
// field called name.
func (c Config) Bool(name string) bool { v, _ := c.value(name, Bool).(bool); return v }

// Duration returns a Duration field, or 0. It panics if the spec has no
// Duration field called name.
func (c Config) Duration(name string) time.Duration {
	v, _ := c.value(name, Duration).(time.Duration)
	return v
}

// StringList returns a StringList field, or nil. It panics if the spec has
// no StringList field called name.
func (c Config) StringList(name string) []string {
	v, _ := c.value(name, StringList).([]string)
	return v
}

// StringMap returns a StringMap field, or nil. It panics if the spec has no
// StringMap field called name.
func (c Config) StringMap(name string) map[string]string {
	v, _ := c.value(name, StringMap).(map[string]string)
	return v
}

// value returns the value of the field called name, which must be of type t.
func (c Config) value(name string, t Type) any {
	if f := c.field(name); f.Type != t {
		panic(fmt.Sprintf("filters: config field %q of filter %q is %s, not %s", name, c.filter, article(f.Type), article(t)))
	}
	return c.values[name]
}

// field returns the field called name, or panics.
func (c Config) field(name string) Field {
	for _, f := range c.fields {
		if f.Name == name {
			return f
		}
	}
	panic(fmt.Sprintf("filters: filter %q has no config field %q%s", c.filter, name, knownFields(c.fields)))
}

// article returns the name of t with "a" or "an".
func article(t Type) string {
	if t == Int {
		return "an int"
	}
	return "a " + t.String()
}

// typeOf returns the field type of a Go value, or 0.
func typeOf(v any) Type {
	for t := String; t <= StringMap; t++ {
		if defaultMatches(t, v) {
			return t
		}
	}
	return 0
}

// Problem is one thing wrong with a config block, at a position in the YAML.
type Problem struct {
	Line, Column int
	Message      string
	// Extra is true of a key the filter does not take, or one set twice
	// (the first value counts): the values of the other keys are sound,
	// so that New can still report their problems.
	Extra bool
}

// Parse checks a config block against the spec: unknown keys, missing
// required fields and values of the wrong type are all reported, with
// positions. Values are read as the rest of pipelines.yaml reads them (see
// internal/yamlscalar); a key with no value (`key:` alone, or `~`) counts
// as absent. node may be nil when the stage has no config block. Parse does
// not call New. Problems about a missing config block have line 0.
// Positions of the fields that were set are returned so that
// errors from New can be placed.
func (s Spec) Parse(node *yaml.Node) (Config, map[string]Problem, []Problem) {
	cfg := Config{Logger: slog.New(slog.DiscardHandler), filter: s.Name, fields: s.Fields, values: map[string]any{}}
	where := map[string]Problem{}
	var problems []Problem
	set, seen := map[string]bool{}, map[string]bool{}
	if node != nil && node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	switch {
	case node == nil || node.Tag == "!!null":
	case node.Kind != yaml.MappingNode:
		problems = append(problems, at(node, "config must be a mapping, got %s", kindName(node)))
	default:
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			f, ok := s.field(k.Value)
			if !ok {
				pr := at(k, "unknown config key %q for filter %q%s", k.Value, s.Name, knownFields(s.Fields))
				pr.Extra = true
				problems = append(problems, pr)
				continue
			}
			if seen[f.Name] {
				pr := at(k, "config key %q is set twice", k.Value)
				pr.Extra = true
				problems = append(problems, pr)
				continue
			}
			seen[f.Name] = true
			if yamlscalar.Null(v) {
				continue // a key with no value counts as absent, as everywhere in pipelines.yaml
			}
			set[f.Name] = true
			where[f.Name] = at(v, "")
			val, err := decodeField(f.Type, v)
			if err != nil {
				problems = append(problems, at(v, "%s: %v", f.Name, err))
				continue
			}
			cfg.values[f.Name] = val
		}
	}
	var pos Problem // line 0: no config block; the caller knows where the stage is
	if node != nil && node.Tag != "!!null" {
		pos = at(node, "")
	}
	for _, f := range s.Fields {
		switch {
		case set[f.Name]:
		case f.Required:
			problems = append(problems, Problem{Line: pos.Line, Column: pos.Column,
				Message: fmt.Sprintf("filter %q needs config key %q (%s)", s.Name, f.Name, f.Description)})
		case f.Default != nil:
			cfg.values[f.Name] = f.Default
		}
	}
	return cfg, where, problems
}

// knownFields lists the names of fields for a message.
func knownFields(fields []Field) string {
	if len(fields) == 0 {
		return " (it takes no config)"
	}
	out := " (known: "
	for i, f := range fields {
		if i > 0 {
			out += ", "
		}
		out += f.Name
	}
	return out + ")"
}

func at(n *yaml.Node, format string, args ...any) Problem {
	return Problem{Line: n.Line, Column: n.Column, Message: fmt.Sprintf(format, args...)}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("%q", n.Value)
}

// decodeField decodes a value of type t. Scalars are read as the rest of
// pipelines.yaml reads them (internal/yamlscalar).
func decodeField(t Type, n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var (
		v   any
		err error
	)
	switch t {
	case String:
		v, err = yamlscalar.String(n)
	case Int:
		v, err = yamlscalar.Int(n)
	case Float:
		v, err = yamlscalar.Float(n)
	case Bool:
		v, err = yamlscalar.Bool(n)
	case Duration:
		v, err = yamlscalar.Duration(n)
	}
	if err != nil {
		return nil, fmt.Errorf("%w, got %s", err, kindName(n))
	}
	switch t {
	case String, Int, Float, Bool, Duration:
		return v, nil
	case StringList:
		if n.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("want a list of strings, got %s", kindName(n))
		}
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
				return nil, fmt.Errorf("want a list of strings, got an item %s", kindName(c))
			}
			out = append(out, c.Value)
		}
		return out, nil
	case StringMap:
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("want a mapping of strings, got %s", kindName(n))
		}
		out := make(map[string]string, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				return nil, fmt.Errorf("want a mapping of strings, got %s for %q", kindName(v), n.Content[i].Value)
			}
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}
