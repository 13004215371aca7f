package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/millrace/millrace/testkit/testca"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/transport"
)

// clearSecurityEnv unsets every variable security reads, for the test,
// and runs it in a directory holding the CA files the tests name
// (security reads them).
func clearSecurityEnv(t *testing.T) {
	dir := t.TempDir()
	ca, err := testca.New(dir, "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.pem", "file-ca.pem", "env-ca.pem", "flag-ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, name), pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	for _, name := range []string{envTLS, envTLSCAFile, envTLSCertFile, envTLSKeyFile, envTLSServerName, envTLSInsecure,
		envSASLMechanism, envSASLUsername, envSASLPassword} {
		t.Setenv(name, "")
	}
}

// The flags win over the environment, which wins over the file, field by
// field; the password comes from the environment or the file only.
func TestSecurity_flags_over_environment_over_file(t *testing.T) {
	file := &transport.Security{TLS: &transport.TLS{CAFile: "file-ca.pem", ServerName: "k"},
		SASL: &transport.SASL{Mechanism: "SCRAM-SHA-256", Username: "file-user", Password: "file-pw"}}
	fileOff := &transport.Security{TLS: &transport.TLS{CAFile: "file-ca.pem", ServerName: "k", Off: true}}
	show := func(s *transport.Security) string {
		if s == nil {
			return "<nil>"
		}
		return fmt.Sprintf("%s tls=%+v sasl=%s/%s/%s", s.Protocol(), s.TLS, func() string {
			if s.SASL == nil {
				return "-"
			}
			return s.SASL.Mechanism
		}(), func() string {
			if s.SASL == nil {
				return "-"
			}
			return s.SASL.Username
		}(), func() string {
			if s.SASL == nil {
				return "-"
			}
			return s.SASL.Password
		}())
	}
	for _, c := range []struct {
		name  string
		file  *transport.Security
		env   map[string]string
		flags *securityFlags
		want  string
	}{
		{"nothing: PLAINTEXT", nil, nil, nil, "<nil>"},
		{"the file's", file, nil, nil, "SASL_SSL tls=&{CAFile:file-ca.pem CertFile: KeyFile: ServerName:k InsecureSkipVerify:false Off:false} sasl=SCRAM-SHA-256/file-user/file-pw"},
		{"environment over the file", file, map[string]string{envTLSCAFile: "env-ca.pem", envSASLMechanism: "SCRAM-SHA-512", envSASLPassword: "env-pw"}, nil,
			"SASL_SSL tls=&{CAFile:env-ca.pem CertFile: KeyFile: ServerName:k InsecureSkipVerify:false Off:false} sasl=SCRAM-SHA-512/file-user/env-pw"},
		{"flags over the environment", file, map[string]string{envTLSCAFile: "env-ca.pem", envSASLUsername: "env-user"},
			&securityFlags{caFile: "flag-ca.pem", saslUser: "flag-user"},
			"SASL_SSL tls=&{CAFile:flag-ca.pem CertFile: KeyFile: ServerName:k InsecureSkipVerify:false Off:false} sasl=SCRAM-SHA-256/flag-user/file-pw"},
		{"MILLRACE_TLS=false drops the file's TLS", file, map[string]string{envTLS: "false"}, nil, "SASL_PLAINTEXT tls=<nil> sasl=SCRAM-SHA-256/file-user/file-pw"},
		{"environment only", nil, map[string]string{envTLS: "true", envSASLMechanism: "PLAIN", envSASLUsername: "u", envSASLPassword: "p"}, nil,
			"SASL_SSL tls=&{CAFile: CertFile: KeyFile: ServerName: InsecureSkipVerify:false Off:false} sasl=PLAIN/u/p"},
		{"--tls-ca-file implies TLS", nil, nil, &securityFlags{caFile: "ca.pem"}, "SSL tls=&{CAFile:ca.pem CertFile: KeyFile: ServerName: InsecureSkipVerify:false Off:false} sasl=-/-/-"},
		{"--tls", nil, nil, &securityFlags{tls: optionalBool{value: true, set: true}}, "SSL tls=&{CAFile: CertFile: KeyFile: ServerName: InsecureSkipVerify:false Off:false} sasl=-/-/-"},
		{"--tls=false drops the file's TLS", file, nil, &securityFlags{tls: optionalBool{value: false, set: true}},
			"SASL_PLAINTEXT tls=<nil> sasl=SCRAM-SHA-256/file-user/file-pw"},
		{"--tls-ca-file wins over MILLRACE_TLS=false", nil, map[string]string{envTLS: "false"}, &securityFlags{caFile: "flag-ca.pem"},
			"SSL tls=&{CAFile:flag-ca.pem CertFile: KeyFile: ServerName: InsecureSkipVerify:false Off:false} sasl=-/-/-"},
		{"MILLRACE_TLS_INSECURE_SKIP_VERIFY=false turns nothing on", nil, map[string]string{envTLSInsecure: "false"}, nil, "<nil>"},
		{"MILLRACE_TLS=true turns on the file's disabled TLS with its settings", fileOff, map[string]string{envTLS: "true"}, nil,
			"SSL tls=&{CAFile:file-ca.pem CertFile: KeyFile: ServerName:k InsecureSkipVerify:false Off:false} sasl=-/-/-"},
		{"the file's disabled TLS stays off", fileOff, nil, nil, "<nil>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			clearSecurityEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			got, err := security(c.file, c.flags)
			if err != nil {
				t.Fatal(err)
			}
			if show(got) != c.want {
				t.Errorf("security = %s\n want %s", show(got), c.want)
			}
		})
	}
	if file.TLS.CAFile != "file-ca.pem" || file.SASL.Username != "file-user" {
		t.Errorf("the file's security was changed: %+v", file)
	}
}

