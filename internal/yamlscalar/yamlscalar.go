// Package yamlscalar decodes YAML scalars strictly: the one way
// pipelines.yaml, filter config blocks included, reads strings, whole
// numbers, numbers, booleans and durations.
//
//   - A whole number is decimal, with an optional sign, in the range of an
//     int32: 017 is seventeen; 0x10, 0o17, 1e3 and 1.0 are refused. A
//     number may be quoted ("42"); an unquoted one may hold '_' as YAML
//     allows (1_000_000).
//   - A number is a finite decimal number (0.5, 2, 1e-3, 1_000.5); NaN,
//     infinities (.nan, .inf, Inf) and hexadecimal floats are refused.
//   - A boolean is an unquoted YAML 1.2 true or false (True and TRUE too);
//     yes, on and "true" are refused.
//   - A duration is Go's (time.ParseDuration): 500ms, 1h30m; there is no d.
//   - A string is any scalar, as written.
//
// A null value (`~`, `null`, or none) is refused by each of them: callers
// treat it as an absent key first (see [Null]). Errors say what was wanted,
// such as "want a whole number"; the caller adds the value as it shows it
// (it may have come from the environment).
package yamlscalar

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// What the decoders want, as errors and messages say it.
const (
	WantString   = "a string"
	WantInt      = "a whole number"
	WantFloat    = "a number"
	WantBool     = "true or false"
	WantDuration = "a duration like 30s or 5m"
)

// WantError is the error of a value that is not what a decoder wants.
type WantError struct {
	// Want is one of the Want constants.
	Want string
}

func (e *WantError) Error() string { return "want " + e.Want }

// Null reports whether n is a null value, which counts as an absent key.
func Null(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// String decodes a string: any scalar but null.
func String(n *yaml.Node) (string, error) {
	n = resolve(n)
	if !scalar(n) {
		return "", &WantError{WantString}
	}
	return n.Value, nil
}

// Int decodes a whole number.
func Int(n *yaml.Node) (int, error) {
	n = resolve(n)
	if !scalar(n) {
		return 0, &WantError{WantInt}
	}
	i, err := strconv.ParseInt(numberText(n), 10, 32)
	if err != nil {
		return 0, &WantError{WantInt}
	}
	return int(i), nil
}

// decimal is a decimal number: YAML 1.2's float syntax, which includes
// whole numbers.
var decimal = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// Float decodes a finite number.
func Float(n *yaml.Node) (float64, error) {
	n = resolve(n)
	if !scalar(n) {
		return 0, &WantError{WantFloat}
	}
	text := numberText(n)
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || !decimal.MatchString(text) || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, &WantError{WantFloat}
	}
	return f, nil
}

// Bool decodes true or false.
func Bool(n *yaml.Node) (bool, error) {
	n = resolve(n)
	var b bool
	if !scalar(n) || n.Tag != "!!bool" || n.Decode(&b) != nil {
		return false, &WantError{WantBool}
	}
	return b, nil
}

// Duration decodes a Go duration.
func Duration(n *yaml.Node) (time.Duration, error) {
	n = resolve(n)
	if !scalar(n) {
		return 0, &WantError{WantDuration}
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, &WantError{WantDuration}
	}
	return d, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func scalar(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag != "!!null" }

// numberText is the text of a scalar to parse as a number: in one YAML
// reads as a number, '_' may separate digits (1_000_000).
func numberText(n *yaml.Node) string {
	if n.Tag == "!!int" || n.Tag == "!!float" {
		return strings.ReplaceAll(n.Value, "_", "")
	}
	return n.Value
}

// FormatDuration writes d as pipelines.yaml takes it and a user would
// write it: 168h rather than 168h0m0s, 15m, 1h30m, 1.5s
// (time.Duration.String without zero minutes and seconds at its end).
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
