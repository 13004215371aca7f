package deploy_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/millrace/millrace/deploy"
)

var update = flag.Bool("update", false, "rewrite deploy/examples with the render of ../pipelines.yaml (or set UPDATE=1)")

// examplesDir holds the render of the repository's pipelines.yaml with
// exampleOptions.
const examplesDir = "examples"

// TestExamples_are_the_render_of_the_repository_pipelines: deploy/examples
// holds exactly what `millrace deploy render` makes of pipelines.yaml:
//
//	millrace deploy render --image ghcr.io/millrace/millrace:latest --namespace millrace \
//	  --brokers kafka-0.kafka:9092,kafka-1.kafka:9092,kafka-2.kafka:9092 --out deploy/examples
//
// With -update (or UPDATE=1) it writes them instead.
func TestExamples_are_the_render_of_the_repository_pipelines(t *testing.T) {
	r, err := renderSource(t, repoPipelines, readRepoPipelines(t), nil, exampleOptions)
	if err != nil {
		t.Fatal(err)
	}
	files := r.m.Files()
	if *update || os.Getenv("UPDATE") == "1" {
		writeExamples(t, files)
		return
	}
	const again = "render them again: go test ./deploy -run TestExamples -update (or UPDATE=1 go test ./deploy)"
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		got, err := os.ReadFile(filepath.Join(examplesDir, f.Name))
		if err != nil {
			t.Errorf("%v: %s", err, again)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from the render of %s (- the file, + the render):\n%s\n%s",
				filepath.Join(examplesDir, f.Name), repoPipelines, lineDiff(string(got), string(f.Data)), again)
		}
	}
	entries, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(names, e.Name()) {
			t.Errorf("%s is no file of the render: remove it, or %s", filepath.Join(examplesDir, e.Name()), again)
		}
	}
}

func writeExamples(t *testing.T, files []deploy.File) {
	t.Helper()
	if err := os.RemoveAll(examplesDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(examplesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(examplesDir, f.Name), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d files to %s", len(files), examplesDir)
}

// lineDiff shows how b differs from a, line by line: the lines of a
// longest common subsequence as context (up to 2 around each change),
// the others with - (only in a) and + (only in b); at most 80 lines.
func lineDiff(a, b string) string {
	x, y := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	// lcs[i][j] is the length of the longest common subsequence of
	// x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
		n    int // line number in b (in a for '-')
	}
	var ops []line
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, line{' ', x[i], j + 1})
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, line{'+', y[j], j + 1})
			j++
		default:
			ops = append(ops, line{'-', x[i], i + 1})
			i++
		}
	}
	var out strings.Builder
	shown := 0
	for k, op := range ops {
		near := false
		for d := max(0, k-2); d <= min(len(ops)-1, k+2); d++ {
			near = near || ops[d].op != ' '
		}
		if !near {
			continue
		}
		if shown == 80 {
			out.WriteString("…\n")
			break
		}
		fmt.Fprintf(&out, "%c%5d %s", op.op, op.n, strings.TrimSuffix(op.text, "\n")+"\n")
		shown++
	}
	return out.String()
}
