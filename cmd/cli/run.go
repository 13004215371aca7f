package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/router"
)

func newRunCmd(g *globals) *cobra.Command {
	var (
		stages      []string
		port        int
		dataDir     string
		stopTimeout time.Duration
		connTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipelines' stages (all, or those chosen with --stage)",
		Long: `Run the stages of the pipelines in the pipelines file until SIGINT or SIGTERM.

Each stage reads its input topic in its own consumer group
(millrace.<pipeline>.<stage>), runs its filter and publishes the results to the
next stage's topic. Topics are created first if they do not exist. Run several
processes with --stage to scale one stage on its own: they split the stage's
partitions.

With no brokers configured (--brokers, $MILLRACE_BROKERS or broker.brokers in
the file), run starts an embedded broker on 127.0.0.1:9092 that keeps its data
in .millrace/broker. To share one embedded broker between processes, run
'millrace broker' and pass --brokers 127.0.0.1:9092 to each 'millrace run'.

If the brokers do not answer at start, run retries with backoff, logging each
attempt, for --connect-timeout (30s; 0 waits for ever) and then exits 1.

On SIGINT or SIGTERM it stops fetching, lets records in flight finish, publishes
their results, commits and exits 0 (bounded by --stop-timeout).`,
		Example: `  millrace run
  millrace run -f jobs.yaml --brokers kafka-1:9092,kafka-2:9092
  millrace run --brokers 127.0.0.1:9092 --stage orders/price --stage orders/confirm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			f, err := g.load()
			if err != nil {
				return err
			}
			plan := f.Plan()
			selected, err := plan.Stages(stages...)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context(), log)
			defer stop()
			brokers := g.resolveBrokers(plan)
			if len(brokers) == 0 {
				b, err := broker.Start(broker.Config{Port: port, DataDir: dataDir, Logger: log})
				if err != nil {
					return err
				}
				defer b.Close()
				log.Info("embedded broker listening", "addr", b.Addr(), "data_dir", dataDir)
				brokers = []string{b.Addr()}
			}
			if connTimeout == 0 {
				connTimeout = -1 // wait for ever
			}
			eng, err := router.NewEngine(router.EngineConfig{Plan: plan, Stages: selected, Brokers: brokers,
				StopTimeout: stopTimeout, ConnectTimeout: connTimeout, Logger: log})
			if err != nil {
				return err
			}
			if err := eng.Run(ctx); err != nil {
				return fmt.Errorf("run: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&stages, "stage", nil, "run only this stage, as pipeline/stage or pipeline (repeatable)")
	cmd.Flags().IntVar(&port, "embedded-port", broker.DefaultPort, "port of the embedded broker on 127.0.0.1 (0: any free port)")
	cmd.Flags().StringVar(&dataDir, "data-dir", broker.DefaultDir, "where the embedded broker keeps its data")
	cmd.Flags().DurationVar(&stopTimeout, "stop-timeout", 30*time.Second, "how long records in flight may take to finish on stop")
	cmd.Flags().DurationVar(&connTimeout, "connect-timeout", 30*time.Second,
		"how long to wait for the brokers at start, logging each attempt; 0 waits until they answer (or a signal)")
	return cmd
}

func newBrokerCmd(g *globals) *cobra.Command {
	var (
		port    int
		dataDir string
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run only the embedded Kafka-protocol broker",
		Long: `Run the embedded broker on its own until SIGINT or SIGTERM, so that several
'millrace run --stage ...' processes (and kcat, or any Kafka client) can share it.
Its data lives in --data-dir and survives a restart.`,
		Example: `  millrace broker &
  millrace run --brokers 127.0.0.1:9092 --stage orders/validate &
  millrace run --brokers 127.0.0.1:9092 --stage orders/price`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context(), log)
			defer stop()
			b, err := broker.Start(broker.Config{Port: port, DataDir: dataDir, Logger: log})
			if err != nil {
				return err
			}
			log.Info("embedded broker ready", "addr", b.Addr(), "data_dir", dataDir)
			<-ctx.Done()
			b.Close()
			log.Info("embedded broker stopped")
			return nil
		},
	}
	cmd.Flags().IntVar(&port, "port", broker.DefaultPort, "port on 127.0.0.1 (0: any free port)")
	cmd.Flags().StringVar(&dataDir, "data-dir", broker.DefaultDir, "where the broker keeps its data")
	return cmd
}
