package transport

import (
	"testing"

	"github.com/google/uuid"
)

// Message ids are canonical UUIDv8 text (what watermill-kafka consumers
// parse), formatted as uuid.UUID.String formats them, and never repeat.
func TestMessageID_is_a_canonical_unique_UUID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewMessageID()
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if u.String() != id || u.Version() != 8 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%q: parsed back as %q, version %d, variant %v", id, u.String(), u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("%q repeated", id)
		}
		seen[id] = true
	}
}
