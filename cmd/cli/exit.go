package cli

import (
	"errors"
	"fmt"
	"strings"
)

// Exit codes, as Main returns them.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// exitError is the one error type that decides a command's exit code: a
// command returns one for bad usage (exitUsage, see usagef) and for a
// failure whose message it printed already (exitFailure, err nil). Any
// other error is a failure (exit 1), and an error cobra returns before the
// command starts (an unknown command or flag, a flag value that does not
// parse, a wrong number of arguments) is bad usage.
type exitError struct {
	code int
	err  error // printed as "millrace: <err>"; nil when already printed
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

// usagef is a usage error (exit 2). Its message names the flag or
// argument that is wrong, as it was given: `--pipeline "nope": …`.
func usagef(format string, args ...any) error {
	return exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// errPrinted ends a command with exit 1 after it printed why.
var errPrinted = exitError{code: exitFailure}

// exitCode returns the exit code for err, which the command at path
// returned, and the line to print on stderr ("" for none). started says
// whether the command had begun (its flags and arguments were accepted).
func exitCode(err error, path string, started bool) (int, string) {
	if err == nil {
		return exitOK, ""
	}
	var ee exitError
	if !errors.As(err, &ee) {
		ee = exitError{code: exitFailure, err: err}
		if !started {
			ee.code = exitUsage
		}
	}
	if ee.err == nil {
		return ee.code, ""
	}
	if ee.code != exitUsage {
		return ee.code, "millrace: " + ee.err.Error()
	}
	return ee.code, fmt.Sprintf("millrace: %s (see '%s --help')", oneLine(ee.err.Error()), path)
}

// oneLine puts cobra's suggestions for a mistyped command ("\n\nDid you
// mean this?\n\ttail\n") on the line of the error.
func oneLine(msg string) string {
	msg = strings.TrimRight(msg, "\n")
	if head, sugg, ok := strings.Cut(msg, "\n\nDid you mean this?\n\t"); ok {
		return head + "; did you mean " + strings.Join(strings.Split(sugg, "\n\t"), " or ") + "?"
	}
	return strings.ReplaceAll(msg, "\n", " ")
}
