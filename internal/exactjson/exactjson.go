package exactjson

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// CheckValue returns an error naming the first string or object key in v
// (object keys in order) that is not valid UTF-8, as a path from v such as
// .a[2]. v holds the values gojq uses: nil, bool, numbers, string, []any
// and map[string]any.
func CheckValue(v any) error {
	if valid(v) {
		return nil
	}
	path, _ := invalidAt(v, nil)
	return fmt.Errorf("string at %s is not valid UTF-8", pathString(path))
}

// valid reports whether every string and object key in v is valid UTF-8.
func valid(v any) bool {
	switch v := v.(type) {
	case string:
		return utf8.ValidString(v)
	case []any:
		for _, e := range v {
			if !valid(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range v {
			if !utf8.ValidString(k) || !valid(e) {
				return false
			}
		}
	}
	return true
}

// invalidAt returns the path to the first invalid string in v, taking
// object keys in order so that the same value always gives the same path
// (quarantine ls groups records by their error text).
func invalidAt(v any, path []any) ([]any, bool) {
	switch v := v.(type) {
	case string:
		return path, !utf8.ValidString(v)
	case []any:
		for i, e := range v {
			if p, ok := invalidAt(e, append(path, i)); ok {
				return p, true
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if !utf8.ValidString(k) {
				return append(path, k), true
			}
			if p, ok := invalidAt(v[k], append(path, k)); ok {
				return p, true
			}
		}
	}
	return nil, false
}

// pathString writes a path as jq would: .a[2], with names that are not
// identifiers quoted (and invalid bytes escaped).
func pathString(path []any) string {
	if len(path) == 0 {
		return "."
	}
	var s string
	for _, p := range path {
		switch p := p.(type) {
		case int:
			s += "[" + strconv.Itoa(p) + "]"
		case string:
			if isIdent(p) {
				s += "." + p
			} else {
				s += "[" + strconv.Quote(p) + "]"
			}
		}
	}
	return s
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && (i == 0 || !('0' <= c && c <= '9')) {
			return false
		}
	}
	return true
}
