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
	execCommand = "command"
	execTimeout = "timeout"
	execEnv     = "env"
	execDir     = "dir"
)

// Environment variables the exec filter sets for the command.
const (
	execEnvKey      = "MILLRACE_KEY"
	execEnvJob      = "MILLRACE_JOB"
	execEnvPipeline = "MILLRACE_PIPELINE"
	execEnvStage    = "MILLRACE_STAGE"
)

const (
	// execMaxStdout caps the output of one run.
	execMaxStdout = 16 << 20
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
			"record with an empty payload, it does not drop the record. Output over\n" +
			"16 MiB fails the record permanently.\n\n" +
			"The command inherits millrace's environment plus `env`, and MILLRACE_KEY\n" +
			"(the record key; unset when the record has none), MILLRACE_JOB (the job id;\n" +
			"unset when the record has none), MILLRACE_PIPELINE and MILLRACE_STAGE.\n\n" +
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
				Description: "Extra environment variables for the command.",
				Example:     "{LANG: C.UTF-8}",
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
	extra := cfg.StringMap(execEnv)
	env := make([]string, 0, len(extra))
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		if err := checkEnv(name, extra[name]); err != nil {
			return nil, filters.FieldError(execEnv, err)
		}
		env = append(env, name+"="+extra[name])
	}
	env = append(env, execEnvPipeline+"="+cfg.Pipeline, execEnvStage+"="+cfg.Stage)
	return &execFilter{name: argv[0], path: path, argv: argv, dir: dir, timeout: timeout, env: env}, nil
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
	env     []string // env field, MILLRACE_PIPELINE and MILLRACE_STAGE
}

// errStdoutTooLarge cancels a run whose output passed execMaxStdout.
var errStdoutTooLarge = errors.New("stdout too large")

// Process implements [filters.Filter].
func (f *execFilter) Process(ctx context.Context, msg *filters.Message) ([]*filters.Message, error) {
	env := append(processEnv(), f.env...)
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
	stdout := &cappedBuffer{max: execMaxStdout, overflow: func() { cancelRun(errStdoutTooLarge) }}
	stderr := &tailBuffer{max: execStderrTail}
	err := runCommand(cmd, msg.Payload, stdout, stderr)
	switch {
	case errors.Is(context.Cause(runCtx), errStdoutTooLarge):
		return nil, filters.Permanent(fmt.Errorf("command %s wrote more than %d MiB to stdout", f.name, execMaxStdout>>20))
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
	msg.Payload = stdout.buf.Bytes()
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

// processEnv returns millrace's environment without the variables the
// filter sets, so that none leaks in from a parent millrace, and without
// millrace's own secrets (the admin token, which a Kubernetes pod gets
// from its Secret): the command has no use for them.
func processEnv() []string {
	env := os.Environ()
	return slices.DeleteFunc(env, func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return reservedEnv(name) || name == adminTokenEnv
	})
}

// adminTokenEnv is the variable `millrace run` reads the admin token from
// (cmd/cli); the exec filter keeps it from the commands it runs.
const adminTokenEnv = "MILLRACE_ADMIN_TOKEN"

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

// cappedBuffer collects stdout up to max bytes; past that it calls overflow
// and fails the write, which closes the pipe.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow func()
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.overflow()
		return 0, errStdoutTooLarge
	}
	return b.buf.Write(p)
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
