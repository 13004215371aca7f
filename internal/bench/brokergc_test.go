package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBrokerPauses(t *testing.T) {
	// Lines as Kafka 4.1.1's JVM (Java 17, G1) wrote them with jvmGCLogFlag.
	log := `[2026-11-30T17:44:42.121+0000] Using G1
[2026-11-30T17:45:38.111+0000] GC(25) Pause Young (Normal) (G1 Evacuation Pause) 390M->53M(1024M) 22.441ms
[2026-11-30T17:45:38.802+0000] GC(26) Pause Young (Normal) (G1 Evacuation Pause) 163M->53M(1024M) 10.955ms
[2026-11-30T17:45:39.000+0000] GC(27) Pause Remark 60M->60M(1024M) 1.500ms
[2026-11-30T17:45:41.082+0000] GC(28) Pause Young (Normal) (G1 Evacuation Pause) 405M->54M(1024M) 27.298ms
`
	path := filepath.Join(t.TempDir(), "gc.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// From inside GC(25) (it ended at .111 after 22.4 ms) to just before
	// GC(28) began (41.082 - 27.3 ms = 41.0547).
	got, err := brokerPauses(path, at("2026-11-30T17:45:38.100Z"), at("2026-11-30T17:45:41.050Z"))
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{22441 * time.Microsecond, 10955 * time.Microsecond, 1500 * time.Microsecond}
	if len(got) != len(want) {
		t.Fatalf("got %d pauses %v, want %d", len(got), got, len(want))
	}
	for i, p := range got {
		if p.d != want[i] {
			t.Errorf("pause %d lasted %s, want %s", i, p.d, want[i])
		}
	}
	if !got[0].end.Equal(at("2026-11-30T17:45:38.111Z")) {
		t.Errorf("first pause ended %s, want 17:45:38.111 UTC", got[0].end)
	}
	if ps, err := brokerPauses("", time.Time{}, time.Now()); ps != nil || err != nil {
		t.Errorf("no log: %v, %v; want none", ps, err)
	}

	// A trip meets a pause when they overlap, even by a millisecond.
	gc25 := got[0] // 17:45:38.0886 to .111
	for _, c := range []struct {
		sent, arrived string
		met           bool
	}{
		{"17:45:38.080", "17:45:38.085", false}, // before
		{"17:45:38.080", "17:45:38.089", true},  // into its start
		{"17:45:38.090", "17:45:38.100", true},  // inside
		{"17:45:38.110", "17:45:38.130", true},  // over its end
		{"17:45:38.112", "17:45:38.130", false}, // after
	} {
		tr := trip{sent: at("2026-11-30T" + c.sent + "Z"), arrived: at("2026-11-30T" + c.arrived + "Z")}
		if tr.metPause([]gcPause{gc25}) != c.met {
			t.Errorf("trip %s–%s met the pause: %v, want %v", c.sent, c.arrived, !c.met, c.met)
		}
	}
	r := latencyResult{pauses: got, got: 10000, paused: 120, clearP99: 9100 * time.Microsecond}
	if n := r.pausesNote(); n != "broker GC paused 3 times (longest 22.4 ms, 34.9 ms in all); 120 records were in flight during one, p99 of the others 9.1 ms" {
		t.Errorf("note %q", n)
	}
	if n := (latencyResult{got: 10}).pausesNote(); n != "" {
		t.Errorf("a note for no pauses: %q", n)
	}
}
