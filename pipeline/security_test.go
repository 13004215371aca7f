package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/millrace/millrace/testkit/testca"

	"github.com/millrace/millrace/filters"
	_ "github.com/millrace/millrace/filters/std"

	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// writeCA writes a CA certificate and a certificate it signed, with that
// one's key, as PEM files in dir (testkit/testca), returning the CA's path
// and the key's.
func writeCA(t *testing.T, dir string) (caFile, keyFile string) {
	t.Helper()
	ca, err := testca.New(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(dir, "client", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertFile, cert.KeyFile
}

const securityPipelines = "pipelines: [{name: p, input: p.in, stages: [{name: a, filter: log}]}]\n"

func TestParse_broker_tls_and_sasl_become_the_plans_security_never_shown(t *testing.T) {
	const password = "canary-pw-51c9"
	dir := t.TempDir()
	ca, _ := writeCA(t, dir)
	env := func(k string) (string, bool) {
		switch k {
		case "KAFKA_PASSWORD":
			return password, true
		case "CA":
			return ca, true
		}
		return "", false
	}
	src := `version: 1
broker:
  brokers: [kafka-1.internal:9093]
  tls: {ca_file: "${CA}", server_name: kafka.internal}
  sasl: {mechanism: SCRAM-SHA-512, username: millrace, password: "${KAFKA_PASSWORD}"}
` + securityPipelines
	f, err := pipeline.Parse("x.yaml", []byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings %v, want none", f.Warnings)
	}
	sec := f.Plan().Security
	want := transport.Security{TLS: &transport.TLS{CAFile: ca, ServerName: "kafka.internal"},
		SASL: &transport.SASL{Mechanism: "SCRAM-SHA-512", Username: "millrace", Password: password}}
	if sec == nil || sec.TLS == nil || *sec.TLS != *want.TLS || sec.SASL == nil || *sec.SASL != *want.SASL {
		t.Fatalf("plan security %+v, want %+v", sec, want)
	}
	if sec.Protocol() != "SASL_SSL" {
		t.Errorf("protocol %s, want SASL_SSL", sec.Protocol())
	}
	c, err := f.Plan().SaramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !c.Net.TLS.Enable || c.Net.TLS.Config.RootCAs == nil || c.Net.TLS.Config.ServerName != "kafka.internal" ||
		!c.Net.SASL.Enable || string(c.Net.SASL.Mechanism) != "SCRAM-SHA-512" || c.Net.SASL.User != "millrace" ||
		c.Net.SASL.Password != password || c.Net.SASL.SCRAMClientGeneratorFunc == nil {
		t.Errorf("sarama config: TLS %+v, SASL enable %v mechanism %s user %s: want TLS with the CA and SCRAM-SHA-512",
			c.Net.TLS, c.Net.SASL.Enable, c.Net.SASL.Mechanism, c.Net.SASL.User)
	}
	p, err := f.Plan().ProducerConfig()
	if err != nil || !p.Net.TLS.Enable || !p.Net.SASL.Enable || !p.Producer.Idempotent {
		t.Errorf("producer config: %v, TLS %v SASL %v idempotent %v: want all", err, p.Net.TLS.Enable, p.Net.SASL.Enable, p.Producer.Idempotent)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for i, v := range []any{f.Plan(), *f.Plan(), sec, *sec, *sec.SASL, f, *f.Broker, *f.Broker.SASL} {
			if got := fmt.Sprintf(verb, v); strings.Contains(got, password) {
				t.Errorf("%s of value %d (%T) shows the password: %s", verb, i, v, got)
			}
		}
	}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "broker", f.Broker, "sasl", *f.Broker.SASL, "plan", f.Plan())
	for _, v := range []any{f.Broker, *f.Broker.SASL, f.Plan().Security} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		logged.Write(j)
	}
	if strings.Contains(logged.String(), password) {
		t.Errorf("JSON or slog shows the password: %s", logged.String())
	}

	// tls: {enabled: false} and no sasl: PLAINTEXT.
	f, err = pipeline.Parse("x.yaml", []byte("version: 1\nbroker: {brokers: [k:9092], tls: {enabled: false, ca_file: /nope}}\n"+securityPipelines), env)
	if err != nil {
		t.Fatal(err)
	}
	if sec := f.Plan().Security; sec.Protocol() != "PLAINTEXT" || sec.TLS == nil || !sec.TLS.Off || sec.TLS.CAFile != "/nope" {
		t.Errorf("tls disabled: security %+v, want PLAINTEXT, the TLS settings kept but off", sec)
	}
	if c, err := f.Plan().SaramaConfig(); err != nil || c.Net.TLS.Enable {
		t.Errorf("tls disabled: %v, TLS %v; want a config without TLS (its ca_file is not read)", err, c.Net.TLS.Enable)
	}
	// No tls and no sasl: nil.
	f, err = pipeline.Parse("x.yaml", []byte("version: 1\nbroker: {brokers: [k:9092]}\n"+securityPipelines), env)
	if err != nil {
		t.Fatal(err)
	}
	if sec := f.Plan().Security; sec != nil {
		t.Errorf("no tls, no sasl: security %+v, want nil", sec)
	}
	// An empty tls block: TLS with the system's roots.
	f, err = pipeline.Parse("x.yaml", []byte("version: 1\nbroker: {brokers: [k:9092], tls: {}}\n"+securityPipelines), env)
	if err != nil {
		t.Fatal(err)
	}
	if sec := f.Plan().Security; sec == nil || sec.TLS == nil || sec.SASL != nil || sec.Protocol() != "SSL" {
		t.Errorf("tls: {}: security %+v, want TLS only", sec)
	}
}

