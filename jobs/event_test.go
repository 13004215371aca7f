package jobs_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/millrace/millrace/jobs"
)

// FuzzParseEvent: the hand-written decoder reads every event as
// encoding/json does (or leaves it to encoding/json).
func FuzzParseEvent(f *testing.F) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 123456789, time.UTC)
	for _, e := range []jobs.Event{
		{Stage: "a", N: 1, Outcome: jobs.Done, Outputs: 3, At: at, Origin: "in/0/7", ReplyTo: "r", CorrelationID: "c"},
		{Stage: "b", N: 2, Lineage: "2.10", Replays: 2, Outcome: jobs.Quarantined, At: at,
			Error: "bad \"record\"\n\\ é \x01 <tag> \xff", Origin: "p.b/3/9"},
		{Stage: "c", N: 3, Lineage: "0.0", Outcome: jobs.Done, Outputs: 2, At: at,
			Results: []jobs.Location{{Topic: "out", Partition: 1, Offset: 5}, {Topic: "out", Partition: 0, Offset: 1 << 40}}},
		{Outcome: jobs.Accepted, At: at},
	} {
		f.Add(e.Marshal())
	}
	f.Add([]byte(`{"v":1,"n":1.0,"outcome":"done","at":"2026-11-29T12:00:00Z"}`))
	f.Add([]byte(`{"v":1,"n":1,"outcome":"done","at":"2026-11-29T12:00:00Z","extra":{"x":[1,2]}}`))
	f.Add([]byte(` { "n" : 2 , "outcome" : "skipped" , "at" : "2026-11-29T12:00:00+01:00" } `))
	f.Add([]byte(`{"n":1,"outcome":"done","stage":"\u00e9"}`))
	f.Add([]byte(`{"n":1,"outcome":"done"}{`))
	f.Fuzz(func(t *testing.T, v []byte) {
		got, gotErr := jobs.ParseEvent("j", v)
		var want jobs.Event
		if err := json.Unmarshal(v, &want); err != nil {
			if gotErr == nil {
				t.Fatalf("%q: parsed %+v, encoding/json refuses it: %v", v, got, err)
			}
			return
		}
		if gotErr != nil {
			return // refused for its content (version, outcome, stage index)
		}
		want.Job = "j"
		if !reflect.DeepEqual(got, want) || !got.At.Equal(want.At) {
			t.Fatalf("%q:\nparsed  %+v\nwant    %+v", v, got, want)
		}
	})
}
