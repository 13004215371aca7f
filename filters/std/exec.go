package std

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/millrace/millrace/filters"
)

// Config keys of the exec filter.
const (
	execCommand    = "command"
	execTimeout    = "timeout"
	execEnv        = "env"
	execInheritEnv = "inherit_env"
	execDir        = "dir"
	execMaxOutput  = "max_output_bytes"
)

// execDefaultInheritEnv are the variables of millrace's environment a
// command gets when inherit_env is not set: what programs need to find
// programs, files, their language and the time zone, and no secrets.
var execDefaultInheritEnv = []string{"PATH", "HOME", "LANG", "LC_*", "TZ", "TMPDIR"}

// Environment variables the exec filter sets for the command.
const (
	execEnvKey      = "MILLRACE_KEY"
	execEnvJob      = "MILLRACE_JOB"
	execEnvPipeline = "MILLRACE_PIPELINE"
	execEnvStage    = "MILLRACE_STAGE"
)

const (
	// execDefaultMaxOutput is the default of max_output_bytes: 16 MiB.
	execDefaultMaxOutput = 16 << 20
	// execStderrTail is how much of the end of stderr an error quotes.
	execStderrTail = 1 << 10
	// execWaitDelay bounds the wait for the output pipes to close once the
	// command has exited or been killed.
	execWaitDelay = 2 * time.Second
	// exitDataErr is EX_DATAERR of sysexits.h: the input data was incorrect.
	exitDataErr = 65
)

func execSpec() filters.Spec {
	return filters.Spec{
		Name:    "exec",
		Summary: "Pipes each payload through an external program.",
		Description: "The command runs once per record, directly and not through a shell: the\n" +
			"first item of `command` is the program, looked up in PATH when the filter is\n" +
			"built (a relative path with a slash is taken from `dir`), and the others are\n" +
			"its arguments. For shell syntax, run `[sh, -c, '...']`.\n\n" +
			"The payload is written to the command's stdin and its stdout becomes the new\n" +
			"payload; key and headers are passed on unchanged. Empty output gives a\n" +
			"record with an empty payload, it does not drop the record.\n\n" +
			"A command that writes more than `max_output_bytes` to stdout and stderr\n" +
			"together is killed and its record fails permanently, with \"output exceeds\"\n" +
			"in the error. millrace holds at most that much of stdout and the last 1 KiB\n" +
			"of stderr, however much the command writes.\n\n" +
			"The command does not inherit millrace's environment, which may hold\n" +
			"secrets such as a Kafka password. It gets the variables `inherit_env` names,\n" +
			"from millrace's environment where they are set, then `env`, which wins over\n" +
			"them, and MILLRACE_KEY (the record key; unset when the record has none),\n" +
			"MILLRACE_JOB (the job id; unset when the record has none), MILLRACE_PIPELINE\n" +
			"and MILLRACE_STAGE. An item of `inherit_env` is a variable name, or a prefix\n" +
			"ending in `*`, such as `LC_*`; a list replaces the default, so keep PATH in\n" +
			"it if the command needs it, and `[\"*\"]` passes everything (secrets too).\n" +
			"MILLRACE_ADMIN_TOKEN, MILLRACE_SASL_PASSWORD and the variables the pipelines\n" +
			"file reads its secrets from (broker.sasl.password, admin.token, api tokens,\n" +
			"callback secrets) are never inherited: listing one is an error, and a\n" +
			"pattern skips them, as it skips the variables the filter sets. On Linux millrace marks itself not dumpable, so a command\n" +
			"running as another user than root cannot read millrace's environment in\n" +
			"/proc either.\n\n" +
			"A non-zero exit status fails the record with the end of the command's stderr\n" +
			"in the error, and the record is retried. Exit status 65 (EX_DATAERR of\n" +
			"sysexits.h) says the record itself is bad: it is quarantined without\n" +
			"retries. A command still running after `timeout` is killed and the record is\n" +
			"retried. The command runs in its own process group, which is killed as a\n" +
			"whole on timeout, on shutdown and when the command exits, so it leaves no\n" +
			"processes behind.",
		Fields: []filters.Field{
			{
				Name:        execCommand,
				Type:        filters.StringList,
				Required:    true,
				Description: "The program and its arguments.",
				Example:     "[python3, scripts/enrich.py, --strict]",
			},
			{
				Name:        execTimeout,
				Type:        filters.Duration,
				Default:     30 * time.Second,
				Description: "How long one run may take before it is killed.",
				Example:     "5s",
			},
			{
				Name:        execEnv,
				Type:        filters.StringMap,
				Description: "Environment variables set for the command.",
				Example:     "{LANG: C.UTF-8}",
			},
			{
				Name:        execInheritEnv,
				Type:        filters.StringList,
				Default:     slices.Clone(execDefaultInheritEnv),
				Description: "The variables of millrace's environment the command gets: names, or prefixes ending in `*`.",
				Example:     "[PATH, HOME, LANG, 'LC_*', PYTHONPATH]",
			},
			{
				Name:        execMaxOutput,
				Type:        filters.Int,
				Default:     execDefaultMaxOutput,
				Description: "The most bytes the command may write to stdout and stderr together (16 MiB); more kills it and fails the record permanently.",
				Example:     "1_048_576",
			},
			{
				Name:        execDir,
				Type:        filters.String,
				Description: "The working directory of the command; unset uses millrace's.",
				Example:     "/srv/scripts",
			},
		},
		Example: `command: [sh, -c, 'tr "[:lower:]" "[:upper:]"']
timeout: 10s
env:
  LC_ALL: C
inherit_env: [PATH, HOME, 'LC_*']
max_output_bytes: 1_048_576
`,
		New: newExec,
	}
}

