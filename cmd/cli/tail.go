package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/kafkaops"
)

// tailOptions are what tail reads and how it prints.
type tailOptions struct {
	kafkaops.TailOptions
	json bool
}

func newTailCmd(g *globals) *cobra.Command {
	var (
		o  tailOptions
		cf clusterFlags
	)
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print the records of a topic with their keys and headers",
		Long: `Print the records of a topic, from every partition, with partition, offset,
key and headers. By default it prints records that arrive from now on and keeps
going until interrupted; --from-beginning starts at the oldest record, -n stops
after N records and --exit stops once the end of every partition is reached.
It reads outside any consumer group, so it never moves a stage's offsets.

` + recordJSONHelp + `

` + recordTextHelp,
		Example: `  millrace tail orders.confirmed --from-beginning
  millrace tail orders.confirmed --from-beginning --exit --json | jq -r .payload
  millrace tail orders.confirmed --from-beginning --exit --json | jq '.payload | fromjson | .total'
  millrace tail images.thumbnails -n 1`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("tail takes one TOPIC, for example: millrace tail orders.confirmed --from-beginning")
			}
			return nil
		},
	}
	parse := func(args []string) (tailOptions, error) {
		if o.Limit < 0 {
			return o, usagef("--limit %d: want 0 (no limit) or more", o.Limit)
		}
		plan, err := g.loadOptional()
		if err != nil {
			return o, err
		}
		cluster, err := cf.cluster(g, plan)
		if err != nil {
			return o, err
		}
		o.Cluster, o.Topic = cluster, args[0]
		return o, nil
	}
	do := func(ctx context.Context, o tailOptions) error {
		ctx, stop := signalContext(ctx, g.log, stopping{again: "exiting at once"})
		defer stop()
		o.Record = func(m *kafkaops.Record) {
			if o.json {
				fmt.Fprintln(g.stdout, string(recordJSON(m)))
			} else {
				fmt.Fprintln(g.stdout, recordText(m))
			}
		}
		return kafkaops.Tail(ctx, o.TailOptions)
	}
	command(g, cmd, parse, do)
	cmd.Flags().BoolVar(&o.FromBeginning, "from-beginning", false, "start at the oldest record of each partition")
	cmd.Flags().IntVarP(&o.Limit, "limit", "n", 0, "stop after this many records (0: no limit)")
	cmd.Flags().BoolVarP(&o.StopAtEnd, "exit", "e", false, "stop at the end of every partition")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object per record, every byte kept (see above)")
	cf.add(cmd)
	return cmd
}
