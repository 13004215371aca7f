package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/broker"
)

const schedulerHelp = `Fire the pipelines' schedules (schedules: in the pipelines file) and run
nothing else: no stage, no API. For a deployment where the scheduler runs on
its own (millrace deploy render makes it a Deployment of two), and the stages
run with 'millrace run --no-schedules'.

Like every run process, it joins consumer group millrace.scheduler (or the
file's scheduler.group) on the single-partition topic millrace.schedules, and
fires while it leads; run two for a standby that takes over within a session
timeout (defaults.session_timeout) when the leader dies. It creates the
file's topics first, as run does, and serves /healthz, /readyz and /metrics on
--admin-addr. See 'millrace schedules --help' and README: Schedules.

On SIGINT or SIGTERM it leaves the group (another process leads at once) and
exits 0.`

func newSchedulerCmd(g *globals) *cobra.Command {
	f := &runFlags{g: g, schedulesOnly: true, stopTimeout: 30 * time.Second}
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Fire the pipelines' schedules, and run nothing else",
		Long:  schedulerHelp,
		Example: `  millrace scheduler --brokers kafka-1:9092,kafka-2:9092
  millrace scheduler -f pipelines.yaml --admin-addr 127.0.0.1:9465`,
		Args: noArgs,
	}
	command(g, cmd, f.parse, f.do)
	fl := cmd.Flags()
	fl.IntVar(&f.port, "embedded-port", broker.DefaultPort, "port of the embedded broker on 127.0.0.1 when no brokers are configured (0: any free port)")
	fl.StringVar(&f.dataDir, "data-dir", broker.DefaultDir, "where the embedded broker keeps its data")
	fl.DurationVar(&f.connTimeout, "connect-timeout", 30*time.Second,
		"how long to wait for the brokers at start, logging each attempt; 0 waits until they answer (or a signal)")
	f.admin.add(cmd)
	return cmd
}
