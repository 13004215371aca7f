package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/internal/admin"
	"github.com/millrace/millrace/internal/gctune"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/router"
)

const runHelp = `Run the stages of the pipelines in the pipelines file until SIGINT or SIGTERM.

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
their results, commits and exits 0 (bounded by --stop-timeout).

It serves /healthz, /readyz and /metrics (Prometheus) on --admin-addr
(127.0.0.1:9464, or a free port when another process has it; off disables
it). An address other hosts can reach needs a token (--admin-token, else
$MILLRACE_ADMIN_TOKEN, else admin.token in the file), which /metrics then
requires as a bearer token.

With --instance-id (or $MILLRACE_INSTANCE_ID; a Kubernetes pod's name) each
stage joins its consumer group as a static member (KIP-345): a process that
restarts with the same id within the session timeout gets its partitions back
without a rebalance of the group; one that stops for good keeps them idle
until its session times out.

Every run process takes part in firing the pipelines' schedules (schedules:
in the file; see 'millrace schedules --help'): the processes elect one leader
through consumer group millrace.scheduler, and only it fires, so each tick
fires once however many processes run. --no-schedules keeps a process out.

With --api-addr it also serves the HTTP jobs API there, as 'millrace serve'
does (see its --help): a single-process setup.

Memory: run sets Go's garbage collector to GOGC=200 (fewer collections: more
throughput for a heap up to three times the live one) and, in a container
with a memory limit, GOMEMLIMIT to 90% of it; the GOGC and GOMEMLIMIT
environment variables override both (GOGC=100 is Go's default).`

// runOptions are what `millrace run` runs: the engine, on the embedded
// broker when embedded is set.
type runOptions struct {
	engine   router.EngineConfig
	embedded *broker.Config
	admin    adminOptions
	api      apiOptions
}

// runFlags are the flags of `millrace run`.
type runFlags struct {
	g           *globals
	stages      []string
	port        int
	dataDir     string
	stopTimeout time.Duration
	connTimeout time.Duration
	admin       adminFlags
	apiAddr     string
	noSchedules bool
	instanceID  string
	// schedulesOnly: `millrace scheduler`, which runs no stage.
	schedulesOnly bool
}

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{g: g}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the pipelines' stages (all, or those chosen with --stage)",
		Long:  runHelp,
		Example: `  millrace run
  millrace run -f pipelines.yaml --brokers kafka-1:9092,kafka-2:9092
  millrace run --brokers 127.0.0.1:9092 --stage orders/price --stage orders/confirm`,
		Args: noArgs,
	}
	command(g, cmd, f.parse, f.do)
	fl := cmd.Flags()
	fl.StringArrayVar(&f.stages, "stage", nil, "run only this stage, as pipeline/stage or pipeline (repeatable)")
	fl.IntVar(&f.port, "embedded-port", broker.DefaultPort, "port of the embedded broker on 127.0.0.1 (0: any free port)")
	fl.StringVar(&f.dataDir, "data-dir", broker.DefaultDir, "where the embedded broker keeps its data")
	fl.DurationVar(&f.stopTimeout, "stop-timeout", 30*time.Second, "how long records in flight may take to finish on stop")
	fl.DurationVar(&f.connTimeout, "connect-timeout", 30*time.Second,
		"how long to wait for the brokers at start, logging each attempt; 0 waits until they answer (or a signal)")
	fl.BoolVar(&f.noSchedules, "no-schedules", false,
		"fire no schedules: stay out of the scheduler group millrace.scheduler (default: take part, and fire while leading)")
	fl.StringVar(&f.instanceID, "instance-id", "",
		"join the stages' consumer groups as a static member with this id (group.instance.id, KIP-345; default $MILLRACE_INSTANCE_ID): "+
			"a restart with the same id within the session timeout keeps the partitions without a rebalance")
	f.admin.add(cmd)
	fl.StringVar(&f.apiAddr, "api-addr", "",
		"also serve the HTTP jobs API here, host:port, as 'millrace serve' does (default: none; api.addr of the file is serve's)")
	return cmd
}

