package exactjson

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Encoder writes the values a gojq program returns as JSON text exactly as
// gojq.Marshal does (jq's own encoding: object keys sorted, NaN as null,
// infinities as ±math.MaxFloat64, \b and \f in strings, '<', '>', '&'
// not escaped, each byte that is not UTF-8 as \ufffd), but into a buffer
// it reuses, with the scratch space for sorting keys kept from one value
// to the next: gojq.Marshal grows a new buffer and sorts a new slice per
// object, which was a tenth of a jq stage's CPU. FuzzEncode checks the
// two agree.
//
// An Encoder is not safe for concurrent use; take one from [GetEncoder].
type Encoder struct {
	buf []byte
	// members is a stack of the objects being written: an object pushes
	// its members above its parents' and pops them when done.
	members []member
	// replaced is set when a string held a byte that is not UTF-8 (written
	// as \ufffd).
	replaced bool
}

var encoderPool = sync.Pool{New: func() any { return new(Encoder) }}

// GetEncoder takes an Encoder from a pool; give it back with Put.
func GetEncoder() *Encoder { return encoderPool.Get().(*Encoder) }

// Put gives e back to the pool, keeping its buffer unless it grew past
// 64 KiB (a rare big value should not pin its memory).
func (e *Encoder) Put() {
	if cap(e.buf) > 64<<10 {
		e.buf = nil
	}
	clear(e.members[:cap(e.members)]) // a panic may have left some
	if e.members = e.members[:0]; cap(e.members) > 1024 {
		e.members = nil
	}
	encoderPool.Put(e)
}

// Encode writes v and returns its text, which is valid until the next
// call; replaced reports whether a string held bytes that are not UTF-8,
// written as \ufffd. v holds only what a gojq iterator emits: nil, bool,
// int, float64, *big.Int, json.Number, string, []any and map[string]any;
// anything else panics, as in gojq.Marshal.
func (e *Encoder) Encode(v any) (text []byte, replaced bool) {
	e.buf, e.replaced = e.buf[:0], false
	e.encode(v)
	return e.buf, e.replaced
}

func (e *Encoder) encode(v any) {
	switch v := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, v)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(v), 10)
	case float64:
		e.encodeFloat64(v)
	case *big.Int:
		e.buf = v.Append(e.buf, 10)
	case json.Number:
		e.buf = append(e.buf, v...)
	case string:
		e.encodeString(v)
	case []any:
		e.buf = append(e.buf, '[')
		for i, x := range v {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.encode(x)
		}
		e.buf = append(e.buf, ']')
	case map[string]any:
		e.encodeObject(v)
	default:
		panic(fmt.Sprintf("invalid type: %[1]T (%[1]v)", v))
	}
}

// encodeFloat64 is gojq's (after encoding/json's floatEncoder).
func (e *Encoder) encodeFloat64(f float64) {
	if math.IsNaN(f) {
		e.buf = append(e.buf, "null"...)
		return
	}
	f = min(max(f, -math.MaxFloat64), math.MaxFloat64)
	format := byte('f')
	if x := math.Abs(f); x != 0 && x < 1e-6 || x >= 1e21 {
		format = 'e'
	}
	start := len(e.buf)
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		b := e.buf[start:]
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			e.buf = e.buf[:len(e.buf)-1]
		}
	}
}

// encodeString is gojq's (after encoding/json's encodeState.string).
func (e *Encoder) encodeString(s string) {
	const hex = "0123456789abcdef"
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if ' ' <= b && b <= '~' && b != '"' && b != '\\' {
				i++
				continue
			}
			e.buf = append(e.buf, s[start:i]...)
			switch b {
			case '"':
				e.buf = append(e.buf, `\"`...)
			case '\\':
				e.buf = append(e.buf, `\\`...)
			case '\b':
				e.buf = append(e.buf, `\b`...)
			case '\f':
				e.buf = append(e.buf, `\f`...)
			case '\n':
				e.buf = append(e.buf, `\n`...)
			case '\r':
				e.buf = append(e.buf, `\r`...)
			case '\t':
				e.buf = append(e.buf, `\t`...)
			default:
				e.buf = append(e.buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, `\ufffd`...)
			e.replaced = true
			i += size
			start = i
			continue
		}
		i += size
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
}

func (e *Encoder) encodeObject(m map[string]any) {
	base := len(e.members)
	for k, v := range m {
		e.members = append(e.members, member{k, v})
	}
	members := e.members[base:]
	slices.SortFunc(members, func(x, y member) int { return strings.Compare(x.key, y.key) })
	e.buf = append(e.buf, '{')
	for i := range len(m) {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		// e.members may move as nested objects push theirs.
		kv := e.members[base+i]
		e.encodeString(kv.key)
		e.buf = append(e.buf, ':')
		e.encode(kv.value)
	}
	e.buf = append(e.buf, '}')
	clear(e.members[base:])
	e.members = e.members[:base]
}
