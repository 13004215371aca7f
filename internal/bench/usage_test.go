package main

import (
	"maps"
	"testing"
)

func TestRequestsSince(t *testing.T) {
	a := map[int16]int64{0: 10, 1: 5, 3: 2}
	b := map[int16]int64{0: 25, 1: 5, 3: 3, 8: 4}
	got := requestsSince(a, b)
	want := map[int16]int64{0: 15, 3: 1, 8: 4}
	if !maps.Equal(got, want) {
		t.Errorf("requestsSince = %v, want %v", got, want)
	}
	if n := totalRequests(got); n != 20 {
		t.Errorf("totalRequests = %d, want 20", n)
	}
}

func TestOtherRequests(t *testing.T) {
	m := map[int16]int64{apiProduce: 100, apiFetch: 50, apiOffsetCommit: 3, 3: 7, 12: 9, 2: 7}
	if got, want := otherRequests(m), "Heartbeat 9, ListOffsets 7, Metadata 7"; got != want {
		t.Errorf("otherRequests = %q, want %q", got, want)
	}
	if got := otherRequests(map[int16]int64{apiProduce: 1}); got != "" {
		t.Errorf("otherRequests of Produce alone = %q, want empty", got)
	}
	if got := apiName(1000); got != "key 1000" {
		t.Errorf("apiName(1000) = %q", got)
	}
}

func TestUsageSince(t *testing.T) {
	u0 := usage{cpu: 100, cpuOK: true, objects: 10, bytes: 1000, allocOK: true, requests: map[int16]int64{0: 1}}
	u1 := usage{cpu: 300, cpuOK: true, objects: 30, bytes: 5000, allocOK: true, requests: map[int16]int64{0: 4}, broker: 50, brokerOK: true}
	d := u1.since(u0)
	if d.cpu != 200 || d.objects != 20 || d.bytes != 4000 || !d.allocs || !d.counted || d.requests[0] != 3 {
		t.Errorf("since = %+v", d)
	}
	if d.brokerMeasured {
		t.Errorf("a broker measured at one end only counts as measured, want not measured: %+v", d)
	}
}

func TestFmtPer(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.0123456: "0.0123", 1.5: "1.50", 123.4: "123", 12345.6: "12346", 0.00004: "0.0000400"} {
		if got := fmtPer(v); got != want {
			t.Errorf("fmtPer(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestIOSizing(t *testing.T) {
	for _, tc := range []struct{ c, seconds, records, keys int }{
		{1, 6, 600, 60}, {1, 1, 600, 60}, {16, 6, 9600, 960}, {256, 6, 153_600, 10_000},
	} {
		n := ioRecords(tc.c, tc.seconds)
		if n != tc.records {
			t.Errorf("ioRecords(%d, %d) = %d, want %d", tc.c, tc.seconds, n, tc.records)
		}
		if k := ioKeys(n, 10_000); k != tc.keys {
			t.Errorf("ioKeys(%d, 10000) = %d, want %d", n, k, tc.keys)
		}
	}
	if k := ioKeys(600, 0); k != 0 {
		t.Errorf("ioKeys without keys = %d, want 0", k)
	}
}
