package std

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/itchyny/gojq"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/exactjson"
	"github.com/millrace/millrace/internal/jqkey"
)

// Config keys of the jq filter.
const (
	jqProgram = "program"
	jqKey     = "key"
)

// Variables the jq programs can read.
const (
	jqVarKey     = "$key"
	jqVarHeaders = "$headers"
)

// jqMaxResults caps the results of one record, so that a program such as
// `repeat(.)` fails the record instead of exhausting memory.
const jqMaxResults = 100_000

func jqSpec() filters.Spec {
	return filters.Spec{
		Name:    "jq",
		Summary: "Transforms, drops or fans out JSON payloads with a jq program.",
		Description: "The payload is parsed as JSON and given to the jq program as its input. Each\n" +
			"result of the program, encoded as compact JSON, becomes the payload of one\n" +
			"outgoing record with the same key and headers: a program with no result\n" +
			"drops the record, one with several results fans it out. A null result is\n" +
			"dropped too, so both `select(.ok)` and `if .ok then . else null end` filter\n" +
			"records. Numbers keep their exact text unless the program computes with\n" +
			"them, so large integer ids pass through unchanged; object keys come out\n" +
			"sorted.\n\n" +
			"The program can read the record key as `$key` (a string, or null when the\n" +
			"record has no key) and the headers as `$headers` (an object of strings; a\n" +
			"name that repeats gives its last value). The outgoing records keep every\n" +
			"header of the incoming one, in order, repeats included.\n" +
			"`debug` logs its input at debug level; `$ENV` is empty, and `input` and\n" +
			"modules are not available.\n\n" +
			"With `key`, a second jq program runs on each result and its first result\n" +
			"becomes the record key, as for dedup keys and `millrace produce --key-jq`:\n" +
			"a string as its bytes; a number or boolean as its JSON text (numbers as\n" +
			"written); an object or array as its compact JSON text, object keys sorted.\n" +
			"When it has no result or returns null the record keeps its key.\n\n" +
			"A payload that is not JSON, a runtime error of the program (including\n" +
			"`error` and `halt_error`) and more than 100000 results for one record fail\n" +
			"the record permanently: it is quarantined without retries.\n\n" +
			"Bytes are never rewritten. JSON text must be UTF-8 (RFC 8259 §8.1): a\n" +
			"payload holding bytes that are not UTF-8, or a `\\u` escape of a lone\n" +
			"surrogate (which has no UTF-8 form), fails the record permanently with the\n" +
			"byte offset instead of having them turned into U+FFFD. So does a result\n" +
			"holding a string that is not UTF-8 (from `$key`, `$headers` or `@base64d`),\n" +
			"which JSON text cannot carry. The record key and headers pass on byte for\n" +
			"byte, and a string the `key` program returns becomes the key's exact bytes.",
		Fields: []filters.Field{
			{
				Name:        jqProgram,
				Type:        filters.String,
				Required:    true,
				Description: "The jq program run on each payload.",
				Example:     "'{id: .id, total: (.qty * .price)}'",
			},
			{
				Name:        jqKey,
				Type:        filters.String,
				Description: "A jq program run on each result whose value becomes the new record key, such as `.customer_id`; unset keeps the key.",
				Example:     ".customer_id",
			},
		},
		Example: `program: |
  .items[]
  | select(.qty > 0)
  | {order: $key, sku, total: (.qty * .price)}
key: .sku
`,
		New:       newJQ,
		DeepStack: true, // parsing and encoding JSON, running the program
	}
}

func init() { filters.MustRegister(jqSpec()) }

// newJQ compiles the programs of a jq config.
func newJQ(cfg filters.Config) (filters.Filter, error) {
	src := cfg.String(jqProgram)
	keySrc := cfg.String(jqKey)
	// Only the variables a program names are bound, so that records are
	// not converted for programs that never look at them. A `$key` or
	// `$headers` in a string literal merely binds one needlessly.
	var vars []string
	uses := func(v string) bool { return strings.Contains(src, v) || strings.Contains(keySrc, v) }
	f := &jqFilter{}
	if uses(jqVarKey) {
		f.bindKey = true
		vars = append(vars, jqVarKey)
	}
	if uses(jqVarHeaders) {
		f.bindHeaders = true
		vars = append(vars, jqVarHeaders)
	}
	opts := []gojq.CompilerOption{
		gojq.WithVariables(vars),
		gojq.WithFunction("debug", 0, 0, jqDebug(logger(cfg))),
	}
	var err error
	if f.program, err = compileJQ(jqProgram, src, opts); err != nil {
		return nil, err
	}
	if cfg.Has(jqKey) {
		if f.key, err = compileJQ(jqKey, keySrc, opts); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// compileJQ parses and compiles the program in the config field named field.
func compileJQ(field, src string, opts []gojq.CompilerOption) (*gojq.Code, error) {
	if strings.TrimSpace(src) == "" {
		return nil, filters.FieldError(field, errors.New("jq program is empty"))
	}
	q, err := gojq.Parse(src)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			return nil, filters.FieldError(field, fmt.Errorf("jq program does not parse at byte %d: %w", pe.Offset, err))
		}
		return nil, filters.FieldError(field, fmt.Errorf("jq program does not parse: %w", err))
	}
	code, err := gojq.Compile(q, opts...)
	if err != nil {
		return nil, filters.FieldError(field, fmt.Errorf("jq program does not compile: %w", err))
	}
	return code, nil
}

