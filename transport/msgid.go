package transport

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"

	"github.com/google/uuid"
)

// Message ids: a random 64-bit process prefix and a counter, as a UUIDv8
// (RFC 9562's custom layout). Unique like random UUIDs, but without a
// crypto/rand read per message: that read (watermill.NewUUID) cost a stage
// about 10% of its CPU, mostly growing the handler goroutine's stack.
var (
	idPrefix  [8]byte
	idCounter atomic.Uint64
)

func init() {
	if _, err := rand.Read(idPrefix[:]); err != nil {
		panic("millrace: no randomness for message ids: " + err.Error())
	}
}

// NewMessageID returns a unique id for a message millrace publishes.
func NewMessageID() string {
	var b [36]byte
	PutMessageID(&b)
	return string(b[:])
}

// PutMessageID writes a new message id into b, in the canonical UUID text
// form, for an output record that holds its own id (no allocation).
func PutMessageID(b *[36]byte) {
	var u uuid.UUID
	copy(u[:8], idPrefix[:])
	binary.BigEndian.PutUint64(u[8:], idCounter.Add(1))
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
}
