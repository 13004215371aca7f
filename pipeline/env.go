package pipeline

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// interpolate replaces ${NAME} and ${NAME:-default} in every string scalar
// value under n with values from lookup; keys of mappings are left as
// written. "$${" stands for a literal "${". A variable that is unset and
// has no default is a problem.
func interpolate(n *yaml.Node, lookup func(string) (string, bool), p *problems) {
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.Contains(n.Value, "${") {
			src := source{text: n.Value}
			n.Value = expand(n, lookup, p, &src)
			if src.refs {
				src.value = n.Value
				p.remember(pos(n), src)
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			interpolate(n.Content[i], lookup, p)
		}
	default:
		for _, c := range n.Content {
			interpolate(c, lookup, p)
		}
	}
}

// expand returns the value of n with its references replaced, noting in
// src the variables it read from the environment.
func expand(n *yaml.Node, lookup func(string) (string, bool), p *problems, src *source) string {
	s := n.Value
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			p.add(pos(n), "unclosed ${ in %q (write $${ for a literal ${)", n.Value)
			return n.Value
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		src.refs = true
		if !validEnvName(name) {
			p.add(pos(n), "bad variable name %q in %q", name, n.Value)
		} else if v, ok := lookup(name); ok && (v != "" || !hasDef) {
			b.WriteString(v)
			src.vars = append(src.vars, envVar{name, v})
		} else if hasDef {
			b.WriteString(def)
		} else {
			p.add(pos(n), "environment variable %s is not set (use ${%s:-default} for a default)", name, name)
		}
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
