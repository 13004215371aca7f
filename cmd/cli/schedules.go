package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/internal/scheduler"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

func newSchedulesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List the pipelines' schedules, or fire one now",
		Long: `List the schedules of the pipelines (schedules: in pipelines.yaml), or fire one
on demand.

  schedules ls       each schedule: when it fires next, its last tick, who leads
  schedules trigger  fire a schedule now, with a fresh job id

'millrace run' fires the schedules: every run process joins consumer group
millrace.scheduler, and the one given partition 0 of topic millrace.schedules
leads and is the only one that fires, so a schedule fires once per tick however
many processes run (see README: Schedules).`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("schedules needs a subcommand: ls or trigger")
		},
	}
	cmd.AddCommand(newSchedulesLsCmd(g), newSchedulesTriggerCmd(g))
	return cmd
}

// schedulesLsOptions say what schedules ls lists, and how it prints.
type schedulesLsOptions struct {
	plan    *pipeline.Plan
	cluster kafkaops.Cluster
	next    int
	json    bool
}

const schedulesLsHelp = `List every schedule of the pipelines file: when it fires (its cron spec and
time zone, or its interval), its next fire times, its last tick as the
scheduler recorded it in topic millrace.schedules (fired, pending, skipped or
disabled, with the job id), and which process leads the scheduler group — the
one that fires. Next fire times are scheduled times in the schedule's time
zone; a schedule's jitter, if any, delays each by up to that much.

It reads outside any consumer group and changes nothing.`

func newSchedulesLsCmd(g *globals) *cobra.Command {
	var (
		o  schedulesLsOptions
		cf clusterFlags
	)
	cmd := &cobra.Command{
		Use:   "ls [--json] [--next N]",
		Short: "List the schedules: next fire times, last tick, leader",
		Long:  schedulesLsHelp,
		Example: `  millrace schedules ls
  millrace schedules ls --json --next 10`,
		Args: noArgs,
	}
	parse := func([]string) (schedulesLsOptions, error) {
		if o.next < 0 || o.next > 1000 {
			return o, usagef("--next %d: want 0 to 1000", o.next)
		}
		f, err := g.load()
		if err != nil {
			return o, err
		}
		o.plan = f.Plan()
		if len(o.plan.Schedules()) == 0 {
			return o, usagef("no pipeline of %s has schedules: (see README: Schedules)", g.file)
		}
		o.cluster, err = cf.cluster(g, o.plan)
		return o, err
	}
	do := func(ctx context.Context, o schedulesLsOptions) error {
		client, err := o.cluster.Connect(ctx)
		if err != nil {
			return err
		}
		defer client.Close()
		l, err := scheduler.Describe(ctx, client, o.plan, time.Now(), o.next)
		if err != nil {
			return err
		}
		if o.json {
			return writeJSON(g.stdout, l)
		}
		printSchedules(g.stdout, l, o.plan.Scheduler.Group, o.next)
		return nil
	}
	command(g, cmd, parse, do)
	fl := cmd.Flags()
	fl.BoolVar(&o.json, "json", false, "print the listing as a JSON document")
	fl.IntVar(&o.next, "next", 3, "how many next fire times to show per schedule")
	cf.add(cmd)
	return cmd
}

