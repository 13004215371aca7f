// Package filtertest is the conformance suite for filters: run it on your
// filter in a test and it checks what millrace's engine relies on, beyond
// what your cases say the filter does.
//
//	func TestUpper(t *testing.T) {
//		spec, _ := filters.Lookup("upper")
//		filtertest.Run(t, spec, filtertest.Suite{
//			Config: "max_bytes: 2",
//			Cases: []filtertest.Case{{
//				Name: "upper-cases the first bytes",
//				In:   &filters.Message{Key: []byte("k"), Payload: []byte("abc")},
//				Want: []*filters.Message{{Key: []byte("k"), Payload: []byte("ABc")}},
//			}},
//		})
//	}
//
// [Run] checks, each in a subtest:
//
//   - spec: the spec is well formed, and its Example config parses and
//     builds (so `millrace filters docs` shows a config that works, and a
//     misspelt [filters.Config] field name panics here rather than in
//     production);
//   - cases: each case's outcome and outputs; that Process never writes
//     into the bytes of the input's Key, Payload or header values, nor
//     appends into their spare capacity (the engine shares them with the
//     record it read, which a retry or the quarantine still needs); and
//     that outputs are independent: changing one output's headers, as the
//     engine does, changes no other output;
//   - concurrent: every case at once from several goroutines on one filter
//     (run with -race: a Filter must be safe for concurrent use);
//   - cancellation: a call whose context is cancelled, or whose deadline
//     passes, returns within a bound; a [Case] that Blocks must then fail
//     with an error wrapping the context's error, not marked permanent
//     (stopping is not the record's fault);
//   - after return: nothing Process was given or returned changes once it
//     has returned (the engine owns them again).
//
// Cases that fail permanently must return an error that [filters.IsPermanent]
// still recognises, also wrapped once more, as the engine wraps it.
package filtertest
