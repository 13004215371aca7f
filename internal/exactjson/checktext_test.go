package exactjson

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// CheckText is the rule ParseText applies, kept as its reference: FuzzParse
// checks that ParseText fails on valid JSON exactly when it does, with its
// message.
//
// CheckText returns an error saying where data cannot be decoded exactly:
// the first byte that is not UTF-8, or the first \u escape of a lone
// surrogate, which has no UTF-8 form. Offsets count bytes from 0. It does
// not check JSON syntax: a backslash is taken for the start of an escape,
// as it is wherever valid JSON text holds one.
func CheckText(data []byte) error {
	if !utf8.Valid(data) {
		for i := 0; i < len(data); {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n == 1 {
				return fmt.Errorf("invalid UTF-8 at byte %d", i)
			}
			i += n
		}
	}
	for i := 0; i < len(data); i++ {
		j := bytes.IndexByte(data[i:], '\\')
		if j < 0 {
			break
		}
		i += j
		if i+1 < len(data) && data[i+1] == 'u' {
			r, ok := hex4(data, i+2)
			switch {
			case !ok || !utf16IsSurrogate(r):
			case r < 0xdc00: // high: a low one must follow
				if lo, ok := hex4(data, i+8); ok && data[i+6] == '\\' && data[i+7] == 'u' && 0xdc00 <= lo && lo <= 0xdfff {
					i += 6
					break
				}
				fallthrough
			default:
				return fmt.Errorf("lone surrogate %s at byte %d has no UTF-8 form", data[i:i+6], i)
			}
		}
		i++ // the escaped character
	}
	return nil
}

func utf16IsSurrogate(r rune) bool { return 0xd800 <= r && r <= 0xdfff }
