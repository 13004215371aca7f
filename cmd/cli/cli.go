package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/pipeline"
)

// Main runs the millrace command line with args (without the program name)
// and returns the exit code: 0 success, 1 failure, 2 bad usage.
func Main(args []string) int {
	return run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
}

// exitError carries an exit code; its message has already been printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(&globals{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case isUsage(err):
		fmt.Fprintf(stderr, "millrace: %v\nRun 'millrace --help' for usage.\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "millrace: %v\n", err)
		return 1
	}
}

// usageError is a mistake in how a command was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func isUsage(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand", "flag needs an argument",
		"accepts ", "requires at least", "invalid argument", "required flag", "if any flags in the group"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// globals are the options and streams every command shares.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	file           string
	brokers        []string
	logLevel       string
	logFormat      string
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "millrace",
		Short: "Run background jobs as pipes and filters on Kafka",
		Long: `millrace runs background jobs as pipelines of filter stages on Kafka.

A job is a pipeline declared in pipelines.yaml: an input topic, then an ordered
list of filter stages connected by Kafka topics. Each stage reads in its own
consumer group, so every stage scales on its own. With no brokers configured,
millrace runs an embedded Kafka-protocol broker on 127.0.0.1:9092.`,
		Example: `  millrace validate                      # check pipelines.yaml
  millrace run                           # run every stage (embedded broker)
  echo '{"id":1}' | millrace produce --pipeline orders
  millrace tail orders.confirmed --from-beginning`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.file, "file", "f", pipeline.DefaultFile, "pipelines file")
	pf.StringSliceVar(&g.brokers, "brokers", nil,
		"Kafka brokers, host:port,... (default: $MILLRACE_BROKERS, then the file's broker.brokers, then the embedded broker)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(newRunCmd(g), newBrokerCmd(g), newValidateCmd(g), newProduceCmd(g),
		newTailCmd(g), newFiltersCmd(g), newQuarantineCmd(g), newReplayCmd(g))
	return root
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
}

// load reads and validates the pipelines file, printing every problem.
func (g *globals) load() (*pipeline.File, error) {
	f, err := pipeline.Load(g.file)
	var ps pipeline.Problems
	if errors.As(err, &ps) {
		if len(ps) == 0 {
			// Load never does this; if it did, "0 problems" with exit 1
			// would tell the user nothing.
			return nil, fmt.Errorf("%s is not valid, but no problem was reported (a bug in millrace)", g.file)
		}
		fmt.Fprintln(g.stderr, ps.Error())
		fmt.Fprintf(g.stderr, "%s: %d %s\n", g.file, len(ps), plural(len(ps), "problem"))
		return nil, exitError{1}
	}
	return f, err
}

// resolveBrokers picks the brokers: --brokers, $MILLRACE_BROKERS, then the
// file's. Empty means the embedded broker.
func (g *globals) resolveBrokers(plan *pipeline.Plan) []string {
	if len(g.brokers) > 0 {
		return g.brokers
	}
	if env := os.Getenv("MILLRACE_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	if plan != nil {
		return plan.Brokers
	}
	return nil
}

// clientBrokers is resolveBrokers for commands that talk to a running
// cluster: with nothing configured they use the embedded broker's address.
func (g *globals) clientBrokers(plan *pipeline.Plan) []string {
	if b := g.resolveBrokers(plan); len(b) > 0 {
		return b
	}
	return []string{fmt.Sprintf("127.0.0.1:%d", broker.DefaultPort)}
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits at once.
func signalContext(parent context.Context, log *slog.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	done := make(chan struct{})
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			log.Info("stopping: finishing records in flight (signal again to exit at once)", "signal", sig.String())
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			log.Error("exiting at once; records in flight will be redelivered", "signal", sig.String())
			os.Exit(130)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() { once.Do(func() { signal.Stop(ch); close(done); cancel() }) }
}

// loadQuiet reads the pipelines file without printing problems, for
// commands that only want its broker settings if it is there.
func (g *globals) loadQuiet() (*pipeline.File, error) {
	return pipeline.Load(g.file)
}
