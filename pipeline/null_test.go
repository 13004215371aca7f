package pipeline_test

import "testing"

const emptyFile = "1:1: file is empty: it needs `version: 1` and a list of `pipelines:`"

func TestParse_reports_null_documents_and_items_at_real_positions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"an empty file", "", []string{emptyFile}},
		{"only a comment", "# nothing yet\n", []string{emptyFile}},
		{"only ~", "~\n", []string{emptyFile}},
		{"only null", "null\n", []string{emptyFile}},
		{"only a tag", "--- !\n", []string{emptyFile}},
		{"only a document marker", "---\n", []string{emptyFile}},
		{"a bare - stage", `version: 1
pipelines:
  - name: p
    input: p.in
    stages:
      - {name: a, filter: log}
      -
`, []string{`7:8: stages: item 2 is empty: want a mapping`}},
		{"a pipeline that is not a mapping (found by FuzzParse)", "pipelines:\n- 0\n", []string{
			`1:1: missing key "version": set ` + "`version: 1`",
			`2:3: pipelines: want a mapping, got "0"`,
		}},
		{"a ~ pipeline", `version: 1
pipelines: [~]
`, []string{`2:13: pipelines: item 1 is empty: want a mapping`}},
		{"a null priority entry, tier and broker", `version: 1
broker: {brokers: [null]}
pipelines:
  - name: p
    input: p.in
    priority: [~]
    retry: {tiers: [1s, ~]}
    stages: [{name: a, filter: log}]
`, []string{
			`2:20: brokers: item 1 is empty: want a string`,
			`6:16: priority: item 1 is empty: want a mapping`,
			`7:25: tiers: item 2 is empty: want a duration like 30s or 5m`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, noEnv, tt.want) })
	}
}
