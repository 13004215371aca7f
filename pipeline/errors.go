package pipeline

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a pipelines file.
type Problem struct {
	File    string
	Pos     Pos
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Pos.Line, p.Pos.Column, p.Message)
}

// Problems is every problem found in a file, in file order. It is the error
// Load returns when the file is not valid; its text is one
// `file:line:col: message` line per problem.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) sorted() Problems {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Pos, ps[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return ps
}

// problems collects problems for one file.
type problems struct {
	file string
	list Problems
	// sources are the scalars that were interpolated, by position.
	sources map[Pos]source
	// warnings are things that work but are likely a mistake.
	warnings Problems
	// secretEnv are the variables the file's secrets are read from (see
	// File.SecretEnv), for the filters' configs.
	secretEnv []string
}

// warn records a warning: a setting that works but is likely a mistake
// (or unsafe). A warning does not make the file invalid.
func (p *problems) warn(at Pos, format string, args ...any) {
	p.warnings = append(p.warnings, Problem{File: p.file, Pos: at, Message: "warning: " + fmt.Sprintf(format, args...)})
}

// add records a problem, unless one is already recorded at the same
// position: a value that failed to decode is not reported again by the
// validation that follows.
func (p *problems) add(at Pos, format string, args ...any) {
	for _, q := range p.list {
		if q.Pos == at {
			return
		}
	}
	p.list = append(p.list, Problem{File: p.file, Pos: at, Message: fmt.Sprintf(format, args...)})
}
