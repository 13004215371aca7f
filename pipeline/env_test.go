package pipeline_test

import "testing"

func TestParse_expands_environment_only_in_values_never_in_keys(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"KEY": "description", "PROGRAM": "program", "TOPIC": "p.in", "JQ": "."}[k]
		return v, ok
	}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"a key of the model", `version: 1
pipelines:
  - name: p
    input: ${TOPIC}
    ${KEY}: text
    stages: [{name: a, filter: log}]
`, []string{`5:5: unknown key "${KEY}" in pipeline (known keys: name, description, input`}},
		{"a key of a filter config", `version: 1
pipelines:
  - name: p
    input: ${TOPIC}
    stages: [{name: a, filter: jq, config: {"${PROGRAM}": .}}]
`, []string{
			`5:44: pipeline "p" stage "a": filter "jq" needs config key "program"`,
			`5:45: pipeline "p" stage "a": unknown config key "${PROGRAM}" for filter "jq"`,
		}},
		{"values in lists and nested mappings", `version: 1
broker: {brokers: ["${HOST:-localhost}:9092"]}
pipelines:
  - name: p
    input: ${TOPIC}
    priority: [{topic: "${TOPIC}.high"}]
    stages: [{name: a, filter: jq, config: {program: "${JQ}"}}]
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsIn(t, tt.src, env)
			if len(got) != len(tt.want) {
				t.Fatalf("problems:\n%v\nwant %d starting:\n%v", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if len(got[i]) < len(w) || got[i][:len(w)] != w {
					t.Errorf("problem %d:\n got  %s\n want %s…", i+1, got[i], w)
				}
			}
		})
	}
}
