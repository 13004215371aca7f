package exactjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Parse decodes data, which must hold exactly one JSON value, into the
// types gojq takes as input: nil, bool, int, json.Number, string, []any and
// map[string]any. Integers that fit an int become ints; other numbers keep
// their text as json.Number, so that large integers and decimals pass
// through a jq program unchanged. It is millrace's one JSON parser for
// records: the jq filter, jq dedup keys and `produce --key-jq` use it.
//
// It gives what json.Decoder with UseNumber gives (and accepts what
// json.Valid accepts: RFC 8259 text, nested at most 10000 deep), but for
// the int numbers and at a fraction of the cost, as it runs for every
// record (BenchmarkParse, go1.27.3: a 262-byte order in 1.9–2.4 µs against
// the decoder's 9.7–10.7 µs, 21 allocations against 61): it checks the
// syntax as it goes, in one pass (json.Valid first, then a parser, then a
// scan for inexact text took 2.5–3.0 µs for the first two alone); strings without escapes are cut from one copy of data rather
// than allocated one by one; and maps and slices are made at their final
// size.
//
// Like a decoder, it turns invalid UTF-8 and \u escapes of lone
// surrogates into U+FFFD: callers that must keep bytes exact use
// [ParseText].
func Parse(data []byte) (any, error) {
	v, _, err := parse(data)
	return v, err
}

// ParseText is Parse for callers that must keep bytes exact: it fails with
// a *[TextError] when data is JSON but cannot be decoded exactly — the
// first byte that is not UTF-8 (RFC 8259 §8.1), else the first \u escape
// of a lone surrogate, which has no UTF-8 form; offsets count bytes from
// 0 — and with Parse's error when data is not JSON (which comes first).
func ParseText(data []byte) (any, error) {
	v, textErr, err := parse(data)
	if err != nil {
		return nil, err
	}
	if textErr != nil {
		return nil, textErr
	}
	return v, nil
}

// TextError says where JSON text cannot be decoded exactly; see
// [ParseText].
type TextError struct{ msg string }

func (e *TextError) Error() string { return e.msg }

// maxDepth is how deep json.Valid lets arrays and objects nest.
const maxDepth = 10000

// parse reads data with a pooled parser: the value, the first problem
// CheckText would report (nil if none) and a syntax error.
func parse(data []byte) (v any, textErr, err error) {
	p := parserPool.Get().(*jsonParser)
	p.src, p.pos, p.failed, p.badUTF8, p.badEscape = string(data), 0, false, -1, -1
	v = p.value(0)
	if !p.failed {
		if _, more := p.next(); more {
			p.failed = true
		}
	}
	failed, badUTF8, badEscape := p.failed, p.badUTF8, p.badEscape
	if failed {
		// A failure leaves the members and elements it was reading.
		clear(p.members[:cap(p.members)])
		clear(p.elems[:cap(p.elems)])
		p.members, p.elems = p.members[:0], p.elems[:0]
	}
	p.src = ""
	parserPool.Put(p)
	switch {
	case failed:
		return nil, nil, syntaxError(data) // only bad payloads take this path
	case badUTF8 >= 0:
		textErr = &TextError{fmt.Sprintf("invalid UTF-8 at byte %d", badUTF8)}
	case badEscape >= 0:
		textErr = &TextError{fmt.Sprintf("lone surrogate %s at byte %d has no UTF-8 form", data[badEscape:badEscape+6], badEscape)}
	}
	return v, textErr, nil
}

// syntaxError explains what is wrong with data, which is not valid JSON.
func syntaxError(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var first any
	if dec.Decode(&first) == nil {
		if rest := data[dec.InputOffset():]; json.Valid(rest) {
			return fmt.Errorf("more than one JSON value (the second at byte %d)",
				int(dec.InputOffset())+len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
		}
	}
	var v any
	err := json.Unmarshal(data, &v)
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Errorf("%w (at byte %d)", err, syntax.Offset)
	}
	if err == nil { // the parser refused what encoding/json reads: a bug
		return errors.New("refused by exactjson's parser, though encoding/json reads it")
	}
	return err
}

// parserPool holds parsers, for their scratch space.
var parserPool = sync.Pool{New: func() any { return new(jsonParser) }}

// jsonParser reads JSON text; see Parse.
type jsonParser struct {
	src string
	pos int
	// failed is set at the first syntax error; the value read is then
	// of no use.
	failed bool
	// badUTF8 and badEscape are the offsets of the first byte that is not
	// UTF-8 and of the first \u escape of a lone surrogate, or -1.
	badUTF8, badEscape int
	// members and elems collect the members of the objects and the
	// elements of the arrays being read, as a stack: a nested value pushes
	// its own above those of its parents and pops them when it is done.
	members []member
	elems   []any
}

type member struct {
	key   string
	value any
}

// next skips white space and returns the byte at the new position, or
// false at the end of the text.
func (p *jsonParser) next() (byte, bool) {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; c {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return c, true
		}
	}
	return 0, false
}

