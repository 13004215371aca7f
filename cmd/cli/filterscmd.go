package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/filters"
)

func newFiltersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "filters",
		Short: "List the registered filters and print their reference",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("filters needs a subcommand: list or docs")
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the registered filters with a one-line summary",
		Example: "  millrace filters list",
		Args:    cobra.NoArgs,
	}
	command(g, list, func([]string) ([]filters.Spec, error) { return filters.All(), nil },
		func(_ context.Context, specs []filters.Spec) error {
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			for _, s := range specs {
				fmt.Fprintf(w, "%s\t%s\n", s.Name, s.Summary)
			}
			return w.Flush()
		})
	docs := &cobra.Command{
		Use:   "docs [NAME...]",
		Short: "Print the Markdown reference of filters (all, or those named)",
		Long: `Print the reference of each filter, rendered from its spec: description, every
config key with its type, default and meaning, and an example.`,
		Example: "  millrace filters docs jq\n  millrace filters docs > docs/filters.md",
	}
	command(g, docs, filterSpecs, func(_ context.Context, specs []filters.Spec) error {
		fmt.Fprint(g.stdout, "# Filters\n\n")
		for _, s := range specs {
			fmt.Fprint(g.stdout, s.Markdown())
		}
		return nil
	})
	cmd.AddCommand(list, docs)
	return cmd
}

// filterSpecs returns the specs of the filters named, or of all.
func filterSpecs(names []string) ([]filters.Spec, error) {
	if len(names) == 0 {
		return filters.All(), nil
	}
	var specs []filters.Spec
	for _, n := range names {
		s, ok := filters.Lookup(n)
		if !ok {
			var known []string
			for _, s := range filters.All() {
				known = append(known, s.Name)
			}
			return nil, usagef("no filter %q (known filters: %s)", n, strings.Join(known, ", "))
		}
		specs = append(specs, s)
	}
	return specs, nil
}