func TestSecurity_incomplete_sasl_is_bad_usage(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, []string{"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "u"}, "SASL SCRAM-SHA-512 needs a password: $MILLRACE_SASL_PASSWORD"},
		{map[string]string{envSASLPassword: "p"}, []string{"--sasl-mechanism", "SCRAM-SHA-512"}, "SASL SCRAM-SHA-512 needs a username: --sasl-username or $MILLRACE_SASL_USERNAME"},
		{map[string]string{envSASLPassword: "p"}, []string{"--sasl-username", "u"}, "SASL needs a mechanism"},
		{map[string]string{envSASLPassword: "p"}, []string{"--sasl-mechanism", "GSSAPI", "--sasl-username", "u"}, `SASL mechanism "GSSAPI": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{map[string]string{envTLS: "yes please"}, nil, `$MILLRACE_TLS="yes please": want true or false`},
		{map[string]string{envTLSCAFile: "/no/such/ca.pem"}, nil, "tls ca_file: open /no/such/ca.pem: no such file or directory (from the file's broker.tls, $MILLRACE_TLS_* or --tls-ca-file)"},
	} {
		clearSecurityEnv(t)
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		p := parseArgs(t, "", append([]string{"tail", "t"}, c.args...)...)
		if p.code != 2 || !strings.Contains(p.msg, c.want) {
			t.Errorf("tail %v: exit %d %q, want 2 and %q", c.args, p.code, p.msg, c.want)
		}
		if strings.Contains(p.msg, "p\"") {
			t.Errorf("the message shows the password: %s", p.msg)
		}
	}
}

// Every command that talks to a running cluster takes the flags, and its
// cluster gets them.
func TestSecurity_flags_reach_every_client_command(t *testing.T) {
	clearSecurityEnv(t)
	t.Setenv(envSASLPassword, "pw-from-env")
	sec := []string{"--tls-ca-file", "ca.pem", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "u"}
	for _, args := range [][]string{
		{"tail", "t"},
		{"produce", "--pipeline", "orders"},
		{"quarantine", "ls", "--pipeline", "orders"},
		{"replay", "offsets", "--pipeline", "orders", "--stage", "check", "--to-earliest"},
		{"replay", "quarantine", "--pipeline", "orders"},
		{"replay", "topic", "--from", "a", "--to", "b"},
		{"jobs", "ls", "--pipeline", "orders"},
	} {
		p := parseArgs(t, `{"a":1}`, append(args, sec...)...)
		if p.code != 0 {
			t.Errorf("%v: exit %d %s", args, p.code, p.msg)
			continue
		}
		got := fmt.Sprintf("%+v", p.opts)
		cl, ok := findCluster(reflect.ValueOf(p.opts))
		if !ok || cl.Security == nil || cl.Security.SASL == nil || cl.Security.SASL.Password != "pw-from-env" ||
			cl.Security.TLS == nil || cl.Security.TLS.CAFile != "ca.pem" {
			t.Errorf("%v: options %s: want a cluster with the flags' security", args, got)
		}
		if strings.Contains(got, "pw-from-env") {
			t.Errorf("%v: the options print the password: %s", args, got)
		}
	}
}

// The server commands (run, serve, scheduler) take the environment's, as
// client commands do, but no flags.
func TestSecurity_server_commands_take_the_environments(t *testing.T) {
	clearSecurityEnv(t)
	t.Setenv(envTLSCAFile, "env-ca.pem")
	t.Setenv(envSASLMechanism, "SCRAM-SHA-512")
	t.Setenv(envSASLUsername, "u")
	t.Setenv(envSASLPassword, "pw-from-env")
	p := parseArgs(t, "", "serve")
	cl, ok := findCluster(reflect.ValueOf(p.opts))
	if p.code != 0 || !ok || cl.Security == nil || cl.Security.TLS.CAFile != "env-ca.pem" || cl.Security.SASL.Password != "pw-from-env" {
		t.Errorf("serve: exit %d %s, cluster %+v: want the environment's security", p.code, p.msg, cl)
	}
	p = parseArgs(t, "", "run")
	o, ok := p.opts.(runOptions)
	if p.code != 0 || !ok || o.engine.Plan.Security == nil || o.engine.Plan.Security.SASL.Username != "u" {
		t.Errorf("run: exit %d %s: want the plan to carry the environment's security", p.code, p.msg)
	}
	if p := parseArgs(t, "", "serve", "--sasl-username", "x"); p.code != 2 {
		t.Errorf("serve --sasl-username: exit %d, want 2 (no such flag: the environment or the file)", p.code)
	}
}

// findCluster finds the kafkaops.Cluster in a command's options.
func findCluster(v reflect.Value) (kafkaops.Cluster, bool) {
	if !v.IsValid() {
		return kafkaops.Cluster{}, false
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return kafkaops.Cluster{}, false
		}
		v = v.Elem()
	}
	if !v.CanAddr() {
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		v = c
	}
	if v.Type() == reflect.TypeFor[kafkaops.Cluster]() {
		return *(*kafkaops.Cluster)(unsafe.Pointer(v.UnsafeAddr())), true
	}
	if v.Kind() == reflect.Struct {
		for i := range v.NumField() {
			if cl, ok := findCluster(v.Field(i)); ok {
				return cl, true
			}
		}
	}
	return kafkaops.Cluster{}, false
}
