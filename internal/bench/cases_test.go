package main

import (
	"os"
	"testing"

	"github.com/millrace/millrace/pipeline"
)

// The pipelines files of the new cases parse, and give each stage the
// concurrency and max_in_flight the case asks for.
func TestPipelinesYAML(t *testing.T) {
	o := options{partitions: 8}
	for _, tc := range []struct {
		name                     string
		stages                   []stageYAML
		concurrency, maxInFlight int
	}{
		{"io-256", []stageYAML{ioStage(256)}, 256, 256},
		{"io-1", []stageYAML{ioStage(1)}, 1, 1},
		{"pipeline-jq", threeJQs, pipeline.DefaultConcurrency, pipeline.DefaultMaxInFlight},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := pipelinesYAML(o, "b1-"+tc.name, "in", "out", false, tc.stages...)
			f, err := pipeline.Parse("p.yaml", []byte(src), os.LookupEnv)
			if err != nil {
				t.Fatalf("parse:\n%s\n%v", src, err)
			}
			stages, err := f.Plan().Stages()
			if err != nil {
				t.Fatal(err)
			}
			if len(stages) != len(tc.stages) {
				t.Fatalf("%d stages, want %d:\n%s", len(stages), len(tc.stages), src)
			}
			for _, st := range stages {
				if st.Concurrency != tc.concurrency || st.MaxInFlight != tc.maxInFlight {
					t.Errorf("stage %s: concurrency %d, max_in_flight %d; want %d, %d", st.Name, st.Concurrency, st.MaxInFlight, tc.concurrency, tc.maxInFlight)
				}
			}
		})
	}
}
