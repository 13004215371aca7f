package jobs

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// decodeEvent decodes v, an event as AppendJSON writes it, into e, without
// encoding/json's reflection (a third of a folder's CPU). It reports
// false for anything it does not handle — an escape in a string, an
// unknown key, a number that is not a plain integer, JSON that is not
// valid — and the caller decodes v with encoding/json, which decides.
func decodeEvent(v []byte, e *Event) bool {
	d := decoder{b: v}
	if !d.byte('{') {
		return false
	}
	if d.peek() == '}' {
		d.i++
		return d.end()
	}
	for {
		key, ok := d.str()
		if !ok || !d.byte(':') {
			return false
		}
		switch key {
		case "v":
			ok = d.int(&e.V)
		case "n":
			ok = d.int(&e.N)
		case "replays":
			ok = d.int(&e.Replays)
		case "outputs":
			ok = d.int(&e.Outputs)
		case "stage":
			e.Stage, ok = d.str()
		case "lineage":
			e.Lineage, ok = d.str()
		case "outcome":
			var o string
			o, ok = d.str()
			e.Outcome = Outcome(o)
		case "error":
			e.Error, ok = d.str()
		case "origin":
			e.Origin, ok = d.str()
		case "reply_to":
			e.ReplyTo, ok = d.str()
		case "correlation_id":
			e.CorrelationID, ok = d.str()
		case "at":
			var t string
			if t, ok = d.str(); ok {
				var err error
				e.At, err = time.Parse(time.RFC3339Nano, t)
				ok = err == nil
			}
		case "results":
			ok = d.results(&e.Results)
		default:
			return false
		}
		if !ok {
			return false
		}
		switch d.next() {
		case ',':
		case '}':
			return d.end()
		default:
			return false
		}
	}
}

// decoder reads the flat JSON of an event.
type decoder struct {
	b []byte
	i int
}

func (d *decoder) ws() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\t' || d.b[d.i] == '\n' || d.b[d.i] == '\r') {
		d.i++
	}
}

func (d *decoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *decoder) next() byte {
	c := d.peek()
	if c != 0 {
		d.i++
	}
	return c
}

func (d *decoder) byte(c byte) bool { return d.next() == c }

func (d *decoder) end() bool { d.ws(); return d.i == len(d.b) }

// str reads a string without escapes or control characters, valid UTF-8.
func (d *decoder) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start, ascii := d.i, true
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// int reads an integer that fits an int.
func (d *decoder) int(n *int) bool {
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	v, err := strconv.Atoi(string(d.b[start:d.i]))
	if err != nil || (d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E')) {
		return false
	}
	*n = v
	return true
}

// results reads the array of locations.
func (d *decoder) results(ls *[]Location) bool {
	if !d.byte('[') {
		return false
	}
	if d.peek() == ']' {
		d.i++
		return true
	}
	for {
		var l Location
		if !d.byte('{') {
			return false
		}
		for {
			key, ok := d.str()
			if !ok || !d.byte(':') {
				return false
			}
			var n int
			switch key {
			case "topic":
				l.Topic, ok = d.str()
			case "partition":
				ok = d.int(&n)
				l.Partition = int32(n)
				ok = ok && n >= -1<<31 && n < 1<<31
			case "offset":
				ok = d.int(&n)
				l.Offset = int64(n)
			default:
				return false
			}
			if !ok {
				return false
			}
			if c := d.next(); c == '}' {
				break
			} else if c != ',' {
				return false
			}
		}
		*ls = append(*ls, l)
		switch d.next() {
		case ',':
		case ']':
			return true
		default:
			return false
		}
	}
}
