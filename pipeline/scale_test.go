package pipeline_test

import (
	"testing"

	"github.com/millrace/millrace/pipeline"
)

func TestPlan_scale_and_resources_of_a_stage(t *testing.T) {
	src := `version: 1
pipelines:
  - name: p
    input: p.in
    partitions: 6
    stages:
      - name: a
        filter: log
        scale: {min: 0, max: 4, lag: 50}
        resources: {requests: {cpu: 250m, memory: 128Mi}, limits: {memory: 1Gi}}
      - {name: b, filter: log}
`
	f, err := pipeline.Parse("x.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	stages, _ := f.Plan().Stages()
	if got, want := stages[0].Scale, (pipeline.ScalePlan{Min: 0, Max: 4, Lag: 50}); got != want {
		t.Errorf("a: scale %+v, want %+v", got, want)
	}
	if got, want := stages[0].Resources, (pipeline.ResourcesPlan{RequestsCPU: "250m", RequestsMemory: "128Mi",
		LimitsMemory: "1Gi"}); got != want {
		t.Errorf("a: resources %+v, want %+v", got, want)
	}
	if got, want := stages[1].Scale, (pipeline.ScalePlan{Min: 1, Max: 6, Lag: pipeline.DefaultScaleLag}); got != want {
		t.Errorf("b: scale %+v, want the defaults %+v", got, want)
	}
}

func TestValidate_scale_and_resources(t *testing.T) {
	stage := func(block string) string {
		return "version: 1\npipelines:\n  - name: p\n    input: p.in\n    partitions: 4\n    stages:\n      - name: a\n        filter: log\n        " +
			block + "\n"
	}
	tests := []struct {
		name, src string
		want      []string
	}{
		{"max over the partitions", stage("scale: {max: 8}"), []string{
			`9:22: pipeline "p" stage "a": scale.max 8 is more than the 4 partitions of the stage's input: a consumer group ` +
				`gives each partition to one member, so replicas beyond 4 would sit idle (raise partitions, or lower max)`}},
		{"max under min", stage("scale: {min: 3, max: 2}"), []string{
			`9:30: pipeline "p" stage "a": scale.max 2 is less than scale.min 3`}},
		{"min below 0", stage("scale: {min: -1}"), []string{
			`9:22: pipeline "p" stage "a": scale.min must be between 0 and the input's 4 partitions, got -1`}},
		{"lag 0", stage("scale: {lag: 0}"), []string{
			`9:22: pipeline "p" stage "a": scale.lag must be between 1 and 100000000 records, got 0`}},
		{"a quantity that is none", stage("resources: {requests: {cpu: lots}}"), []string{
			`9:37: pipeline "p" stage "a": resources.requests.cpu "lots": want a Kubernetes quantity, like 250m or 0.5 (cpu), 256Mi or 1Gi (memory)`}},
		{"quantities", stage("resources: {requests: {cpu: 0.5, memory: 256Mi}, limits: {cpu: '2', memory: 1G}}"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, noEnv, tt.want) })
	}
}
