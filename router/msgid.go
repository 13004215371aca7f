package router

import (
	"crypto/rand"
	"encoding/binary"
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

// newMessageID returns a unique id for a message millrace publishes.
func newMessageID() string {
	var u uuid.UUID
	copy(u[:8], idPrefix[:])
	binary.BigEndian.PutUint64(u[8:], idCounter.Add(1))
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u.String()
}
