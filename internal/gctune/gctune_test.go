package gctune

import (
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// restore puts the GC percent and memory limit back after a test.
func restore(t *testing.T) {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	l := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(p)
		debug.SetMemoryLimit(l)
	})
}

func limitOf(n uint64) memlimit.Provider {
	return func() (uint64, error) { return n, nil }
}

func TestApply_sets_GOGC_and_90_percent_of_the_cgroup_limit(t *testing.T) {
	restore(t)
	unsetenv(t, "GOGC", "GOMEMLIMIT", "AUTOMEMLIMIT")
	s, err := apply(limitOf(1 << 30))
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != Percent || s.Percent != Percent || s.FromEnv {
		t.Errorf("GC percent %d, settings %+v; want %d, not from the environment", got, s, Percent)
	}
	ratio := LimitRatio
	want := int64(float64(1<<30) * ratio)
	if got := debug.SetMemoryLimit(-1); got != want || s.Limit != want || s.LimitFrom != "cgroup" {
		t.Errorf("memory limit %d, settings %+v; want %d from the cgroup", got, s, want)
	}
	if got := s.String(); got != "GOGC=200, GOMEMLIMIT=921MiB (90% of the cgroup's memory limit)" {
		t.Errorf("String() = %q", got)
	}
}

func TestApply_without_a_cgroup_limit_sets_none(t *testing.T) {
	restore(t)
	unsetenv(t, "GOGC", "GOMEMLIMIT", "AUTOMEMLIMIT")
	s, err := apply(func() (uint64, error) { return 0, memlimit.ErrNoLimit })
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 || s.LimitFrom != "" {
		t.Errorf("memory limit %d, settings %+v; want none", got, s)
	}
	if !strings.HasSuffix(s.String(), "no memory limit") {
		t.Errorf("String() = %q", s.String())
	}
}

func TestApply_leaves_GOGC_and_GOMEMLIMIT_from_the_environment(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "50") // the runtime read GOGC at start: set what it would have
	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(300 << 20)
	s, err := apply(limitOf(1 << 30))
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 50 || s.Percent != 50 || !s.FromEnv {
		t.Errorf("GC percent %d, settings %+v; want GOGC=50 left alone", got, s)
	}
	if got := debug.SetMemoryLimit(-1); got != 300<<20 || s.LimitFrom != "GOMEMLIMIT" {
		t.Errorf("memory limit %d, settings %+v; want GOMEMLIMIT's 300 MiB left alone", got, s)
	}
}

func TestApply_reports_a_cgroup_it_cannot_read(t *testing.T) {
	restore(t)
	unsetenv(t, "GOGC", "GOMEMLIMIT", "AUTOMEMLIMIT")
	s, err := apply(func() (uint64, error) { return 0, memlimit.ErrNoCgroup })
	if err == nil || !strings.Contains(err.Error(), "cgroup") {
		t.Errorf("err = %v, want one about the cgroup", err)
	}
	if got := debug.SetGCPercent(100); got != Percent || s.Percent != Percent {
		t.Errorf("GC percent %d; want %d set all the same", got, Percent)
	}
}

// unsetenv unsets names for the test (t.Setenv first, so they come back).
func unsetenv(t *testing.T, names ...string) {
	for _, n := range names {
		t.Setenv(n, "")
		if err := os.Unsetenv(n); err != nil {
			t.Fatal(err)
		}
	}
}