func init() { filters.MustRegister(execSpec()) }

// newExec checks an exec config and resolves the program.
func newExec(cfg filters.Config) (filters.Filter, error) {
	argv := cfg.StringList(execCommand)
	if len(argv) == 0 || argv[0] == "" {
		return nil, filters.FieldError(execCommand, errors.New("command is empty; give the program and its arguments as a list"))
	}
	dir := cfg.String(execDir)
	if cfg.Has(execDir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, filters.FieldError(execDir, fmt.Errorf("working directory: %w", err))
		}
		if !fi.IsDir() {
			return nil, filters.FieldError(execDir, fmt.Errorf("working directory %s is not a directory", dir))
		}
	}
	path := argv[0]
	if strings.Contains(path, "/") && !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path) // as the command will see it
	}
	path, err := exec.LookPath(path)
	if err != nil {
		return nil, filters.FieldError(execCommand, fmt.Errorf("program %s: %w", argv[0], err))
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, filters.FieldError(execCommand, fmt.Errorf("program %s: %w", argv[0], err))
	}
	timeout := cfg.Duration(execTimeout)
	if timeout <= 0 {
		return nil, filters.FieldError(execTimeout, fmt.Errorf("timeout must be positive, got %s", timeout))
	}
	maxOutput := cfg.Int(execMaxOutput)
	if maxOutput <= 0 {
		return nil, filters.FieldError(execMaxOutput, fmt.Errorf("max_output_bytes must be positive, got %d", maxOutput))
	}
	inherit, err := newEnvSelector(cfg.StringList(execInheritEnv), cfg.SecretEnv)
	if err != nil {
		return nil, filters.FieldError(execInheritEnv, err)
	}
	extra := cfg.StringMap(execEnv)
	env := make([]string, 0, len(extra)+2)
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		if err := checkEnv(name, extra[name]); err != nil {
			return nil, filters.FieldError(execEnv, err)
		}
		env = append(env, name+"="+extra[name])
	}
	env = append(env, execEnvPipeline+"="+cfg.Pipeline, execEnvStage+"="+cfg.Stage)
	return &execFilter{
		name: argv[0], path: path, argv: argv, dir: dir, timeout: timeout,
		maxOutput: int64(maxOutput), inherit: inherit, set: extra, env: env,
	}, nil
}

// checkEnv checks one variable of the env field.
func checkEnv(name, value string) error {
	switch {
	case name == "" || strings.ContainsAny(name, "=\x00"):
		return fmt.Errorf("environment variable name %q is empty or holds '=' or NUL", name)
	case strings.Contains(value, "\x00"):
		return fmt.Errorf("environment variable %s holds a NUL byte", name)
	case reservedEnv(name):
		return fmt.Errorf("environment variable %s is set by the filter", name)
	}
	return nil
}

