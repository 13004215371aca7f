package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/internal/admin"
	"github.com/millrace/millrace/pipeline"
)

// Main runs the millrace command line with args (without the program name)
// and returns the exit code: 0 success, 1 failure, 2 bad usage.
func Main(args []string) int {
	return run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	code, msg := g.execute(ctx, args)
	if msg != "" {
		fmt.Fprintln(stderr, msg)
	}
	return code
}

// execute runs the command args name and returns its exit code and the
// line to print on stderr for an error ("" for none).
func (g *globals) execute(ctx context.Context, args []string) (int, string) {
	root := newRoot(g)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	path := root.Name()
	if cmd != nil {
		path = cmd.CommandPath()
	}
	return exitCode(err, path, g.started)
}

// globals are the options and streams every command shares.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	file           string
	brokers        []string
	logLevel       string
	logFormat      string

	// log is the logger --log-level and --log-format ask for.
	log *slog.Logger
	// started is set once cobra accepted the command's flags and
	// arguments: errors before it are bad usage.
	started bool
	// parsed, when set (by tests), gets each command's options in place
	// of running it: see command.
	parsed func(cmd *cobra.Command, opts any) error
	// results, when set (by tests), says which pipelines keep job results
	// in place of resultsOf.
	results func(pl *pipeline.PipelinePlan) (jobResults, bool)
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "millrace",
		Short: "Run background jobs as pipes and filters on Kafka",
		Long: `millrace runs background jobs as pipelines of filter stages on Kafka.

A job is a pipeline declared in pipelines.yaml: an input topic, then an ordered
list of filter stages connected by Kafka topics. Each stage reads in its own
consumer group, so every stage scales on its own. With no brokers configured,
millrace runs an embedded Kafka-protocol broker on 127.0.0.1:9092. Brokers
that need TLS or SASL: broker.tls and broker.sasl in the file, or the
environment (README: Security).

Environment (a flag wins over its variable, the variable over the file):
  MILLRACE_BROKERS      the brokers, host:port,... (--brokers)
  MILLRACE_TLS, MILLRACE_TLS_CA_FILE, MILLRACE_TLS_CERT_FILE,
  MILLRACE_TLS_KEY_FILE, MILLRACE_TLS_SERVER_NAME,
  MILLRACE_TLS_INSECURE_SKIP_VERIFY
                        TLS to the brokers (--tls, --tls-ca-file)
  MILLRACE_SASL_MECHANISM, MILLRACE_SASL_USERNAME, MILLRACE_SASL_PASSWORD
                        SASL to the brokers (--sasl-*; the password has no flag)
  MILLRACE_ADMIN_TOKEN  the admin endpoints' token (--admin-token)
  MILLRACE_INSTANCE_ID  run's static member id in its groups (--instance-id)
and every variable the pipelines file reads as ${NAME}.

Exit codes: 0 success, 1 failure, 2 bad usage.`,
		Example: `  millrace validate                      # check pipelines.yaml
  millrace run                           # run every stage (embedded broker)
  echo '{"order_id":"o-1","customer":"c-7","qty":2,"price":9.5}' | millrace produce --pipeline orders
  millrace tail orders.confirmed --from-beginning`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           version(),
		PersistentPreRunE: g.begin,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.file, "file", "f", pipeline.DefaultFile, "pipelines file")
	pf.StringSliceVar(&g.brokers, "brokers", nil,
		"Kafka brokers, host:port,... (default: $MILLRACE_BROKERS, then the file's broker.brokers, then the embedded broker)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(newRunCmd(g), newBrokerCmd(g), newValidateCmd(g), newProduceCmd(g),
		newTailCmd(g), newFiltersCmd(g), newQuarantineCmd(g), newReplayCmd(g), newJobsCmd(g), newServeCmd(g),
		newSchedulesCmd(g), newSchedulerCmd(g), newDeployCmd(g))
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	// After SetOut: cobra's completion commands keep the writer they are
	// made with.
	completionUsage(root)
	return root
}

// completionUsage makes `completion` without a shell it knows bad usage
// naming the shells, where cobra's command printed its help and exited 0.
func completionUsage(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		var shells []string
		for _, sub := range c.Commands() {
			shells = append(shells, sub.Name())
		}
		known := strings.Join(shells[:len(shells)-1], ", ") + " or " + shells[len(shells)-1]
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("completion needs a shell: %s", known)
			}
			return usagef("unknown shell %q: completion knows %s", args[0], known)
		}
	}
}

func version() string { return admin.Version() }

// begin runs before every command, once cobra parsed its flags and
// arguments: it checks the required flags and the flags every command
// shares, whether or not the command uses them, and builds the logger.
func (g *globals) begin(cmd *cobra.Command, _ []string) error {
	if err := checkRequired(cmd); err != nil {
		return err
	}
	log, err := newLogger(g.stderr, g.logLevel, g.logFormat)
	if err != nil {
		return err
	}
	g.log = log
	g.started = true
	return nil
}

