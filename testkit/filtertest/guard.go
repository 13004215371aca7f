package filtertest

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/millrace/millrace/filters"
)

// guardLen is how many bytes of spare capacity follow each byte slice of a
// guarded input, filled with guardByte, so that an append into them shows.
const (
	guardLen  = 16
	guardByte = 0xa5
)

// guarded is the copy of a case's input that Process gets: each byte
// slice (key, payload, header values) lives at the start of a buffer of
// its own with spare capacity, as the record's bytes in a fetched batch
// are followed by others.
type guarded struct {
	msg  *filters.Message
	bufs []guardedBytes
}

type guardedBytes struct {
	what string // "payload", `header "h" value`
	buf  []byte // the whole buffer
	want []byte // what buf starts with
}

func guard(in *filters.Message) *guarded {
	g := &guarded{msg: &filters.Message{}}
	if in == nil {
		return g
	}
	g.msg.Key = g.add("key", in.Key)
	g.msg.Payload = g.add("payload", in.Payload)
	if in.Headers != nil {
		// Spare capacity, as the engine leaves room to add the job header.
		g.msg.Headers = make(filters.Headers, len(in.Headers), len(in.Headers)+2)
		for i, h := range in.Headers {
			g.msg.Headers[i] = filters.Header{Key: h.Key, Value: g.add(fmt.Sprintf("header %q value", h.Key), h.Value)}
		}
	}
	return g
}

func (g *guarded) add(what string, b []byte) []byte {
	if b == nil {
		return nil
	}
	buf := bytes.Repeat([]byte{guardByte}, len(b)+guardLen)
	copy(buf, b)
	g.bufs = append(g.bufs, guardedBytes{what: what, buf: buf, want: bytes.Clone(b)})
	return buf[:len(b):len(buf)]
}

// written says how Process wrote into the input's bytes, or "".
func (g *guarded) written() string {
	for _, b := range g.bufs {
		n := len(b.want)
		if !bytes.Equal(b.buf[:n], b.want) {
			return fmt.Sprintf("wrote into the bytes of the input's %s (%q, was %q)", b.what, b.buf[:n], b.want)
		}
		for _, c := range b.buf[n:] {
			if c != guardByte {
				return fmt.Sprintf("appended into the spare capacity of the input's %s", b.what)
			}
		}
	}
	return ""
}

// snapshot is a deep copy of a message, to tell later whether it changed.
type snapshot struct {
	key, payload []byte
	headers      filters.Headers
}

func snap(m *filters.Message) snapshot {
	if m == nil {
		return snapshot{}
	}
	return snapshot{key: clone(m.Key), payload: clone(m.Payload), headers: m.Headers.Clone()}
}

func snapAll(ms []*filters.Message) []snapshot {
	out := make([]snapshot, len(ms))
	for i, m := range ms {
		out[i] = snap(m)
	}
	return out
}

// clone copies b, keeping nil and empty apart.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// diff says how m differs from s, or "".
func (s snapshot) diff(m *filters.Message) string {
	var key, payload []byte
	var headers filters.Headers
	if m != nil {
		key, payload, headers = m.Key, m.Payload, m.Headers
	}
	switch {
	case !sameBytes(key, s.key):
		return fmt.Sprintf("key %s, want %s", show(key), show(s.key))
	case !bytes.Equal(payload, s.payload):
		return fmt.Sprintf("payload %s, want %s", show(payload), show(s.payload))
	case len(headers) != len(s.headers):
		return fmt.Sprintf("headers %s, want %s", showHeaders(headers), showHeaders(s.headers))
	}
	for i, h := range headers {
		if h.Key != s.headers[i].Key || !sameBytes(h.Value, s.headers[i].Value) {
			return fmt.Sprintf("headers %s, want %s", showHeaders(headers), showHeaders(s.headers))
		}
	}
	return ""
}

// sameBytes compares byte slices, nil apart from empty (a record without
// a key, a header with a null value).
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func show(b []byte) string {
	if b == nil {
		return "nil"
	}
	return strconv.Quote(string(b))
}

func showHeaders(hs filters.Headers) string {
	s := "["
	for i, h := range hs {
		if i > 0 {
			s += " "
		}
		s += strconv.Quote(h.Key) + "=" + show(h.Value)
	}
	return s + "]"
}

// independence says how changing one output's headers, as the engine
// may, changed another output, or "". It puts the headers back.
func independence(out []*filters.Message) string {
	for i, a := range out {
		for j := i + 1; j < len(out); j++ {
			if a != nil && a == out[j] {
				return fmt.Sprintf("outputs %d and %d are the same *filters.Message: use Message.Copy for each output", i, j)
			}
		}
	}
	for i, a := range out {
		if a == nil || len(a.Headers) == 0 {
			continue
		}
		before := snapAll(out)
		saved := append(filters.Headers(nil), a.Headers...)
		for k := range a.Headers {
			a.Headers[k].Value = []byte("filtertest: changed")
		}
		for j, b := range out {
			if j != i {
				if d := before[j].diff(b); d != "" {
					copy(a.Headers, saved)
					return fmt.Sprintf("changing the headers of output %d changed output %d (%s): "+
						"outputs share a Headers array; use Message.Copy or Headers.Clone", i, j, d)
				}
			}
		}
		copy(a.Headers, saved)
	}
	return ""
}
