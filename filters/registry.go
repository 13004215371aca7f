package filters

import (
	"fmt"
	"sort"
	"sync"
)

var registry = struct {
	sync.RWMutex
	specs map[string]Spec
}{specs: map[string]Spec{}}

// Register adds a filter. A second filter with the same name is an error.
func Register(s Spec) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("register filter: %w", err)
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.specs[s.Name]; dup {
		return fmt.Errorf("register filter: %q is already registered", s.Name)
	}
	registry.specs[s.Name] = s
	return nil
}

// MustRegister is [Register] for init functions: it panics on error.
func MustRegister(s Spec) {
	if err := Register(s); err != nil {
		panic(err)
	}
}

// Lookup returns the spec of the filter registered under name.
func Lookup(name string) (Spec, bool) {
	registry.RLock()
	defer registry.RUnlock()
	s, ok := registry.specs[name]
	return s, ok
}

// All returns every registered spec, sorted by name.
func All() []Spec {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]Spec, 0, len(registry.specs))
	for _, s := range registry.specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
