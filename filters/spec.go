package filters

import (
	"errors"
	"fmt"
	"time"

	"github.com/millrace/millrace/internal/namepattern"
)

// Type is the type of a config field.
type Type int

// Config field types. Scalars are read as everywhere in pipelines.yaml:
// whole numbers in decimal (1_000 allowed, 0x10 not), numbers finite, true
// and false unquoted.
const (
	String     Type = iota + 1 // a YAML string
	Int                        // a whole number in the range of an int32
	Float                      // a finite number
	Bool                       // true or false
	Duration                   // a Go duration string such as "1.5s" or "2m"
	StringList                 // a list of strings
	StringMap                  // a mapping of strings to strings
)

// String returns the name of the type as the docs show it.
func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Int:
		return "int"
	case Float:
		return "float"
	case Bool:
		return "bool"
	case Duration:
		return "duration"
	case StringList:
		return "list of strings"
	case StringMap:
		return "map of strings"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Field describes one key of a filter's config block.
type Field struct {
	Name        string
	Type        Type
	Description string
	// Required fields must be set; Default is ignored for them.
	Required bool
	// Default is used when the field is absent. Its Go type must match Type:
	// string, int, float64, bool, time.Duration, []string, map[string]string.
	Default any
	// Example is a YAML value shown in the docs.
	Example string
}

// Spec registers a filter: its name, its documentation, its config fields
// and its constructor. It is the single source of truth for parsing,
// validating and documenting a filter's config.
type Spec struct {
	// Name is what pipelines.yaml names in `filter:`; it follows the
	// pattern of pipeline and stage names (pipeline.NamePattern).
	Name string
	// Summary is one sentence for `millrace filters list`.
	Summary string
	// Description is the longer text for `millrace filters docs`.
	Description string
	// Fields are the keys the config block may hold; any other key is an error.
	Fields []Field
	// Example is a YAML example of the config block.
	Example string
	// New builds the filter from a validated config. It is also called by
	// `millrace validate`, so it must not start work or touch the network;
	// report semantic problems of one field with [FieldError].
	New func(Config) (Filter, error)
	// DeepStack says a call of the filter needs more than about 4 KiB of
	// goroutine stack (parsing JSON, running a program): the stage then
	// grows each record's goroutine to 8 KiB at once, while its stack is
	// shallow, instead of the runtime copying it deep in the call. For the
	// jq filter that copy was 20% of a stage's CPU per record (bench: 37 →
	// 30 µs/record, 51k → 64k records/s). It costs 4 KiB more per record
	// in flight.
	DeepStack bool
}

// Validate checks that the spec itself is well formed.
func (s Spec) Validate() error {
	if !namepattern.Regexp.MatchString(s.Name) {
		return fmt.Errorf("filter name %q must match %s", s.Name, namepattern.Regexp)
	}
	if s.New == nil {
		return fmt.Errorf("filter %q: New is nil", s.Name)
	}
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if f.Name == "" || seen[f.Name] {
			return fmt.Errorf("filter %q: field name %q is empty or repeated", s.Name, f.Name)
		}
		seen[f.Name] = true
		if f.Type < String || f.Type > StringMap {
			return fmt.Errorf("filter %q: field %q has no valid type", s.Name, f.Name)
		}
		if f.Default != nil && !defaultMatches(f.Type, f.Default) {
			return fmt.Errorf("filter %q: default of field %q is %T, want %s", s.Name, f.Name, f.Default, f.Type)
		}
	}
	return nil
}

func defaultMatches(t Type, v any) bool {
	switch v.(type) {
	case string:
		return t == String
	case int:
		return t == Int
	case float64:
		return t == Float
	case bool:
		return t == Bool
	case time.Duration:
		return t == Duration
	case []string:
		return t == StringList
	case map[string]string:
		return t == StringMap
	}
	return false
}

func (s Spec) field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// fieldError is a problem with one config field.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// FieldError reports that the config field named field is wrong, so that
// validation can point at its line.
func FieldError(field string, err error) error {
	return &fieldError{field: field, err: err}
}

// ErrorField returns the field a [FieldError] names, if err is one.
func ErrorField(err error) (string, bool) {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.field, true
	}
	return "", false
}
