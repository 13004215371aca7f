package filters

import (
	"fmt"
	"sort"
	"sync"
)

// Registry holds filter specs by name. Pipelines name filters from one: the
// default registry, which init functions fill through the package-level
// [Register] and [MustRegister], unless told otherwise (tests give a
// Registry value of their own to see only their filters). The zero value
// is an empty registry ready to use; a Registry is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	specs map[string]Spec
}

// defaultRegistry is what the package-level functions use.
var defaultRegistry Registry

// DefaultRegistry returns the registry that [Register], [MustRegister],
// [Lookup] and [All] use: the one the built-in filters and yours register
// with from init functions, and that millrace's commands read.
func DefaultRegistry() *Registry { return &defaultRegistry }

// Register adds a filter after checking its spec (see [Spec.Validate]). A
// second filter with the same name is an error.
func (r *Registry) Register(s Spec) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("register filter: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[s.Name]; dup {
		return fmt.Errorf("register filter: %q is already registered", s.Name)
	}
	if r.specs == nil {
		r.specs = map[string]Spec{}
	}
	r.specs[s.Name] = s
	return nil
}

// MustRegister is [Registry.Register] for init functions: it panics on
// error.
func (r *Registry) MustRegister(s Spec) {
	if err := r.Register(s); err != nil {
		panic(err)
	}
}

// Lookup returns the spec of the filter registered under name.
func (r *Registry) Lookup(name string) (Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[name]
	return s, ok
}

// All returns every registered spec, sorted by name.
func (r *Registry) All() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Spec, 0, len(r.specs))
	for _, s := range r.specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Register adds a filter to the default registry. A second filter with the
// same name is an error.
func Register(s Spec) error { return defaultRegistry.Register(s) }

// MustRegister is [Register] for init functions: it panics on error.
func MustRegister(s Spec) { defaultRegistry.MustRegister(s) }

// Lookup returns the spec of the filter registered under name in the
// default registry.
func Lookup(name string) (Spec, bool) { return defaultRegistry.Lookup(name) }

// All returns every spec of the default registry, sorted by name.
func All() []Spec { return defaultRegistry.All() }
