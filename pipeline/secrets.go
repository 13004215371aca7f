package pipeline

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Values from the environment are often secrets (a password in a broker
// address, a token in an exec command), so no problem ever shows one. A
// problem about a value that was interpolated shows the value as it is
// written in the file, with its ${NAME} references: messages made here take
// values through [problems.shown]; messages made elsewhere (a filter's
// config checks, a dedup key's compiler) go through [problems.scrubbed].

// source is the text of a scalar that had ${…} references before they
// were replaced, and the values they were replaced with.
type source struct {
	text  string // as written: "${HOST}:9092"
	value string // as decoded: "db.internal:9092"
	vars  []envVar
	refs  bool // it had a ${…} reference (not only $${ escapes)
}

// envVar is one value read from the environment.
type envVar struct{ name, value string }

func (p *problems) remember(at Pos, src source) {
	if p.sources == nil {
		p.sources = map[Pos]source{}
	}
	p.sources[at] = src
}

// shown is how a problem shows value, the value of the scalar at at: as
// written in the file when it was interpolated, else value itself (a
// number or duration formatted by the caller).
func (p *problems) shown(at Pos, value string) string {
	if src, ok := p.sources[at]; ok {
		return src.text
	}
	return value
}

// quoted is shown, quoted like %q.
func (p *problems) quoted(at Pos, value string) string {
	return strconv.Quote(p.shown(at, value))
}

// sourcesIn returns the interpolated scalars under n.
func (p *problems) sourcesIn(n *yaml.Node) []source {
	var out []source
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if src, ok := p.sources[pos(n)]; ok && n.Kind == yaml.ScalarNode {
			out = append(out, src)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return out
}

// scrubbed returns msg, a message made by code that knows nothing of the
// environment about values that may come from srcs, with each
// interpolated value replaced by its text in the file. If a word of a
// value from the environment is still in it (a filter quoting part of a
// program, say), the message is withheld.
func scrubbed(msg string, srcs []source) string {
	if len(srcs) == 0 {
		return msg
	}
	srcs = slices.Clone(srcs)
	slices.SortFunc(srcs, func(a, b source) int { return len(b.value) - len(a.value) })
	var names []string
	for _, src := range srcs {
		msg = replaceValue(msg, src.value, src.text)
		for _, v := range src.vars {
			msg = replaceValue(msg, v.value, "${"+v.name+"}")
		}
	}
	for _, src := range srcs {
		for _, v := range src.vars {
			for _, w := range words(v.value) {
				if strings.Contains(msg, w) {
					names = append(names, "${"+v.name+"}")
				}
			}
		}
	}
	if len(names) == 0 {
		return msg
	}
	slices.Sort(names)
	return fmt.Sprintf("refused a value from %s (the message is not shown: it would show part of the value)",
		strings.Join(slices.Compact(names), ", "))
}

// replaceValue replaces value in msg, as it is and as %q would quote it,
// with text.
func replaceValue(msg, value, text string) string {
	if value == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, value, text)
	if q := strconv.Quote(value); q[1:len(q)-1] != value {
		t := strconv.Quote(text)
		msg = strings.ReplaceAll(msg, q[1:len(q)-1], t[1:len(t)-1])
	}
	return msg
}

// words are the runs of three or more letters and digits in s.
func words(s string) []string {
	return slices.DeleteFunc(strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}), func(w string) bool { return len(w) < 3 })
}

// sourcesAt returns the interpolated scalar at at, if it is one.
func (p *problems) sourcesAt(at Pos) []source {
	if src, ok := p.sources[at]; ok {
		return []source{src}
	}
	return nil
}

// pipelineName and stageID show the names of a pipeline and a stage as
// problems do: as written in the file.
func (p *problems) pipelineName(pl *Pipeline) string { return p.shown(pl.Of("name"), pl.Name) }

func (p *problems) stageName(st *Stage) string { return p.shown(st.Of("name"), st.Name) }

func (p *problems) stageID(pl *Pipeline, st *Stage) string {
	return p.pipelineName(pl) + "/" + p.stageName(st)
}

// shownFloat is shown for a number, formatted like %g.
func (p *problems) shownFloat(at Pos, v float64) string {
	return p.shown(at, strconv.FormatFloat(v, 'g', -1, 64))
}
