package filters_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/filters"
)

func names(specs []filters.Spec) []string {
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		out = append(out, s.Name)
	}
	return out
}

func TestRegistry_holds_its_own_filters(t *testing.T) {
	var r filters.Registry // the zero value is ready
	for _, name := range []string{"iso-b", "iso-a"} {
		if err := r.Register(testSpec(name)); err != nil {
			t.Fatal(err)
		}
	}
	if got := names(r.All()); !slices.Equal(got, []string{"iso-a", "iso-b"}) {
		t.Errorf("All() = %q, want both, sorted", got)
	}
	if s, ok := r.Lookup("iso-a"); !ok || s.Name != "iso-a" {
		t.Errorf("Lookup(iso-a) = %q, %v", s.Name, ok)
	}
	if _, ok := filters.Lookup("iso-a"); ok {
		t.Error("a filter registered in a Registry value is in the global registry")
	}
	if slices.Contains(names(filters.All()), "iso-a") {
		t.Error("filters.All() lists a filter of another registry")
	}
	var other filters.Registry
	if _, ok := other.Lookup("iso-a"); ok || len(other.All()) != 0 {
		t.Error("a second registry sees the first one's filters")
	}
}

func TestRegistry_rejects_duplicates_and_bad_specs(t *testing.T) {
	wrongDefault := testSpec("wrong-default")
	wrongDefault.Fields[1].Default = "seven"
	noNew := testSpec("no-new")
	noNew.New = nil
	tests := []struct {
		name string
		spec filters.Spec
		want string
	}{
		{"duplicate", testSpec("dup"), `"dup" is already registered`},
		{"bad name", testSpec("Bad Name"), `filter name "Bad Name" must match`},
		{"wrong default type", wrongDefault, `default of field "i" is string, want int`},
		{"no constructor", noNew, "New is nil"},
	}
	var r filters.Registry
	r.MustRegister(testSpec("dup"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Register(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register: %v, want an error with %q", err, tt.want)
			}
			defer func() {
				if v := recover(); v == nil || !strings.Contains(v.(error).Error(), tt.want) {
					t.Fatalf("MustRegister panicked with %v, want %q", v, tt.want)
				}
			}()
			r.MustRegister(tt.spec)
		})
	}
	if got := names(r.All()); !slices.Equal(got, []string{"dup"}) {
		t.Errorf("after the failures All() = %q, want only dup", got)
	}
}

func TestRegistry_global_functions_use_the_default_registry(t *testing.T) {
	filters.MustRegister(testSpec("global-x"))
	if _, ok := filters.DefaultRegistry().Lookup("global-x"); !ok {
		t.Fatal("filters.MustRegister did not register in DefaultRegistry()")
	}
	if err := filters.DefaultRegistry().Register(testSpec("global-y")); err != nil {
		t.Fatal(err)
	}
	if _, ok := filters.Lookup("global-y"); !ok || !slices.Contains(names(filters.All()), "global-y") {
		t.Fatal("filters.Lookup and All do not see DefaultRegistry()")
	}
}

func TestRegistry_is_safe_for_concurrent_use(t *testing.T) {
	var r filters.Registry
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			name := "c" + string(rune('a'+i))
			if err := r.Register(testSpec(name)); err != nil {
				t.Error(err)
			}
			r.Lookup(name)
			r.All()
		})
	}
	wg.Wait()
	if n := len(r.All()); n != 8 {
		t.Fatalf("%d filters registered, want 8", n)
	}
}