// value reads the value at p.pos, nested depth deep.
func (p *jsonParser) value(depth int) any {
	c, ok := p.next()
	switch {
	case !ok:
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.string()
	case c == 't':
		return p.literal("true", true)
	case c == 'f':
		return p.literal("false", false)
	case c == 'n':
		return p.literal("null", nil)
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	p.failed = true
	return nil
}

func (p *jsonParser) literal(text string, v any) any {
	if !strings.HasPrefix(p.src[p.pos:], text) {
		p.failed = true
		return nil
	}
	p.pos += len(text)
	return v
}

func (p *jsonParser) object(depth int) any {
	p.pos++ // '{'
	c, ok := p.next()
	if !ok || depth > maxDepth {
		p.failed = true
		return nil
	}
	if c == '}' {
		p.pos++
		return map[string]any{}
	}
	base := len(p.members)
	for {
		if c, ok = p.next(); !ok || c != '"' {
			p.failed = true
			return nil
		}
		k := p.string()
		if c, ok = p.next(); !ok || c != ':' {
			p.failed = true
			return nil
		}
		p.pos++
		v := p.value(depth)
		if p.failed {
			return nil
		}
		p.members = append(p.members, member{k, v})
		c, ok = p.next() // ',' or '}'
		p.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			p.failed = true
			return nil
		}
	}
	members := p.members[base:]
	m := make(map[string]any, len(members))
	for _, e := range members {
		m[e.key] = e.value // the last of repeated keys wins, as in encoding/json
	}
	clear(members) // do not keep values alive from the pool
	p.members = p.members[:base]
	return m
}

func (p *jsonParser) array(depth int) any {
	p.pos++ // '['
	c, ok := p.next()
	if !ok || depth > maxDepth {
		p.failed = true
		return nil
	}
	if c == ']' {
		p.pos++
		return []any{}
	}
	base := len(p.elems)
	for {
		v := p.value(depth)
		if p.failed {
			return nil
		}
		p.elems = append(p.elems, v)
		c, ok = p.next() // ',' or ']'
		p.pos++
		if c == ']' {
			break
		}
		if c != ',' {
			p.failed = true
			return nil
		}
	}
	elems := p.elems[base:]
	a := make([]any, len(elems))
	copy(a, elems)
	clear(elems)
	p.elems = p.elems[:base]
	return a
}

// number reads the number at p.pos: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
// (RFC 8259 §6).
func (p *jsonParser) number() any {
	s, start := p.src, p.pos
	i := start
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(s, i)
	default:
		p.failed = true
		return nil
	}
	integer := true
	if i < len(s) && s[i] == '.' {
		integer = false
		if i = digits(s, i+1); s[i-1] == '.' {
			p.failed = true
			return nil
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integer = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			p.failed = true
			return nil
		}
		i = j
	}
	p.pos = i
	text := s[start:i]
	if integer && text != "-0" {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil && math.MinInt <= n && n <= math.MaxInt {
			return int(n)
		}
	}
	return json.Number(text)
}

// digits returns the position after the ASCII digits at s[i:].
func digits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// string reads the string literal at p.pos, noting where its text cannot
// be decoded exactly (see ParseText).
func (p *jsonParser) string() string {
	s, start := p.src, p.pos // the opening quote
	i := start + 1
	escaped, invalid := false, false
	for {
		if i >= len(s) {
			p.failed = true
			return ""
		}
		c := s[i]
		if c == '"' {
			break
		}
		switch {
		case c < ' ':
			p.failed = true
			return ""
		case c == '\\':
			escaped = true
			if i+1 >= len(s) {
				p.failed = true
				return ""
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
			default:
				p.failed = true
				return ""
			}
			r, ok := hex4(s, i+2)
			if !ok {
				p.failed = true
				return ""
			}
			if 0xd800 <= r && r <= 0xdfff {
				if lo, ok := hex4(s, i+8); r < 0xdc00 && ok && s[i+6] == '\\' && s[i+7] == 'u' && 0xdc00 <= lo && lo <= 0xdfff {
					i += 6 // the pair
				} else if p.badEscape < 0 {
					p.badEscape = i
				}
			}
			i += 6
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				invalid = true
				if p.badUTF8 < 0 {
					p.badUTF8 = i
				}
			}
			i += size
		default:
			i++
		}
	}
	p.pos = i + 1 // after the closing quote
	lit := s[start:p.pos]
	if escaped || invalid {
		// Escapes, or invalid UTF-8 that must become U+FFFD: let
		// encoding/json apply its rules to the literal, which is valid.
		var v string
		_ = json.Unmarshal([]byte(lit), &v)
		return v
	}
	return lit[1 : len(lit)-1]
}

// hex4 reads the four hex digits at s[i:].
func hex4[T string | []byte](s T, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for j := i; j < i+4; j++ {
		c := s[j]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
