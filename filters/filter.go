package filters

import "context"

// Message is one record as a filter sees it.
//
// A filter may modify the message it was given and return it; the engine
// owns every message again once Process returns. Key, Payload and header
// values may share memory with the record the stage read (which a retry or
// the quarantine still needs): replace them with new slices, never write
// into their bytes.
type Message struct {
	// Key is the record key, which is also the ordering key: records with the
	// same key are processed in order. It is carried to the next stage unless
	// a filter sets a new one. Nil means no key.
	Key []byte
	// Payload is the record value.
	Payload []byte
	// Headers are the record headers, in order, names possibly repeated
	// (KIP-82). Headers millrace sets use the Header* constants of this
	// package.
	Headers Headers
}

// Copy returns a deep copy of m, for filters that fan out.
func (m *Message) Copy() *Message {
	c := &Message{Headers: m.Headers.Clone()}
	if m.Key != nil {
		c.Key = append([]byte{}, m.Key...)
	}
	if m.Payload != nil {
		c.Payload = append([]byte{}, m.Payload...)
	}
	return c
}

// Filter processes one message.
//
// Process returns the messages to send to the next stage: none drops the
// record (it is done), one passes it on, several fan it out. An error fails
// the record: it is retried, then quarantined; wrap it with [Permanent] when
// retrying cannot help. Process is called concurrently for records with
// different keys, so a Filter must be safe for concurrent use. It must honour
// ctx: when ctx is cancelled the process is stopping or the call timed out.
type Filter interface {
	Process(ctx context.Context, msg *Message) ([]*Message, error)
}

// Func adapts a function to a [Filter].
type Func func(ctx context.Context, msg *Message) ([]*Message, error)

var _ Filter = Func(nil)

// Process calls f.
func (f Func) Process(ctx context.Context, msg *Message) ([]*Message, error) { return f(ctx, msg) }

// Closer is implemented by filters that hold resources; the engine calls
// Close once when the stage stops.
type Closer interface {
	Close() error
}
