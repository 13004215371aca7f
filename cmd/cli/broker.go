package cli

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/internal/admin"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/router"
)

// brokerOptions is what `millrace broker` runs with.
type brokerOptions struct {
	broker broker.Config
	admin  adminOptions
	plan   *pipeline.Plan // for the lag exporter; nil without a file
}

func newBrokerCmd(g *globals) *cobra.Command {
	var (
		port    int
		dataDir string
		af      adminFlags
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run only the embedded Kafka-protocol broker",
		Long: `Run the embedded broker on its own until SIGINT or SIGTERM, so that several
'millrace run --stage ...' processes (and kcat, or any Kafka client) can share it.
Its data lives in --data-dir and survives a restart.

It serves /healthz, /readyz and /metrics on --admin-addr (see 'millrace run
--help'). It reads the pipelines file (-f, default pipelines.yaml) when there
is one, and exports the consumer lag of its stages
(millrace_consumer_lag_records), so lag is visible while no stage runs; a
file that is not valid gets a warning ('millrace validate' says why) and no
lag, and the broker runs all the same.`,
		Example: `  millrace broker &
  millrace run --brokers 127.0.0.1:9092 --stage orders/validate &
  millrace run --brokers 127.0.0.1:9092 --stage orders/price`,
		Args: noArgs,
	}
	parse := func([]string) (brokerOptions, error) {
		if err := checkPort("--port", port); err != nil {
			return brokerOptions{}, err
		}
		o := brokerOptions{broker: broker.Config{Port: port, DataDir: dataDir, Logger: g.log}, plan: g.loadQuiet()}
		if o.plan != nil {
			o.plan.Security = nil // the lag exporter reads this broker, which speaks PLAINTEXT
		}
		var err error
		o.admin, err = af.options(o.plan)
		return o, err
	}
	do := func(ctx context.Context, o brokerOptions) error {
		log := o.broker.Logger
		ctx, stop := signalContext(ctx, log, stopping{"stopping: saving the broker's data",
			"exiting at once; the broker's data may not all be saved"})
		defer stop()
		var up atomic.Bool
		reg := admin.NewRegistry()
		srv, err := serveAdmin(o.admin, g, reg, func() (bool, []string) {
			if !up.Load() {
				return false, []string{"the broker is not listening"}
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		defer closeAdmin(srv)
		b, err := startBroker(o.broker, "--port")
		if err != nil {
			return err
		}
		log.Info("embedded broker ready", "addr", b.Addr(), "data_dir", o.broker.DataDir)
		up.Store(true)
		if o.plan != nil {
			m, err := router.NewMetrics(reg)
			if err != nil {
				return err
			}
			go router.ExportLag(ctx, []string{b.Addr()}, o.plan, m, 0, log)
		}
		<-ctx.Done()
		up.Store(false)
		b.Close()
		log.Info("embedded broker stopped")
		return nil
	}
	command(g, cmd, parse, do)
	cmd.Flags().IntVar(&port, "port", broker.DefaultPort, "port on 127.0.0.1 (0: any free port)")
	cmd.Flags().StringVar(&dataDir, "data-dir", broker.DefaultDir, "where the broker keeps its data")
	af.add(cmd)
	return cmd
}

// checkPort refuses a port number no TCP port has.
func checkPort(flag string, port int) error {
	if port < 0 || port > 65535 {
		return usagef("%s %d: want a port number, 0..65535 (0: any free port)", flag, port)
	}
	return nil
}

// startBroker starts the embedded broker; when its port or data directory
// is taken, the error says which flag (portFlag, --data-dir) picks another.
func startBroker(cfg broker.Config, portFlag string) (*broker.Broker, error) {
	b, err := broker.Start(cfg)
	switch {
	case errors.Is(err, broker.ErrPortInUse):
		return nil, fmt.Errorf("%w (is another `millrace broker` or Kafka running there? use it with --brokers 127.0.0.1:%d, "+
			"or pick another port with %s)", err, cfg.Port, portFlag)
	case errors.Is(err, broker.ErrDataDirInUse):
		use := "--brokers and its address"
		if cfg.Port > 0 {
			use = fmt.Sprintf("--brokers 127.0.0.1:%d if it listens there", cfg.Port)
		}
		return nil, fmt.Errorf("%w (another `millrace broker` or `millrace run` has its broker there: use that broker "+
			"with %s, or pick another directory with --data-dir)", err, use)
	}
	return b, err
}
