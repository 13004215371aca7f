package pipeline_test

import (
	"testing"
)

// TestParse_reports_YAML_syntax_errors_where_they_are: yaml.v3 numbers the
// lines of parser errors from 0 and of scanner errors from 1, and gives no
// column; problems give the line the error is on (issue 12: an unclosed
// '[' on line 4 was reported at 3:1).
func TestParse_reports_YAML_syntax_errors_where_they_are(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unclosed [ on line 4", "version: 1\npipelines:\n  - name: a\n    stages: [a, b\n    input: x\n",
			`4:1: invalid YAML: did not find expected ',' or ']'`},
		{"unclosed { on line 2", "version: 1\nbroker: {brokers: [x]\n",
			`2:1: invalid YAML: did not find expected ',' or '}'`},
		// When the construct began on line 1, yaml.v3 gives the line of the
		// token it did not expect.
		{"unclosed [ on line 1", "version: [1\npipelines: []\n",
			`2:1: invalid YAML: did not find expected ',' or ']'`},
		{"a list item in a mapping on line 3", "version: 1\npipelines: []\n- x\n",
			`3:1: invalid YAML: did not find expected key`},
		// yaml.v3 gives the line where the list it was reading began.
		{"a key in a list that began on line 3", "version: 1\npipelines:\n  - name: a\n  input: x\n",
			`3:1: invalid YAML: did not find expected '-' indicator`},
		// The end of the input, after the last line's newline, is on the
		// last line.
		{"nothing after [ at the end", "version: 1\npipelines: [\n",
			`2:1: invalid YAML: did not find expected node content`},
		{"an unclosed quote on line 4", "# a comment\nversion: 1\npipelines:\n  - name: \"oops\n    input: x\n",
			`4:1: invalid YAML: found unexpected end of stream`},
		{"a tab on line 3", "version: 1\npipelines:\n\t- name: a\n",
			`3:1: invalid YAML: found character that cannot start any token`},
		{"a bad indent on line 2", "version: 1\n  pipelines: []\n",
			`2:1: invalid YAML: mapping values are not allowed in this context`},
		{"a scanner error on line 1", "version: a: b\n",
			`1:1: invalid YAML: mapping values are not allowed in this context`},
		{"an unknown anchor", "version: 1\npipelines:\n  - name: *nope\n",
			`3:11: invalid YAML: unknown anchor 'nope' referenced`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsIn(t, tt.src, noEnv)
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("problems %q, want [%q]", got, tt.want)
			}
		})
	}
}
