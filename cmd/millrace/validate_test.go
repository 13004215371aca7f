package main_test

import (
	"strings"
	"testing"
)

func TestValidate_exit_codes_and_the_count_line(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, src string
		args            []string
		code            int
		stdout          string
		stderr          []string // lines, each a prefix
	}{
		{"a valid file", "ok.yaml", "version: 1\npipelines: [{name: p, input: p.in, stages: [{name: s, filter: log}]}]\n",
			nil, 0, "ok.yaml: ok (1 pipeline, 1 stage, 2 topics)", nil},
		{"only ~", "tilde.yaml", "~\n", nil, 1, "",
			[]string{"tilde.yaml:1:1: file is empty", "tilde.yaml: 1 problem"}},
		{"only a tag", "tag.yaml", "--- !\n", nil, 1, "",
			[]string{"tag.yaml:1:1: file is empty", "tag.yaml: 1 problem"}},
		{"a bare - stage", "item.yaml", "version: 1\npipelines:\n  - name: p\n    input: p.in\n    stages:\n      -\n", nil, 1, "",
			[]string{"item.yaml:6:8: stages: item 1 is empty: want a mapping", "item.yaml: 1 problem"}},
		{"two problems", "two.yaml", "version: 2\npipelines: [~]\n", nil, 1, "",
			[]string{"two.yaml:1:10: unsupported version 2", "two.yaml:2:13: pipelines: item 1 is empty", "two.yaml: 2 problems"}},
		{"an argument", "ok.yaml", "", []string{"extra"}, 2, "", []string{"millrace: unknown command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.src != "" {
				writeFile(t, dir, tt.file, tt.src)
			}
			out, stderr, code := cli(t, dir, "", append([]string{"validate", "-f", tt.file}, tt.args...)...)
			if code != tt.code || !strings.HasPrefix(out, tt.stdout) {
				t.Fatalf("exit %d, want %d; stdout %q; stderr:\n%s", code, tt.code, out, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if stderr == "" {
				lines = nil
			}
			if len(lines) < len(tt.stderr) || tt.code == 1 && len(lines) != len(tt.stderr) {
				t.Fatalf("stderr:\n%s\nwant lines starting:\n%s", stderr, strings.Join(tt.stderr, "\n"))
			}
			for i, w := range tt.stderr {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d:\n got  %s\n want %s…", i+1, lines[i], w)
				}
			}
			if tt.code == 1 && !strings.HasSuffix(lines[len(lines)-1], " problem") && !strings.HasSuffix(lines[len(lines)-1], " problems") {
				t.Errorf("the last line should count the problems: %s", lines[len(lines)-1])
			}
		})
	}
}