// reservedEnv reports whether the filter sets the variable name.
func reservedEnv(name string) bool {
	return name == execEnvKey || name == execEnvJob || name == execEnvPipeline || name == execEnvStage
}

// execFilter is a [filters.Filter]; it holds no resources, so it is no [filters.Closer].
var _ filters.Filter = (*execFilter)(nil)

// execFilter runs a command per record. It holds no state of a run, so it
// serves concurrent calls.
type execFilter struct {
	name    string   // the program as configured, for messages
	path    string   // the program's absolute path
	argv    []string // argv[0] as configured, then the arguments
	dir     string
	timeout time.Duration
	// maxOutput is max_output_bytes, in bytes.
	maxOutput int64
	inherit   envSelector
	set       map[string]string // the env field
	env       []string          // env field, MILLRACE_PIPELINE and MILLRACE_STAGE
}

// errOutputTooLarge cancels a run whose output passed max_output_bytes.
var errOutputTooLarge = errors.New("output too large")

// Process implements [filters.Filter].
func (f *execFilter) Process(ctx context.Context, msg *filters.Message) ([]*filters.Message, error) {
	env := append(f.inherit.environ(f.set), f.env...)
	if msg.Key != nil {
		if bytes.IndexByte(msg.Key, 0) >= 0 {
			return nil, filters.Permanent(fmt.Errorf("command %s: record key holds a NUL byte, which %s cannot", f.name, execEnvKey))
		}
		env = append(env, execEnvKey+"="+string(msg.Key))
	}
	if v, ok := msg.Headers.Lookup(filters.HeaderJob); ok {
		job := string(v)
		if strings.IndexByte(job, 0) >= 0 {
			return nil, filters.Permanent(fmt.Errorf("command %s: job header holds a NUL byte, which %s cannot", f.name, execEnvJob))
		}
		env = append(env, execEnvJob+"="+job)
	}

	timeoutCtx, cancelTimeout := context.WithTimeout(ctx, f.timeout)
	defer cancelTimeout()
	runCtx, cancelRun := context.WithCancelCause(timeoutCtx)
	defer cancelRun(nil)

	cmd := exec.CommandContext(runCtx, f.path)
	cmd.Args = f.argv
	cmd.Dir = f.dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = execWaitDelay
	limit := &outputLimit{max: f.maxOutput, exceeded: func() { cancelRun(errOutputTooLarge) }}
	stdout := &outputBuffer{limit: limit}
	stderr := &tailBuffer{max: execStderrTail}
	err := runCommand(cmd, msg.Payload, stdout, limit.stderrWriter(stderr))
	switch {
	case errors.Is(context.Cause(runCtx), errOutputTooLarge):
		out, errOut := limit.written()
		return nil, filters.Permanent(fmt.Errorf("command %s: output exceeds max_output_bytes %s (stdout %s, stderr %s); the command was killed",
			f.name, formatBytes(f.maxOutput), formatBytes(out), formatBytes(errOut)))
	case err == nil:
	case ctx.Err() != nil:
		return nil, fmt.Errorf("command %s stopped: %w", f.name, ctx.Err())
	case timeoutCtx.Err() != nil:
		return nil, fmt.Errorf("command %s timed out after %s%s", f.name, f.timeout, stderr.suffix())
	case errors.Is(err, errPipesOpen):
		return nil, fmt.Errorf("command %s: %w", f.name, err)
	default:
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return nil, fmt.Errorf("run command %s: %w", f.name, err)
		}
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return nil, &commandError{fmt.Sprintf("command %s was killed by signal %d (%s)%s", f.name, ws.Signal(), ws.Signal(), stderr.suffix()), err}
		}
		cerr := &commandError{fmt.Sprintf("command %s exited with status %d%s", f.name, exit.ExitCode(), stderr.suffix()), err}
		if exit.ExitCode() == exitDataErr {
			return nil, filters.Permanent(cerr)
		}
		return nil, cerr
	}
	msg.Payload = stdout.buf
	if msg.Payload == nil {
		msg.Payload = []byte{}
	}
	return []*filters.Message{msg}, nil
}

// errPipesOpen reports a process that escaped the command's process group
// and kept its pipes open after the command exited.
var errPipesOpen = errors.New("the command exited, but a process it started outside its process group kept stdin, stdout or stderr open")

