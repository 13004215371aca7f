package cli

import (
	"strings"
	"testing"
)

// An admin address other hosts can reach needs a token. From --admin-addr
// its lack is bad usage (exit 2); from the file's admin.addr it is a
// failure (exit 1) naming the setting at its line and column, found when
// the command starts: validate passes the file, since the token may come
// from $MILLRACE_ADMIN_TOKEN where the command runs.
func TestAdminOptions_an_open_address_without_a_token_names_where_it_was_set(t *testing.T) {
	t.Setenv("MILLRACE_BROKERS", "")
	t.Setenv(adminTokenEnv, "")
	open := strings.Replace(testPipelines, "version: 1\n", "version: 1\nadmin: {addr: 0.0.0.0:9464}\n", 1)
	const fromFile = "pipelines.yaml:2:15: admin addr 0.0.0.0:9464: an admin address other hosts can reach needs a token"
	for _, cmd := range []string{"run", "serve", "broker"} {
		t.Run(cmd+" with the file's admin.addr", func(t *testing.T) {
			p := parseArgsOf(t, open, "", cmd)
			if p.code != exitFailure || !strings.Contains(p.msg, fromFile) || strings.Contains(p.msg, "--admin-addr") ||
				strings.Contains(p.msg, "--help") {
				t.Errorf("exit %d: %q; want exit 1 naming %q, not --admin-addr", p.code, p.msg, fromFile)
			}
		})
		t.Run(cmd+" --admin-addr", func(t *testing.T) {
			p := parseArgsOf(t, testPipelines, "", cmd, "--admin-addr", "0.0.0.0:9465")
			if p.code != exitUsage || !strings.Contains(p.msg, "--admin-addr 0.0.0.0:9465: an admin address other hosts can reach needs a token") {
				t.Errorf("exit %d: %q; want exit 2 naming --admin-addr", p.code, p.msg)
			}
		})
	}
	if p := parseArgsOf(t, open, "", "validate"); p.code != 0 {
		t.Errorf("validate: exit %d: %q; want 0: the token may be in the environment where the file runs", p.code, p.msg)
	}

	// With a token in the environment, or the flag over the file's, the
	// command starts.
	t.Setenv(adminTokenEnv, "t0ken")
	p := parseArgsOf(t, open, "", "run")
	if o, ok := p.opts.(runOptions); p.code != 0 || !ok || o.admin.addr != "0.0.0.0:9464" || o.admin.token != "t0ken" {
		t.Errorf("run with $%s: exit %d %+v: %s", adminTokenEnv, p.code, p.opts, p.msg)
	}
	t.Setenv(adminTokenEnv, "")
	p = parseArgsOf(t, open, "", "run", "--admin-addr", "127.0.0.1:9465")
	if o, ok := p.opts.(runOptions); p.code != 0 || !ok || o.admin.addr != "127.0.0.1:9465" {
		t.Errorf("run --admin-addr 127.0.0.1:9465: exit %d %+v: %s", p.code, p.opts, p.msg)
	}
}
