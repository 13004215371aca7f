package prometheus

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// promtoolTimeout bounds one promtool run.
const promtoolTimeout = time.Minute

// CheckMetrics runs "promtool check metrics" on an exposition in
// Prometheus's text format (a /metrics body fetched without asking for
// OpenMetrics). It returns an error with promtool's findings when the text
// does not parse or breaks a naming convention (lint exit status 3).
// Without promtool the test is skipped, or fails under CI=true.
func CheckMetrics(t testing.TB, body []byte) error {
	t.Helper()
	return promtool(t, body, "check", "metrics")
}

// CheckRules runs "promtool check rules --lint-fatal" on rule files: each
// must parse, every expression must be valid PromQL and every template
// valid, and no rule may be a duplicate.
func CheckRules(t testing.TB, files ...string) error {
	t.Helper()
	return promtool(t, nil, append([]string{"check", "rules", "--lint-fatal"}, files...)...)
}

// TestRules runs "promtool test rules" on rule unit-test files (their
// rule_files are read relative to each test file).
func TestRules(t testing.TB, files ...string) error {
	t.Helper()
	return promtool(t, nil, append([]string{"test", "rules"}, files...)...)
}

// promtool runs promtool with args and stdin; a non-zero exit is an error
// holding its output.
func promtool(t testing.TB, stdin []byte, args ...string) error {
	t.Helper()
	bin := lookPath(t, "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), promtoolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("promtool %s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
