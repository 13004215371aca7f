// Package jqkey is what a key computed with jq means: the one meaning
// shared by dedup keys (`dedup: {key: .order_id}` in pipelines.yaml),
// `millrace produce --key-jq` and the `key:` program of the jq filter.
//
// The expression's first result is the key ([First]):
//
//   - no result, null, or jq's halt: no key;
//   - a string: its bytes, exactly, also where they are not UTF-8 (from
//     $key, $headers or @base64d);
//   - a number: its JSON text, as written in the input unless the
//     expression computed it (1.50 stays 1.50, 12345678901234567890 stays
//     exact; a computed NaN is null, as jq prints it);
//   - true or false: that text;
//   - an object or array: its compact JSON text, object keys sorted,
//     strings escaped as jq prints them (<, > and & as they are).
//
// A result other than a string that holds a string or object key that is
// not UTF-8 has no exact JSON text ([Bytes] fails): its text would turn the
// bytes into U+FFFD, and two different records would share a key. Input
// text is read with internal/exactjson, which refuses what it cannot
// decode exactly. What an empty string means is the caller's: dedup reads
// it as no key, a record key may be empty.
package jqkey

import (
	"errors"
	"fmt"

	"github.com/itchyny/gojq"

	"github.com/millrace/millrace/internal/exactjson"
)

// First returns the first result of a jq run. ok is false when there is
// none, it is null or the expression halted; err is an error the
// expression raised (error, halt_error, a runtime error, or the run's
// context ending).
func First(iter gojq.Iter) (v any, ok bool, err error) {
	v, ok = iter.Next()
	if !ok || v == nil {
		return nil, false, nil
	}
	if err, isErr := v.(error); isErr {
		var h *gojq.HaltError
		if errors.As(err, &h) && h.Value() == nil {
			return nil, false, nil // halt: no result
		}
		return nil, false, err
	}
	return v, true, nil
}

// Bytes returns the key a non-null result v stands for; see the package
// documentation.
func Bytes(v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		return []byte(s), nil
	}
	if err := exactjson.CheckValue(v); err != nil {
		return nil, fmt.Errorf("result has no exact JSON text: %w", err)
	}
	return gojq.Marshal(v)
}