// printSchedules prints a listing as text: a block per schedule (with up
// to next fire times), then the leader.
func printSchedules(w io.Writer, l scheduler.Listing, group string, next int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, in := range l.Schedules {
		fmt.Fprintf(tw, "%s\t%s\n", in.ID, in.Timing)
		switch {
		case !in.Enabled:
			fmt.Fprintf(tw, "  next\tnever: enabled: false\n")
		case next > 0:
			var times []string
			for _, t := range in.Next {
				times = append(times, t.Format(time.RFC3339))
			}
			fmt.Fprintf(tw, "  next\t%s\n", cmp.Or(strings.Join(times, "  "), "none: the cron spec has no tick left"))
		}
		if st := in.Last; st != nil {
			loc := time.UTC
			if len(in.Next) > 0 {
				loc = in.Next[0].Location()
			}
			last := fmt.Sprintf("%s %s", st.Tick.In(loc).Format(time.RFC3339), st.State)
			if st.Job != "" {
				last += ", job " + st.Job
			}
			fmt.Fprintf(tw, "  last\t%s (by %s)\n", last, st.By)
		} else {
			fmt.Fprintf(tw, "  last\tnever fired\n")
		}
	}
	tw.Flush()
	switch ld := l.Leader; {
	case ld != nil:
		fmt.Fprintf(w, "leader: %s (client %s at %s); %d %s in group %s\n", cmp.Or(ld.Process, "a process"), ld.ClientID,
			strings.TrimPrefix(ld.Host, "/"), l.Members, pluralES(l.Members, "process"), group)
	case l.Members > 0:
		fmt.Fprintf(w, "leader: none right now (group %s is rebalancing; %d %s in it)\n", group, l.Members,
			pluralES(l.Members, "process"))
	default:
		fmt.Fprintf(w, "leader: none: no 'millrace run' or 'millrace scheduler' process is in group %s, so no schedule fires\n", group)
	}
	if len(l.NotFired) > 0 {
		fmt.Fprintf(w, "warning: the leader's pipelines file does not have %s: another file's processes lead group %s, "+
			"so they do not fire; give each file its own scheduler: {group, topic}\n", strings.Join(l.NotFired, ", "), group)
	}
}

// pluralES is plural for words that take -es.
func pluralES(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "es"
}

// schedulesTriggerOptions say which schedule schedules trigger fires.
type schedulesTriggerOptions struct {
	plan     *pipeline.Plan
	schedule *pipeline.SchedulePlan
	cluster  kafkaops.Cluster
}

const schedulesTriggerHelp = `Fire schedule PIPELINE/NAME now, on demand: send its pipeline's input the
record a tick at this moment would make ($scheduled_time is now), with a
fresh job id, and print the job id once the broker acknowledged it.

It does not wait for the schedule's leader, its overlap setting or its next
tick, and it does not change the schedule's ticks: they go on as before. It
fires a disabled schedule too. On a pipeline with results:, follow the job
with 'millrace jobs status ID --wait 5m'.

Exit codes: 0 sent; 1 not sent (Kafka refused it, or the payload or key
program failed); 2 bad usage.`

func newSchedulesTriggerCmd(g *globals) *cobra.Command {
	var cf clusterFlags
	cmd := &cobra.Command{
		Use:     "trigger PIPELINE/NAME",
		Short:   "Fire a schedule now, with a fresh job id",
		Long:    schedulesTriggerHelp,
		Example: `  millrace schedules trigger nightly-report/daily`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("schedules trigger takes one schedule, as PIPELINE/NAME: see millrace schedules ls")
			}
			return nil
		},
	}
	parse := func(args []string) (schedulesTriggerOptions, error) {
		var o schedulesTriggerOptions
		f, err := g.load()
		if err != nil {
			return o, err
		}
		o.plan = f.Plan()
		if o.schedule, err = o.plan.Schedule(args[0]); err != nil {
			return o, usagef("%v", err)
		}
		o.cluster, err = cf.cluster(g, o.plan)
		return o, err
	}
	do := func(ctx context.Context, o schedulesTriggerOptions) error {
		client, err := o.cluster.Connect(ctx)
		if err != nil {
			return err
		}
		defer client.Close()
		cfg, err := o.plan.ProducerConfig()
		if err != nil {
			return err
		}
		pub, err := transport.NewPublisher(o.cluster.Brokers, cfg)
		if err != nil {
			return err
		}
		defer pub.Close()
		id, err := scheduler.Trigger(client, pub, g.log, o.plan, o.schedule, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(g.stdout, id)
		return nil
	}
	command(g, cmd, parse, do)
	cf.add(cmd)
	return cmd
}
