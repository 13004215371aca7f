package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/itchyny/gojq"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/exactjson"
	"github.com/millrace/millrace/internal/jqkey"
)

// KeyFunc computes the idempotency key of a record. ok is false when the
// record has no key; err is set when the key cannot be computed.
type KeyFunc func(msg *filters.Message) (key string, ok bool, err error)

// HeaderKeyPrefix starts a dedup key that names a record header.
const HeaderKeyPrefix = "header:"

// CompileKey compiles a dedup key expression:
//
//   - "header:NAME" takes the value of header NAME; a record without it, or
//     with an empty value, has no key.
//   - Anything else is a jq expression run on the payload parsed as JSON,
//     with the record key as $key (null when the record has none) and the
//     headers as $headers. Its first result is the key, meaning what
//     internal/jqkey says (the meaning of `produce --key-jq` and of the jq
//     filter's `key:` too): a string as its bytes, a number or boolean as
//     its JSON text (numbers as written), an object or array as its compact
//     JSON text (object keys sorted). No result, null or "" mean no key. A
//     payload that is not JSON and a runtime error of the expression are
//     errors, marked [filters.Permanent] as trying again cannot change
//     them; they do not repeat the expression, which the caller names.
//
// Keys are byte-exact: decoding never merges different bytes into one key.
// A header value, or a string result, is taken byte for byte, also when
// $key or a header is not UTF-8. Where JSON cannot hold the bytes exactly
// the record fails permanently instead: a payload that is not UTF-8 (RFC
// 8259 §8.1) or holds a \u escape of a lone surrogate (a decoder would
// make both U+FFFD), and a result other than a string holding a string
// that is not UTF-8 (its JSON text would).
//
// The returned function is safe for concurrent use.
func CompileKey(expr string) (KeyFunc, error) {
	if name, ok := strings.CutPrefix(expr, HeaderKeyPrefix); ok {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, errors.New(`"header:" needs a header name, like header:idempotency-key`)
		}
		return headerKey(name), nil
	}
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New(`key is empty: want a jq expression such as .order_id, or "header:NAME"`)
	}
	return jqKey(expr)
}

func headerKey(name string) KeyFunc {
	return func(msg *filters.Message) (string, bool, error) {
		v := msg.Headers.Get(name) // the last, as Kafka's Headers.lastHeader
		return v, v != "", nil
	}
}

// Variables a jq key expression can read.
const (
	keyVarKey     = "$key"
	keyVarHeaders = "$headers"
)

func jqKey(src string) (KeyFunc, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("jq expression does not parse: %w", err)
	}
	code, err := gojq.Compile(q, gojq.WithVariables([]string{keyVarKey, keyVarHeaders}))
	if err != nil {
		return nil, fmt.Errorf("jq expression does not compile: %w", err)
	}
	// The headers are copied into a map only for expressions that name
	// them.
	bindHeaders := strings.Contains(src, keyVarHeaders)
	// gojq's compiled code holds no state of a run, so concurrent calls
	// share it.
	return func(msg *filters.Message) (string, bool, error) {
		input, err := exactjson.ParseText(msg.Payload)
		if _, ok := errors.AsType[*exactjson.TextError](err); ok {
			return "", false, filters.Permanent(fmt.Errorf("payload is not UTF-8: %w", err))
		}
		if err != nil {
			return "", false, filters.Permanent(fmt.Errorf("payload is not JSON: %w", err))
		}
		var key any // null when the record has no key
		if msg.Key != nil {
			key = string(msg.Key)
		}
		headers := map[string]any{}
		if bindHeaders {
			for _, h := range msg.Headers {
				headers[h.Key] = string(h.Value)
			}
		}
		v, ok, err := jqkey.First(code.Run(input, key, headers))
		if err != nil {
			return "", false, filters.Permanent(fmt.Errorf("expression failed: %w", err))
		}
		if !ok {
			return "", false, nil
		}
		b, err := jqkey.Bytes(v)
		if err != nil {
			return "", false, filters.Permanent(err)
		}
		return string(b), len(b) > 0, nil
	}, nil
}