func TestParse_broker_security_problems_at_their_lines(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCA(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return "secret-value", k == "PW" }
	for _, c := range []struct{ broker, want string }{
		{"{brokers: [k:9092], tls: {ca_file: /no/such/ca.pem}}", "x.yaml:2:44: tls ca_file: open /no/such/ca.pem: no such file or directory"},
		{"{brokers: [k:9092], tls: {ca_file: " + notPEM + "}}", "x.yaml:2:44: tls ca_file " + notPEM + ": no PEM certificate in it"},
		{"{brokers: [k:9092], tls: {cert_file: " + ca + "}}", "x.yaml:2:46: tls cert_file needs key_file too"},
		{"{brokers: [k:9092], tls: {key_file: " + caKey + "}}", "x.yaml:2:45: tls key_file needs cert_file too"},
		{"{brokers: [k:9092], tls: {cert_file: " + ca + ", key_file: " + notPEM + "}}", "x.yaml:2:46: tls cert_file " + ca + ", key_file " + notPEM},
		{"{brokers: [k:9092], sasl: {mechanism: SCRAM-SHA-1, username: u, password: p}}", `x.yaml:2:47: sasl mechanism "SCRAM-SHA-1": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"{brokers: [k:9092], sasl: {username: u, password: p}}", `x.yaml:2:35: broker sasl: missing key "mechanism"`},
		{"{brokers: [k:9092], sasl: {mechanism: PLAIN, password: p}}", `x.yaml:2:35: broker sasl: the username is empty`},
		{"{brokers: [k:9092], sasl: {mechanism: PLAIN, username: u, password: ''}}", `x.yaml:2:77: broker sasl: the password is empty`},
		{"{brokers: [k:9092], sasl: {mechanism: PLAIN, username: u, password: p}, tls: {enabled: maybe}}", `x.yaml:2:96: enabled: want true or false, got "maybe"`},
		{"{brokers: [k:9092], sasl: {mechanism: PLAIN, username: u, password: p, oops: 1}}", `x.yaml:2:80: unknown key "oops" in broker sasl`},
	} {
		_, err := pipeline.Parse("x.yaml", []byte("version: 1\nbroker: "+c.broker+"\n"+securityPipelines), env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("broker %s: error %v, want %q", c.broker, err, c.want)
		}
	}
}

func TestParse_broker_security_warnings(t *testing.T) {
	env := func(k string) (string, bool) { return "pw", k == "PW" }
	for _, c := range []struct {
		broker string
		want   []string
	}{
		{"{brokers: [127.0.0.1:9092], sasl: {mechanism: PLAIN, username: u, password: '${PW}'}}", nil},
		{"{brokers: [localhost:9092, '[::1]:9092'], sasl: {mechanism: PLAIN, username: u, password: '${PW}'}}", nil},
		{"{brokers: [127.0.0.1:9092, kafka.internal:9092], sasl: {mechanism: PLAIN, username: u, password: '${PW}'}}",
			[]string{"x.yaml:2:76: warning: sasl mechanism PLAIN sends the password as it is, and without tls it goes unencrypted to broker 2 (kafka.internal:9092)"}},
		{"{brokers: [kafka.internal:9092], sasl: {mechanism: PLAIN, username: u, password: '${PW}'}, tls: {}}", nil},
		{"{brokers: [kafka.internal:9092], sasl: {mechanism: SCRAM-SHA-512, username: u, password: '${PW}'}}", nil},
		{"{brokers: [kafka.internal:9092], tls: {insecure_skip_verify: true}}",
			[]string{"x.yaml:2:70: warning: insecure_skip_verify: the brokers' certificates are not checked"}},
	} {
		f, err := pipeline.Parse("x.yaml", []byte("version: 1\nbroker: "+c.broker+"\n"+securityPipelines), env)
		if err != nil {
			t.Fatalf("broker %s: %v", c.broker, err)
		}
		if len(f.Warnings) != len(c.want) {
			t.Errorf("broker %s: warnings %q, want %q", c.broker, f.Warnings, c.want)
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(f.Warnings[i].String(), w) {
				t.Errorf("broker %s: warning %q, want it to start %q", c.broker, f.Warnings[i], w)
			}
		}
	}
}

// The variables the file's secrets are read from are known to the file
// and kept from exec's programs, even by inherit_env: ['*']; a password
// written in the file is a warning.
func TestParse_secret_variables_are_kept_from_exec_programs(t *testing.T) {
	const password = "canary-pw-e17a"
	t.Setenv("KAFKA_PASSWORD", password)
	t.Setenv("ADMIN_TOKEN", "admin-tok-3c")
	src := `version: 1
broker:
  brokers: [k:9092]
  sasl: {mechanism: SCRAM-SHA-512, username: u, password: "${KAFKA_PASSWORD}"}
admin: {token: "${ADMIN_TOKEN}"}
pipelines:
  - name: p
    input: p.in
    stages:
      - {name: a, filter: exec, config: {command: [env], inherit_env: ["*"]}}
`
	f, err := pipeline.Parse("x.yaml", []byte(src), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.SecretEnv) != "[ADMIN_TOKEN KAFKA_PASSWORD]" || len(f.LiteralSecrets) != 0 || len(f.Warnings) != 0 {
		t.Errorf("SecretEnv %v, LiteralSecrets %v, warnings %v: want the two variables, nothing literal, no warning",
			f.SecretEnv, f.LiteralSecrets, f.Warnings)
	}
	stages, err := f.Plan().Stages()
	if err != nil {
		t.Fatal(err)
	}
	flt, err := stages[0].Filter.New(stages[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	out, err := flt.Process(context.Background(), &filters.Message{})
	if err != nil {
		t.Fatal(err)
	}
	env := string(out[0].Payload)
	if strings.Contains(env, password) || strings.Contains(env, "admin-tok-3c") || !strings.Contains(env, "PATH=") {
		t.Errorf("the program's environment holds a secret of the file, or not PATH:\n%s", env)
	}

	// Listing one is a problem at its line.
	_, err = pipeline.Parse("x.yaml", []byte(strings.Replace(src, `inherit_env: ["*"]`, `inherit_env: [PATH, KAFKA_PASSWORD]`, 1)), os.LookupEnv)
	if err == nil || !strings.Contains(err.Error(), "KAFKA_PASSWORD holds a secret of the pipelines file") {
		t.Errorf("inherit_env naming the password's variable: %v", err)
	}

	// A password written in the file works, with a warning.
	f, err = pipeline.Parse("x.yaml", []byte(strings.Replace(src, `"${KAFKA_PASSWORD}"`, "hunter2", 1)), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.LiteralSecrets) != "[broker.sasl.password (line 4)]" || len(f.Warnings) != 1 ||
		!strings.HasPrefix(f.Warnings[0].String(), "x.yaml:4:59: warning: broker.sasl.password is written in the file") {
		t.Errorf("literal password: LiteralSecrets %v, warnings %v", f.LiteralSecrets, f.Warnings)
	}
}
