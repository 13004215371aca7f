package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
)

func newFiltersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "filters",
		Short: "List the registered filters and print their reference",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Short:   "List the registered filters with a one-line summary",
		Example: "  millrace filters list",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			for _, s := range filters.All() {
				fmt.Fprintf(w, "%s\t%s\n", s.Name, s.Summary)
			}
			return w.Flush()
		},
	}, &cobra.Command{
		Use:   "docs [NAME...]",
		Short: "Print the Markdown reference of filters (all, or those named)",
		Long: `Print the reference of each filter, rendered from its spec: description, every
config key with its type, default and meaning, and an example.`,
		Example: "  millrace filters docs jq\n  millrace filters docs > docs/filters.md",
		RunE: func(_ *cobra.Command, names []string) error {
			specs := filters.All()
			if len(names) > 0 {
				specs = specs[:0]
				for _, n := range names {
					s, ok := filters.Lookup(n)
					if !ok {
						return fmt.Errorf("no filter %q (see 'millrace filters list')", n)
					}
					specs = append(specs, s)
				}
			}
			fmt.Fprint(g.stdout, "# Filters\n\n")
			for _, s := range specs {
				fmt.Fprint(g.stdout, s.Markdown())
			}
			return nil
		},
	})
	return cmd
}
