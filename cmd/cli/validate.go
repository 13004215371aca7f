package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/pipeline"
)

func newValidateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a pipelines file and report every problem",
		Long: `Check the pipelines file: YAML syntax, unknown keys, missing fields, names,
topics, filter names and each stage's filter config against the filter's spec.
Every problem is printed as file:line:col: message; the exit code is 1 if there
is any, 0 if the file is valid.`,
		Example: `  millrace validate
  millrace validate -f pipelines.yaml`,
		Args: noArgs,
	}
	parse := func([]string) (*pipeline.File, error) { return g.load() }
	do := func(_ context.Context, f *pipeline.File) error {
		fmt.Fprint(g.stdout, validSummary(g.file, f.Plan()))
		return nil
	}
	return command(g, cmd, parse, do)
}

// validSummary is validate's line for a valid file.
func validSummary(file string, plan *pipeline.Plan) string {
	stages, _ := plan.Stages()
	schedules := ""
	if n := len(plan.Schedules()); n > 0 {
		schedules = fmt.Sprintf(", %d %s", n, plural(n, "schedule"))
	}
	np, ns, nt := len(plan.Pipelines), len(stages), len(plan.Topics())
	return fmt.Sprintf("%s: ok (%d %s, %d %s%s, %d %s)\n", file, np, plural(np, "pipeline"), ns, plural(ns, "stage"), schedules,
		nt, plural(nt, "topic"))
}