// runCommand runs cmd, whose process group is killed when it exits, with payload
// on stdin. It returns when the output pipes are closed, or execWaitDelay
// after the command exited if they stay open.
//
// The pipes are made here rather than by [exec.Cmd], whose Wait would wait
// for every process that inherited stdout before the group could be killed.
func runCommand(cmd *exec.Cmd, payload []byte, stdout, stderr io.Writer) error {
	var files []*os.File // every end, to close on return
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return err
	}
	outR, outW, err := pipe()
	if err != nil {
		return err
	}
	errR, errW, err := pipe()
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	// exec.Cmd calls Cancel when the context ends, to kill the whole group.
	// Once the command has exited, the group is killed below instead; mu
	// and exited keep Cancel from killing a group whose id, after the
	// command is reaped, may be reused.
	var (
		mu     sync.Mutex
		exited bool
	)
	cmd.Cancel = func() error {
		mu.Lock()
		defer mu.Unlock()
		if exited {
			return os.ErrProcessDone
		}
		return killGroup(cmd.Process.Pid)
	}
	err = cmd.Start()
	// The child holds its own copies of its ends; closing ours lets the
	// reads below end when the child's processes are gone.
	_, _, _ = inR.Close(), outW.Close(), errW.Close()
	if err != nil {
		return err
	}
	var copying sync.WaitGroup
	copying.Go(func() {
		// A command that exits without reading stdin makes this fail with
		// EPIPE, which is its business.
		_, _ = inW.Write(payload)
		_ = inW.Close()
	})
	copying.Go(func() { _, _ = io.Copy(stdout, outR) })
	copying.Go(func() { _, _ = io.Copy(stderr, errR) })
	if waitExit(cmd.Process.Pid) == nil {
		mu.Lock()
		_ = killGroup(cmd.Process.Pid) // what the command left running
		exited = true
		mu.Unlock()
	}
	err = cmd.Wait()
	done := make(chan struct{})
	go func() { copying.Wait(); close(done) }()
	timer := time.NewTimer(execWaitDelay)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		// Closing the files unblocks the goroutines.
		_, _, _ = inW.Close(), outR.Close(), errR.Close()
		<-done
		if err == nil {
			err = errPipesOpen
		}
	}
	return err
}

// envSelector picks the variables of millrace's environment a command
// inherits: those of inherit_env.
type envSelector struct {
	names    map[string]bool
	prefixes []string // of the items ending in '*'
	// secrets are the variables the pipelines file reads its secrets
	// from (filters.Config.SecretEnv): never inherited.
	secrets map[string]bool
}

// newEnvSelector checks the items of inherit_env: each is a variable name,
// or a prefix followed by '*'. Naming one of millrace's secrets or a variable
// the filter sets is an error.
func newEnvSelector(items, secretEnv []string) (envSelector, error) {
	sel := envSelector{names: make(map[string]bool, len(items)), secrets: make(map[string]bool, len(secretEnv))}
	for _, name := range secretEnv {
		sel.secrets[name] = true
	}
	var errs []error
	for _, item := range items {
		name, pattern := strings.CutSuffix(item, "*")
		switch {
		case item == "":
			errs = append(errs, errors.New("an empty item names no variable"))
		case strings.ContainsAny(name, "=*\x00"):
			errs = append(errs, fmt.Errorf("%q is no variable name: it holds '=', NUL or a '*' other than a final one", item))
		case pattern:
			sel.prefixes = append(sel.prefixes, name)
		case millraceSecretEnv[name] != "":
			errs = append(errs, fmt.Errorf("%s is %s, which no command gets", name, millraceSecretEnv[name]))
		case sel.secrets[name]:
			errs = append(errs, fmt.Errorf("%s holds a secret of the pipelines file, which no command inherits "+
				"(to give it to the command on purpose: env: {%s: ${%s}})", name, name, name))
		case reservedEnv(name):
			errs = append(errs, fmt.Errorf("%s is set by the filter", name))
		default:
			sel.names[name] = true
		}
	}
	if len(errs) > 0 {
		return envSelector{}, errors.Join(errs...)
	}
	return sel, nil
}

