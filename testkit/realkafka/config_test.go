package realkafka

import "testing"

// A cluster id starting with '-' makes StorageTool read "-t" as missing
// its value; one CI run in 64 failed that way. 4,096 draws would include
// about 64 such ids without the guard.
func TestClusterIDNeverLooksLikeAnOption(t *testing.T) {
	for i := 0; i < 4096; i++ {
		id, err := newClusterID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q: want 22 characters, not starting with '-'", id)
		}
	}
}
