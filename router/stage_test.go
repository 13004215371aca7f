package router

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// Job ids of records that came without one are documented as the
// name-based UUID of "kafka:topic/partition/offset"; jobID computes it by
// hand to avoid allocating, so check it against the uuid package.
func TestJobID_is_the_sha1_uuid_of_the_record_origin(t *testing.T) {
	for _, r := range []Record{
		{Topic: "orders", Partition: 0, Offset: 0},
		{Topic: "orders.enrich.retry.2", Partition: 17, Offset: 123456789012},
		{Topic: "t", Partition: 2147483647, Offset: 9223372036854775807},
	} {
		ctx := context.WithValue(context.Background(), recordKey{}, &r)
		want := uuid.NewSHA1(uuid.NameSpaceURL, []byte("kafka:"+r.String())).String()
		if got := jobID(ctx); got != want {
			t.Errorf("jobID(%s) = %s, want %s", r, got, want)
		}
	}
	a, b := jobID(context.Background()), jobID(context.Background())
	if a == b {
		t.Errorf("jobID without a record gave %s twice, want random ids", a)
	}
}
