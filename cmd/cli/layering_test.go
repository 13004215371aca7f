package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/transport"
)

// TestCLI_talks_to_Kafka_only_through_kafkaops: no file of the command
// line imports sarama (kafkaops and transport make the clients), and none
// spells a header name millrace writes: they are constants of filters and
// transport (DESIGN.md §2, §3).
func TestCLI_talks_to_Kafka_only_through_kafkaops(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	wire := map[string]bool{transport.MessageIDHeader: true, filters.HeaderJob: true, filters.HeaderStage: true,
		filters.HeaderAttempt: true, filters.HeaderReplays: true, filters.HeaderTruncated: true, filters.HeaderDedup: true}
	for _, h := range filters.FailureHeaders() {
		wire[h] = true
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, "github.com/IBM/sarama") {
				t.Errorf("%s imports %s: use kafkaops", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && wire[s] {
					t.Errorf("%s: the header name %s spelt out: use its constant", fset.Position(lit.Pos()), lit.Value)
				}
			}
			return true
		})
	}
}