func (f *runFlags) parse([]string) (runOptions, error) {
	if err := checkPort("--embedded-port", f.port); err != nil {
		return runOptions{}, err
	}
	if f.stopTimeout < 0 {
		return runOptions{}, usagef("--stop-timeout %s: want 0 or more", f.stopTimeout)
	}
	if f.connTimeout < 0 {
		return runOptions{}, usagef("--connect-timeout %s: want 0 or more (0 waits for ever)", f.connTimeout)
	}
	file, err := f.g.load()
	if err != nil {
		return runOptions{}, err
	}
	plan := file.Plan()
	var selected []pipeline.StagePlan
	if f.schedulesOnly {
		if len(plan.EnabledSchedules()) == 0 {
			return runOptions{}, usagef("%s has no enabled schedule: nothing for the scheduler to fire (see README: Schedules)", f.g.file)
		}
	} else if selected, err = plan.Stages(f.stages...); err != nil {
		return runOptions{}, usagef("--stage: %v", err)
	}
	instanceID := f.instanceID
	if instanceID == "" {
		instanceID = os.Getenv("MILLRACE_INSTANCE_ID")
	}
	if instanceID != "" && !router.ValidInstanceID(instanceID) {
		return runOptions{}, usagef("--instance-id %q: want 1 to 249 of letters, digits, '.', '_' and '-' (Kafka's rule for group.instance.id)",
			instanceID)
	}
	o := runOptions{engine: router.EngineConfig{Plan: plan, Stages: selected, Brokers: f.g.resolveBrokers(plan),
		StopTimeout: f.stopTimeout, ConnectTimeout: f.connTimeout, Logger: f.g.log, NoSchedules: f.noSchedules,
		SchedulesOnly: f.schedulesOnly, InstanceID: instanceID}}
	if f.connTimeout == 0 {
		o.engine.ConnectTimeout = -1 // wait for ever
	}
	if plan.Security, err = security(plan.Security, nil); err != nil {
		return runOptions{}, err
	}
	warnInsecure(f.g.log, plan.Security, o.engine.Brokers)
	if len(o.engine.Brokers) == 0 {
		if plan.Security != nil {
			return runOptions{}, usagef("%s: TLS or SASL is set, but no brokers are: the embedded broker speaks PLAINTEXT only "+
				"(set broker.brokers, --brokers or $MILLRACE_BROKERS, or drop broker.tls, broker.sasl and $MILLRACE_TLS*/$MILLRACE_SASL*)", f.g.file)
		}
		o.embedded = &broker.Config{Port: f.port, DataDir: f.dataDir, Logger: f.g.log}
	}
	if o.admin, err = f.admin.options(plan); err != nil {
		return runOptions{}, err
	}
	if o.api, err = apiOptionsOf("--api-addr", f.apiAddr, "", plan); err != nil {
		return runOptions{}, err
	}
	return o, nil
}

func (f *runFlags) do(ctx context.Context, o runOptions) (err error) {
	log := o.engine.Logger
	if err := undumpable(); err != nil {
		log.Warn("cannot mark the process not dumpable: programs of exec stages may read its environment in /proc", "err", err)
	}
	gc, err := gctune.Apply()
	if err != nil {
		log.Warn("garbage collector: no memory limit set", "err", err)
	}
	log.Info("garbage collector", "settings", gc.String())
	ctx, stop := signalContext(ctx, log, stopping{"stopping: finishing records in flight",
		"exiting at once; records in flight will be redelivered"})
	defer stop()
	if o.embedded != nil {
		b, err := startBroker(*o.embedded, "--embedded-port")
		if err != nil {
			return err
		}
		defer b.Close()
		log.Info("embedded broker listening", "addr", b.Addr(), "data_dir", o.embedded.DataDir)
		o.engine.Brokers = []string{b.Addr()}
	}
	if sec := o.engine.Plan.Security; sec != nil {
		attrs := []any{"protocol", sec.Protocol()}
		if sec.SASL != nil {
			attrs = append(attrs, "sasl_mechanism", sec.SASL.Mechanism, "username", sec.SASL.Username)
		}
		log.Info("Kafka security", attrs...)
	}
	reg := admin.NewRegistry()
	if o.engine.Metrics, err = router.NewMetrics(reg); err != nil {
		return err
	}
	eng, err := router.NewEngine(o.engine)
	if err != nil {
		return err
	}
	var apiSrv atomic.Pointer[apiServer]
	srv, err := serveAdmin(o.admin, f.g, reg, func() (bool, []string) {
		ok, why := eng.Readiness()
		if o.api.addr == "" {
			return ok, why
		}
		a := apiSrv.Load()
		if a == nil {
			return false, append(why, "api: connecting to Kafka")
		}
		aok, awhy := a.api.Ready()
		return ok && aok, append(why, awhy...)
	})
	if err != nil {
		return err
	}
	defer closeAdmin(srv)
	if o.api.addr != "" {
		cl := kafkaops.Cluster{Brokers: o.engine.Brokers, ClientID: o.engine.Plan.ClientID, ConnectTimeout: o.engine.ConnectTimeout,
			Security: o.engine.Plan.Security}
		a, err := startAPI(ctx, o.api, cl, reg, log)
		if err != nil {
			return err
		}
		apiSrv.Store(a)
		defer a.stop(o.engine.StopTimeout, log)
		go func() { <-ctx.Done(); a.api.Drain() }() // long-polls answer while the stages stop
	}
	if err := eng.Run(ctx); err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			// A signal before the brokers answered: nothing was read, so
			// nothing is in flight; a clean stop.
			log.Info("stopped before the brokers answered")
			return nil
		}
		if f.schedulesOnly {
			return fmt.Errorf("scheduler: %w", err)
		}
		return fmt.Errorf("run: %w", err)
	}
	return nil
}