// jqDebug implements jq's debug function: it logs its input at debug level
// and returns it.
func jqDebug(logger *slog.Logger) func(any, []any) any {
	return func(v any, _ []any) any {
		if logger.Enabled(context.Background(), slog.LevelDebug) {
			b, _ := gojq.Marshal(v)
			logger.Debug("jq debug", "value", string(b))
		}
		return v
	}
}

// jqFilter is a [filters.Filter]; it holds no resources, so it is no [filters.Closer].
var _ filters.Filter = (*jqFilter)(nil)

// jqFilter runs a compiled jq program. gojq's compiled code holds no state
// of a run, so one jqFilter serves concurrent calls.
type jqFilter struct {
	program *gojq.Code
	key     *gojq.Code // nil keeps the record key
	// bindKey and bindHeaders tell which variables the programs take, in
	// this order.
	bindKey, bindHeaders bool
}

// Process implements [filters.Filter].
func (f *jqFilter) Process(ctx context.Context, msg *filters.Message) ([]*filters.Message, error) {
	if msg.Payload == nil {
		return nil, filters.Permanent(errors.New("payload is not JSON: the record is a tombstone (it has no value)"))
	}
	// Invalid UTF-8 and lone surrogates would be parsed as U+FFFD: refuse
	// rather than rewrite the bytes.
	input, err := exactjson.ParseText(msg.Payload)
	if err != nil {
		if _, ok := errors.AsType[*exactjson.TextError](err); ok {
			return nil, filters.Permanent(fmt.Errorf("payload is not UTF-8: %w", err))
		}
		return nil, filters.Permanent(fmt.Errorf("payload is not JSON: %w", err))
	}
	vars := f.variables(msg)
	enc := exactjson.GetEncoder()
	defer enc.Put()
	// msg is changed only on success, so that a failed record is retried
	// as it came: out[0] stands for msg until the end.
	var (
		out          []*filters.Message
		payload, key []byte // of the first result
	)
	iter := f.program.RunWithContext(ctx, input, vars...)
	for {
		v, ok := iter.Next()
		if !ok {
			break
		}
		if err, ok := v.(error); ok {
			if halted(err) {
				break
			}
			return nil, runError(ctx, "jq program", err)
		}
		if v == nil {
			continue
		}
		if len(out) == jqMaxResults {
			return nil, filters.Permanent(fmt.Errorf("jq program returned more than %d results", jqMaxResults))
		}
		text, replaced := enc.Encode(v) // as gojq.Marshal would
		// A string can be invalid only from $key, $headers or @base64d.
		if replaced {
			if err := exactjson.CheckValue(v); err != nil {
				return nil, filters.Permanent(fmt.Errorf("jq program result: %w; JSON text cannot hold it", err))
			}
		}
		p := bytes.Clone(text)
		var k []byte
		if f.key != nil {
			if k, err = f.newKey(ctx, v, vars); err != nil {
				return nil, err
			}
		}
		if len(out) == 0 {
			payload, key = p, k
			out = append(out, nil)
			continue
		}
		m := (&filters.Message{Key: msg.Key, Headers: msg.Headers}).Copy()
		m.Payload = p
		if k != nil {
			m.Key = k
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, nil
	}
	msg.Payload = payload
	if key != nil {
		msg.Key = key
	}
	out[0] = msg
	return out, nil
}

// variables returns the values of the variables the programs take.
func (f *jqFilter) variables(msg *filters.Message) []any {
	if !f.bindKey && !f.bindHeaders {
		return nil
	}
	vars := make([]any, 0, 2)
	if f.bindKey {
		var key any // null when the record has no key
		if msg.Key != nil {
			key = string(msg.Key)
		}
		vars = append(vars, key)
	}
	if f.bindHeaders {
		// A repeated header name gives its last value, as Kafka's
		// Headers.lastHeader does.
		headers := make(map[string]any, len(msg.Headers))
		for _, h := range msg.Headers {
			headers[h.Key] = string(h.Value)
		}
		vars = append(vars, headers)
	}
	return vars
}

// newKey runs the key program on a result; nil keeps the key. The key
// means what internal/jqkey says.
func (f *jqFilter) newKey(ctx context.Context, v any, vars []any) ([]byte, error) {
	k, ok, err := jqkey.First(f.key.RunWithContext(ctx, v, vars...))
	if err != nil {
		return nil, runError(ctx, "key program", err)
	}
	if !ok {
		return nil, nil
	}
	b, err := jqkey.Bytes(k)
	if err != nil {
		return nil, filters.Permanent(fmt.Errorf("key program %w", err))
	}
	return b, nil
}

// halted reports whether err is jq's halt, which ends a program without an
// error.
func halted(err error) bool {
	var h *gojq.HaltError
	return errors.As(err, &h) && h.Value() == nil
}

// runError wraps an error a program returned: permanent, unless the run
// stopped because ctx ended.
func runError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s stopped: %w", what, err)
	}
	return filters.Permanent(fmt.Errorf("%s failed: %w", what, err))
}
