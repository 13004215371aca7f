package main

import (
	"strings"
	"testing"
)

func recs(key string, ids ...int64) []keyedRecord {
	out := make([]keyedRecord, len(ids))
	for i, id := range ids {
		out[i] = keyedRecord{key: key, id: id}
	}
	return out
}

func TestCheckOrder(t *testing.T) {
	interleave := func(a, b []keyedRecord) []keyedRecord {
		var out []keyedRecord
		for i := range max(len(a), len(b)) {
			if i < len(a) {
				out = append(out, a[i])
			}
			if i < len(b) {
				out = append(out, b[i])
			}
		}
		return out
	}
	for _, tc := range []struct {
		name                               string
		parts                              map[int32][]keyedRecord
		records, keys, violations, repeats int
		split                              int
		ok                                 bool
		example                            string
	}{
		{name: "empty", ok: true},
		{name: "in order, keys interleaved",
			parts: map[int32][]keyedRecord{
				0: interleave(recs("a", 0, 2, 4), recs("b", 1, 3, 5)),
				1: recs("c", 6, 7, 9),
			},
			records: 9, keys: 3, ok: true},
		{name: "one step down",
			parts:   map[int32][]keyedRecord{3: interleave(recs("a", 0, 4, 2, 6), recs("b", 1, 3))},
			records: 6, keys: 2, violations: 1, example: `key "a": id 2 after 4 in partition 3`},
		{name: "each step down counts",
			parts:   map[int32][]keyedRecord{0: recs("a", 9, 1, 2, 0)},
			records: 4, keys: 1, violations: 2},
		{name: "a redelivered copy is a repeat, not a violation",
			parts:   map[int32][]keyedRecord{0: recs("a", 1, 1, 2)},
			records: 3, keys: 1, repeats: 1, ok: true},
		{name: "records read again from a committed offset are repeats; a new id lower than the last is not",
			parts:   map[int32][]keyedRecord{0: recs("a", 1, 2, 3, 2, 3, 5, 4)},
			records: 7, keys: 1, repeats: 2, violations: 1, example: `key "a": id 4 after 5 in partition 0`},
		{name: "order is per partition; a key in two partitions is reported",
			parts:   map[int32][]keyedRecord{0: recs("a", 5, 6), 1: recs("a", 1, 2, 3)},
			records: 5, keys: 1, split: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checkOrder(tc.parts)
			if got.records != tc.records || got.keys != tc.keys || got.violations != tc.violations ||
				got.repeats != tc.repeats || got.split != tc.split || got.ok() != tc.ok {
				t.Errorf("checkOrder = %+v (ok %v), want records %d keys %d violations %d repeats %d split %d ok %v",
					got, got.ok(), tc.records, tc.keys, tc.violations, tc.repeats, tc.split, tc.ok)
			}
			if tc.example != "" && got.example != tc.example {
				t.Errorf("example = %q, want %q", got.example, tc.example)
			}
			if !tc.ok && !strings.Contains(got.String(), "violations") {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}
