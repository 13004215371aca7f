package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check a pipelines file and report every problem",
		Long: `Check the pipelines file: YAML syntax, unknown keys, missing fields, names,
topics, filter names and each stage's filter config against the filter's spec.
Every problem is printed as file:line:col: message; the exit code is 1 if there
is any, 0 if the file is valid.`,
		Example: `  millrace validate
  millrace validate -f examples/etl.yaml`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			f, err := g.load()
			if err != nil {
				return err
			}
			plan := f.Plan()
			stages, _ := plan.Stages()
			fmt.Fprintf(g.stdout, "%s: ok (%d pipelines, %d stages, %d topics)\n",
				g.file, len(plan.Pipelines), len(stages), len(plan.Topics()))
			return nil
		},
	}
}