// inherits reports whether a command gets the variable name of millrace's
// environment. It never gets millrace's own secrets, nor the variables the
// filter sets, so that none leaks in from a parent millrace.
func (sel envSelector) inherits(name string) bool {
	if millraceSecretEnv[name] != "" || sel.secrets[name] || reservedEnv(name) {
		return false
	}
	return sel.names[name] || slices.ContainsFunc(sel.prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// environ returns the variables of millrace's environment that sel picks,
// as "name=value", leaving out those in set.
func (sel envSelector) environ(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; !ok && sel.inherits(name) {
			env = append(env, kv)
		}
	}
	return env
}

// millraceSecretEnv are the variables millrace reads its own secrets from (cmd/cli;
// a Kubernetes pod gets them from its Secret), and what each holds: the
// exec filter keeps them from the commands it runs, even when a pattern of
// inherit_env matches them, as it keeps the variables the pipelines file
// reads its secrets from (filters.Config.SecretEnv).
var millraceSecretEnv = map[string]string{
	"MILLRACE_ADMIN_TOKEN":   "millrace's admin token",
	"MILLRACE_SASL_PASSWORD": "millrace's Kafka password",
}

// killGroup kills the process group led by pid.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// commandError is a failed run; it wraps the *exec.ExitError.
type commandError struct {
	msg string
	err error
}

func (e *commandError) Error() string { return e.msg }
func (e *commandError) Unwrap() error { return e.err }

// outputLimit counts the bytes a command writes to stdout and stderr, and
// calls exceeded, once, when their sum passes max. It is safe for
// concurrent use.
type outputLimit struct {
	max      int64
	exceeded func()

	mu                 sync.Mutex
	outBytes, errBytes int64 // read from stdout and from stderr
	over               bool
}

// add counts n more bytes of stdout, or of stderr if toStderr, and reports
// whether the total is still within max.
func (l *outputLimit) add(n int, toStderr bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if toStderr {
		l.errBytes += int64(n)
	} else {
		l.outBytes += int64(n)
	}
	if l.over || l.outBytes+l.errBytes <= l.max {
		return !l.over
	}
	l.over = true
	l.exceeded()
	return false
}

// written returns the bytes read from stdout and from stderr.
func (l *outputLimit) written() (stdout, stderr int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outBytes, l.errBytes
}

// stderrWriter returns a writer that counts what goes through it to w as
// stderr and fails once the limit is passed.
func (l *outputLimit) stderrWriter(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if !l.add(len(p), true) {
			return 0, errOutputTooLarge
		}
		return w.Write(p)
	})
}

// writerFunc is an [io.Writer] made of a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// outputBuffer collects stdout within limit: past it, writes fail, which
// ends the copy from the pipe. Its buffer never grows beyond limit.max.
type outputBuffer struct {
	limit *outputLimit
	buf   []byte
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	if !b.limit.add(len(p), false) {
		return 0, errOutputTooLarge
	}
	if need := len(b.buf) + len(p); need > cap(b.buf) {
		// Doubling, as append would, but never past the limit, which
		// need is within.
		grown := make([]byte, len(b.buf), min(max(2*cap(b.buf), need, 4096), int(b.limit.max)))
		copy(grown, b.buf)
		b.buf = grown
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// formatBytes formats n bytes for a message: "512 B", "16 MiB", "16.0 MiB"
// (the latter is not a whole number of MiB).
func formatBytes(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	unit, shift := "KiB", 10
	switch {
	case n >= 1<<30:
		unit, shift = "GiB", 30
	case n >= 1<<20:
		unit, shift = "MiB", 20
	}
	if n%(1<<shift) == 0 {
		return fmt.Sprintf("%d %s", n>>shift, unit)
	}
	return fmt.Sprintf("%.1f %s", float64(n)/float64(int64(1)<<shift), unit)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf       []byte
	max       int
	truncated bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
		b.truncated = true
	}
	return len(p), nil
}

// suffix returns ": " and the end of stderr for an error message, or "".
func (b *tailBuffer) suffix() string {
	tail := b.buf
	cut := b.truncated
	if len(tail) > b.max {
		tail, cut = tail[len(tail)-b.max:], true
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(tail), "\uFFFD"))
	if s == "" {
		return ""
	}
	if cut {
		return ": …" + s
	}
	return ": " + s
}
