// Package exactjson reads JSON text into the values gojq takes ([Parse],
// millrace's one JSON parser for records), and tells whether JSON text and
// values can be carried exactly, and writes values as gojq does ([Encoder]). JSON text must be UTF-8 (RFC 8259 §8.1),
// and a decoder turns invalid UTF-8 and \u escapes of lone surrogates into
// U+FFFD, so that different bytes decode to one string; an encoder does the
// same to a string that is not valid UTF-8. millrace fails a record
// permanently where that would happen, rather than rewrite its bytes
// without a word.
package exactjson