// noArgs is cobra.NoArgs for the commands that read the pipelines file:
// an argument that looks like one (it ends in .yaml or .yml, or is a file)
// gets the hint to name it with -f, in place of cobra's `unknown command
// "my.yaml"`. A command with subcommands keeps cobra's error: its argument
// is more likely a mistyped subcommand.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 && !cmd.HasSubCommands() && looksLikeFile(args[0]) {
		name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		return usagef("%s takes no arguments; to read %s, use -f %s", name, args[0], args[0])
	}
	return cobra.NoArgs(cmd, args)
}

func looksLikeFile(arg string) bool {
	if ext := strings.ToLower(filepath.Ext(arg)); ext == ".yaml" || ext == ".yml" {
		return true
	}
	st, err := os.Stat(arg)
	return err == nil && st.Mode().IsRegular()
}

// fileHint adds to the error of a pipelines file that is not there how to
// name another.
func fileHint(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (-f FILE names the pipelines file; the default is %s)", err, pipeline.DefaultFile)
	}
	return err
}

// requiredAnnotation lists a command's required flags (comma-separated).
const requiredAnnotation = "millrace/required"

// require marks flags of cmd as required: a command run without one of
// them is bad usage, with a message naming the missing flags.
func require(cmd *cobra.Command, flags ...string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[requiredAnnotation] = strings.Join(flags, ",")
}

func checkRequired(cmd *cobra.Command) error {
	var missing []string
	for _, name := range strings.Split(cmd.Annotations[requiredAnnotation], ",") {
		if f := cmd.Flags().Lookup(name); f != nil && !f.Changed {
			missing = append(missing, "--"+name)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usagef("%s is required", missing[0])
	}
	return usagef("%s and %s are required", strings.Join(missing[:len(missing)-1], ", "), missing[len(missing)-1])
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", format)
}

// command makes cmd run the way every command runs: parse turns its flags
// and arguments into options (reading the pipelines file where needed, but
// never Kafka; its errors say which flag is wrong), then do makes the one
// call and prints the result.
func command[O any](g *globals, cmd *cobra.Command, parse func(args []string) (O, error),
	do func(ctx context.Context, opts O) error) *cobra.Command {
	cmd.RunE = func(c *cobra.Command, args []string) error {
		opts, err := parse(args)
		if err != nil {
			return err
		}
		if g.parsed != nil {
			return g.parsed(c, opts)
		}
		return do(c.Context(), opts)
	}
	return cmd
}

// load reads and validates the pipelines file, printing every problem.
func (g *globals) load() (*pipeline.File, error) {
	f, err := pipeline.Load(g.file)
	if err != nil {
		err = fileHint(err)
	}
	var ps pipeline.Problems
	if errors.As(err, &ps) {
		if len(ps) == 0 {
			// Load never does this; if it did, "0 problems" with exit 1
			// would tell the user nothing.
			return nil, fmt.Errorf("%s is not valid, but no problem was reported (a bug in millrace)", g.file)
		}
		fmt.Fprintln(g.stderr, ps.Error())
		fmt.Fprintf(g.stderr, "%s: %d %s\n", g.file, len(ps), plural(len(ps), "problem"))
		return nil, errPrinted
	}
	if err == nil && len(f.Warnings) > 0 {
		fmt.Fprintln(g.stderr, f.Warnings.Error())
	}
	return f, err
}

// loadPipeline reads the pipelines file and finds the pipeline --pipeline
// names.
func (g *globals) loadPipeline(name string) (*pipeline.Plan, *pipeline.PipelinePlan, error) {
	f, err := g.load()
	if err != nil {
		return nil, nil, err
	}
	plan := f.Plan()
	pl, err := plan.Pipeline(name)
	if err != nil {
		return nil, nil, usagef("--pipeline: %v", err)
	}
	return plan, pl, nil
}

// loadQuiet reads the pipelines file without printing problems, for
// `millrace broker`, which only wants it for the lag exporter; nil if it
// cannot be read (with a warning when the file is there).
func (g *globals) loadQuiet() *pipeline.Plan {
	f, err := pipeline.Load(g.file)
	if err != nil {
		if _, statErr := os.Stat(g.file); statErr == nil {
			g.log.Warn("the pipelines file is not valid (millrace validate says why): no consumer lag is exported", "file", g.file)
		}
		return nil
	}
	return f.Plan()
}

// loadOptional reads the pipelines file for commands that want only its
// broker settings and also run without one (tail, replay topic): nil when
// there is no file. A file that is there but not valid is an error, every
// problem printed: its brokers, TLS and SASL would otherwise be dropped
// without a word, and the command reach other brokers, or the same ones in
// the clear.
func (g *globals) loadOptional() (*pipeline.Plan, error) {
	if _, err := os.Stat(g.file); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	f, err := g.load()
	if err != nil {
		return nil, err
	}
	return f.Plan(), nil
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

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
