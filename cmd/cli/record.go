package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/transport"
)

// Records print without the header of Watermill's message id
// (transport.MessageIDHeader), which millrace's transport sets on every
// record and nobody reads: text and JSON show the same headers.

// recordJSONHelp says how records print as JSON, for the commands' help.
const recordJSONHelp = `With --json each record is one JSON object on one line, carrying every
byte: {"topic", "partition", "offset", "timestamp", "key", "headers",
"payload"}. The key and payload are JSON strings of their exact text when
they are UTF-8, null when the record has none (no key, a tombstone), and
otherwise appear as "key_base64" or "payload_base64" (standard base64)
instead. Headers are a list of {"key", "value"} in record order, repeats
kept, each name and value following the same rule ("value_base64"), all but
the message id millrace's transport sets (` + transport.MessageIDHeader + `). The
payload is never parsed: use jq -r .payload for its text, or
jq '.payload | fromjson' for its JSON.`

// recordTextHelp says how records print as text.
const recordTextHelp = `In text, headers keep their record order (but the message id, as in
JSON), and keys, header names and values, and payloads that are not UTF-8,
hold control characters or could be misread are printed Go-quoted, with
invalid bytes as \xNN: "x\xff". A tombstone's payload prints as nothing, an
empty one as "".`

// shownHeaders are the headers of m that records print with: all but the
// message id, in record order.
func shownHeaders(m *kafkaops.Record) []*kafkaops.Header {
	out := make([]*kafkaops.Header, 0, len(m.Headers))
	for _, h := range m.Headers {
		if h != nil && string(h.Key) != transport.MessageIDHeader {
			out = append(out, h)
		}
	}
	return out
}

// recordText returns a record as one line of text: partition/offset, the
// key, the headers and the payload, escaped as recordTextHelp says.
func recordText(m *kafkaops.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d", m.Partition, m.Offset)
	if m.Key != nil {
		fmt.Fprintf(&b, " key=%s", quoteIfNeeded(string(m.Key)))
	}
	for _, h := range shownHeaders(m) {
		b.WriteString(" " + quoteIfNeeded(string(h.Key)))
		if h.Value != nil {
			b.WriteString("=" + quoteIfNeeded(string(h.Value)))
		}
	}
	b.WriteString(" | ")
	b.WriteString(payloadText(m.Value))
	return b.String()
}

// printQuarantined writes a quarantined record as text: where it is, its
// key and time, then a line per header and the payload, escaped as
// recordTextHelp says, and a blank line.
func printQuarantined(w io.Writer, m *kafkaops.Record) {
	fmt.Fprintf(w, "%s %d/%d", m.Topic, m.Partition, m.Offset)
	if m.Key != nil {
		fmt.Fprintf(w, " key=%s", quoteIfNeeded(string(m.Key)))
	}
	fmt.Fprintf(w, " at %s\n", m.Timestamp.UTC().Format(time.RFC3339))
	for _, h := range shownHeaders(m) {
		fmt.Fprintf(w, "  %s: %s\n", quoteIfNeeded(string(h.Key)), payloadText(h.Value))
	}
	fmt.Fprintf(w, "  payload: %s\n\n", payloadText(m.Value))
}

// recordJSON returns a record as a JSON object without loss (see
// recordJSONHelp).
func recordJSON(m *kafkaops.Record) []byte {
	var b bytes.Buffer
	b.WriteString(`{"topic":`)
	appendJSONString(&b, m.Topic)
	b.WriteString(`,"partition":`)
	b.WriteString(strconv.Itoa(int(m.Partition)))
	b.WriteString(`,"offset":`)
	b.WriteString(strconv.FormatInt(m.Offset, 10))
	b.WriteString(`,"timestamp":`)
	appendJSONString(&b, m.Timestamp.UTC().Format(time.RFC3339Nano))
	b.WriteByte(',')
	appendBytesField(&b, "key", m.Key)
	b.WriteString(`,"headers":[`)
	for i, h := range shownHeaders(m) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		appendBytesField(&b, "key", h.Key)
		b.WriteByte(',')
		appendBytesField(&b, "value", h.Value)
		b.WriteByte('}')
	}
	b.WriteString("],")
	appendBytesField(&b, "payload", m.Value)
	b.WriteByte('}')
	return b.Bytes()
}

// appendBytesField writes "name": and data as a JSON string when it is
// UTF-8, null when it is nil, and as "name_base64": and its base64
// otherwise: a JSON string cannot hold other bytes.
func appendBytesField(b *bytes.Buffer, name string, data []byte) {
	switch {
	case data == nil:
		b.WriteString(`"` + name + `":null`)
	case utf8.Valid(data):
		b.WriteString(`"` + name + `":`)
		appendJSONString(b, string(data))
	default:
		b.WriteString(`"` + name + `_base64":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(data))
		b.WriteByte('"')
	}
}

// appendTextField is appendBytesField for a value that is never null.
func appendTextField(b *bytes.Buffer, name, s string) {
	if s == "" {
		b.WriteString(`"` + name + `":""`)
		return
	}
	appendBytesField(b, name, []byte(s))
}

// appendJSONString writes s, valid UTF-8, as a JSON string (with <, >
// and & as they are).
func appendJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

// quoteIfNeeded returns s for a field of text output: as it is, or
// Go-quoted when it is empty, holds a character that separates fields, a
// character that is not printable, or bytes that are not UTF-8.
func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"|=") || !printable(s) {
		return strconv.Quote(s)
	}
	return s
}

// payloadText returns a payload for the end of a line of text output: as
// it is, or Go-quoted when it is empty, starts with a quote (so that a
// quoted payload is never mistaken for one as it is), holds a character
// that is not printable (a newline, say) or bytes that are not UTF-8. A
// tombstone (nil) is nothing.
func payloadText(p []byte) string {
	s := string(p)
	if p != nil && (s == "" || s[0] == '"' || !printable(s)) {
		return strconv.Quote(s)
	}
	return s
}

// printable reports whether s is UTF-8 of printable characters (spaces
// included), so that strconv.Quote would not escape any of it.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}
