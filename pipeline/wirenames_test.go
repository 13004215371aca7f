package pipeline_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
)

// wireFragment matches string literals that build a topic or group name
// millrace derives: ".quarantine", ".retry.%d", ".dedup", ".jobs",
// ".jobs.status", "millrace." and the like.
var wireFragment = regexp.MustCompile(`^\.(quarantine|retry|dedup|jobs)\b|\.(quarantine|dedup|jobs)$|\.jobs\.status$|\.retry\.%|^millrace\.`)

func TestWireNames_are_built_only_in_package_pipeline(t *testing.T) {
	root := ".."
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case ".git", "pipeline", "internal/kfake", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		// Tests spell wire names on purpose: they pin the wire format.
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				// millrace.dev/… are Kubernetes label keys (deploy/), no wire names.
				if s, err := strconv.Unquote(lit.Value); err == nil && wireFragment.MatchString(s) && !strings.HasPrefix(s, "millrace.dev/") {
					found = append(found, fset.Position(lit.Pos()).String()+": "+lit.Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("wire names built outside pipeline/names.go (use its functions):\n%s", strings.Join(found, "\n"))
	}
}

func TestNamePattern_is_the_one_filter_names_follow(t *testing.T) {
	names := []string{"orders", "a.b-c_d", "x9", "9x", "a..b", "-a", "a-", "A", "a b", "a__b", "é", ""}
	newFilter := func(filters.Config) (filters.Filter, error) {
		return filters.Func(func(context.Context, *filters.Message) ([]*filters.Message, error) { return nil, nil }), nil
	}
	for _, name := range names {
		stage := pipeline.NamePattern.MatchString(name)
		err := filters.Spec{Name: name, New: newFilter}.Validate()
		if stage != (err == nil) {
			t.Errorf("%q: a stage name: %v, a filter name: %v", name, stage, err)
		}
	}
}
