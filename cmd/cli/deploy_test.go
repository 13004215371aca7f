package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/millrace/millrace/deploy"
)

// deployPipelines is a pipelines file with brokers, an api block with a
// token from the environment and no schedules.
const deployPipelines = `version: 1
broker: {brokers: [kafka-0.kafka:9092, kafka-1.kafka:9092]}
api:
  tokens: [{token: "${DEPLOY_TEST_TOKEN}"}]
pipelines:
  - name: orders
    input: orders
    partitions: 4
    stages:
      - {name: check, filter: log, scale: {max: 2}}
      - {name: price, filter: log, resources: {requests: {cpu: 100m}}}
`

// runDeploy runs millrace with args in a fresh directory holding source
// as pipelines.yaml; it returns the exit code, stdout and stderr (with
// the error line).
func runDeploy(t *testing.T, source string, args ...string) (int, string, string) {
	t.Helper()
	t.Chdir(t.TempDir())
	if err := os.WriteFile("pipelines.yaml", []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDeployRender_usage_errors_exit_2_naming_the_flag(t *testing.T) {
	t.Setenv("DEPLOY_TEST_TOKEN", "t0ken")
	noBrokers := strings.Replace(deployPipelines, "broker: {brokers: [kafka-0.kafka:9092, kafka-1.kafka:9092]}\n", "", 1)
	tests := []struct {
		source string
		args   []string
		want   string
	}{
		{deployPipelines, []string{"deploy", "render"}, "--image is required"},
		{deployPipelines, []string{"deploy", "render", "--image", "My Image"}, `--image "My Image": want an image reference`},
		{deployPipelines, []string{"deploy", "render", "--image", "m:1", "--namespace", "Jobs"}, `--namespace "Jobs": want a Kubernetes namespace name`},
		{deployPipelines, []string{"deploy", "render", "--image", "m:1", "--brokers", "127.0.0.1:9092"}, `--brokers "127.0.0.1:9092": a loopback address`},
		{deployPipelines, []string{"deploy", "render", "--image", "m:1", "--brokers", "kafka"}, `--brokers "kafka": want host:port`},
		{deployPipelines, []string{"deploy", "render", "--image", "m:1", "--stop-timeout", "0s"}, "--stop-timeout 0s: want more than 0"},
		{deployPipelines, []string{"deploy", "render", "--image", "m:1", "extra"}, `unknown command "extra"`},
		{noBrokers, []string{"deploy", "render", "--image", "m:1"}, "--brokers is required: neither $MILLRACE_BROKERS nor pipelines.yaml (broker.brokers) names brokers"},
		{deployPipelines, []string{"deploy"}, "deploy needs a subcommand: render"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errb := runDeploy(t, tt.source, tt.args...)
			msg := strings.TrimSuffix(errb, "\n")
			if code != exitUsage || out != "" || strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "millrace: ") ||
				!strings.Contains(msg, tt.want) || !strings.HasSuffix(msg, " --help')") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and one line holding %q and pointing at --help", code, out, errb, tt.want)
			}
		})
	}
}

func TestDeployRender_failures_exit_1(t *testing.T) {
	t.Setenv("DEPLOY_TEST_TOKEN", "t0ken")
	tests := []struct {
		name, source string
		want         []string
	}{
		{"the file's problems, at their line and column", strings.Replace(deployPipelines, "filter: log,", "filter: nope,", 1),
			[]string{"pipelines.yaml:10:", `"nope"`, "pipelines.yaml: 1 problem"}},
		{"an api block without tokens", strings.Replace(deployPipelines, `tokens: [{token: "${DEPLOY_TEST_TOKEN}"}]`, "addr: 127.0.0.1:8080", 1),
			[]string{"millrace: pipelines.yaml has an api block without tokens"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errb := runDeploy(t, tt.source, "deploy", "render", "--image", "m:1")
			if code != exitFailure || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1", code, out, errb)
			}
			for _, w := range tt.want {
				if !strings.Contains(errb, w) {
					t.Errorf("stderr %q does not say %q", errb, w)
				}
			}
		})
	}
}

func TestDeployRender_prints_every_object_or_writes_the_files(t *testing.T) {
	t.Setenv("DEPLOY_TEST_TOKEN", "t0ken-never-printed")
	t.Setenv("MILLRACE_BROKERS", "")
	code, out, errb := runDeploy(t, deployPipelines, "deploy", "render", "--image", "ghcr.io/millrace/millrace:1.0")
	if code != 0 || errb != "note: the pods read the file's secrets from the Secret millrace, which must hold DEPLOY_TEST_TOKEN\n" {
		t.Fatalf("exit %d: %s; want 0 and a note naming the Secret's key", code, errb)
	}
	// One ConfigMap, a Service, 3 Deployments (2 stages and the API), 3
	// PodDisruptionBudgets and 2 ScaledObjects, in that order, no
	// kustomization and no secret.
	var kinds []string
	for _, line := range strings.Split(out, "\n") {
		if k, ok := strings.CutPrefix(line, "kind: "); ok {
			kinds = append(kinds, k)
		}
	}
	want := "ConfigMap Service Deployment Deployment Deployment PodDisruptionBudget PodDisruptionBudget PodDisruptionBudget ScaledObject ScaledObject"
	if got := strings.Join(kinds, " "); got != want || !strings.HasPrefix(out, deploy.Header+"pipelines.yaml;") ||
		strings.Count(out, "\n---\n") != len(kinds)-1 {
		t.Errorf("stdout holds %s; want %s, one document each, after the header:\n%s", got, want, out)
	}
	if strings.Contains(out, "t0ken-never-printed") {
		t.Error("the render holds the API token")
	}

	// --out writes the files and says so; a file of an earlier render that
	// this one does not make goes, other files stay.
	dir := filepath.Join("k8s", "prod")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := []byte(deploy.Header + "old.yaml; do not edit: render again\nkind: Service\n")
	for name, data := range map[string][]byte{"services.yaml": stale, "notes.md": []byte("mine")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noAPI := strings.Replace(deployPipelines, "api:\n  tokens: [{token: \"${DEPLOY_TEST_TOKEN}\"}]\n", "", 1)
	if err := os.WriteFile("pipelines.yaml", []byte(noAPI), 0o644); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	code = run(context.Background(), []string{"deploy", "render", "--image", "m:1", "--namespace", "jobs", "--out", dir},
		strings.NewReader(""), &o, &e)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e.String())
	}
	wantOut := "wrote k8s/prod/configmap.yaml\nwrote k8s/prod/deployments.yaml\nwrote k8s/prod/kustomization.yaml\n" +
		"wrote k8s/prod/poddisruptionbudgets.yaml\nwrote k8s/prod/scaledobjects.yaml\n" +
		"removed k8s/prod/services.yaml: this render makes no such objects\napply with: kubectl apply -k k8s/prod (the pods need the Secret millrace first: see deploy render --help)\n"
	if o.String() != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", o.String(), wantOut)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if got := strings.Join(names, " "); got != "configmap.yaml deployments.yaml kustomization.yaml notes.md poddisruptionbudgets.yaml scaledobjects.yaml" {
		t.Errorf("%s holds %s", dir, got)
	}
	k, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil || !strings.Contains(string(k), "namespace: jobs\n") {
		t.Errorf("kustomization.yaml: %s, %v; want namespace jobs", k, err)
	}
}

// TestDeployRender_of_the_repository_pipelines_is_deploy_examples: the
// command, run as deploy/examples_test.go says, makes deploy/examples.
func TestDeployRender_of_the_repository_pipelines_is_deploy_examples(t *testing.T) {
	t.Chdir("../..")
	out := t.TempDir()
	var o, e bytes.Buffer
	code := run(context.Background(), []string{"deploy", "render", "--image", "ghcr.io/millrace/millrace:latest",
		"--namespace", "millrace", "--brokers", "kafka-0.kafka:9092,kafka-1.kafka:9092,kafka-2.kafka:9092", "--out", out},
		strings.NewReader(""), &o, &e)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e.String())
	}
	examples := filepath.Join("deploy", "examples")
	entries, err := os.ReadDir(examples)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(rendered) {
		t.Errorf("%s holds %d files, the render %d", examples, len(entries), len(rendered))
	}
	for _, en := range entries {
		want, err := os.ReadFile(filepath.Join(examples, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, en.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the command's render (%v): go test ./deploy -run TestExamples says how", en.Name(), err)
		}
	}
}

// A secret written in the file would be in the ConfigMap: render refuses,
// with exit 1: it is a problem of the file, not of the command line.
func TestDeployRender_refuses_a_secret_written_in_the_file(t *testing.T) {
	literal := strings.Replace(deployPipelines, `tokens: [{token: "${DEPLOY_TEST_TOKEN}"}]`, `tokens: [{token: "t0ken-in-the-file"}]`, 1)
	code, out, errb := runDeploy(t, literal, "deploy", "render", "--image", "m:1")
	if code != exitFailure || out != "" || strings.Contains(errb+out, "t0ken-in-the-file") ||
		!strings.Contains(errb, "warning: an api token is written in the file") ||
		!strings.Contains(errb, "millrace: pipelines.yaml: an api token (line 4) written in the file would be in the ConfigMap") ||
		strings.Contains(errb, "--help") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1, the warning and the refusal, not the token", code, out, errb)
	}
}

// The brokers are --brokers, else $MILLRACE_BROKERS, else the file's; from
// the environment render says so, so that a variable left in the shell
// does not go into the objects unseen.
func TestDeployRender_takes_MILLRACE_BROKERS_after_brokers_and_says_so(t *testing.T) {
	t.Setenv("DEPLOY_TEST_TOKEN", "t0ken")
	noBrokers := strings.Replace(deployPipelines, "broker: {brokers: [kafka-0.kafka:9092, kafka-1.kafka:9092]}\n", "", 1)
	tests := []struct {
		name, env, source string
		flags             []string
		want              string // the brokers in the Deployments
		note              string // "" for none
	}{
		{"the file's", "", deployPipelines, nil, "kafka-0.kafka:9092,kafka-1.kafka:9092", ""},
		{"the environment's over the file's", "env-kafka:9092", deployPipelines, nil, "env-kafka:9092",
			"note: the brokers are $MILLRACE_BROKERS's, env-kafka:9092, and the objects hold them, in place of the file's broker.brokers (--brokers picks others)\n"},
		{"the environment's without the file's", "env-kafka:9092,env-kafka-2:9092", noBrokers, nil, "env-kafka:9092,env-kafka-2:9092",
			"note: the brokers are $MILLRACE_BROKERS's, env-kafka:9092,env-kafka-2:9092, and the objects hold them (--brokers picks others)\n"},
		{"the flag's over the environment's", "env-kafka:9092", deployPipelines, []string{"--brokers", "flag-kafka:9092"}, "flag-kafka:9092", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("MILLRACE_BROKERS", tt.env)
			code, out, errb := runDeploy(t, tt.source, append([]string{"deploy", "render", "--image", "m:1"}, tt.flags...)...)
			note := strings.ReplaceAll(errb, "note: the pods read the file's secrets from the Secret millrace, which must hold DEPLOY_TEST_TOKEN\n", "")
			if code != 0 || note != tt.note {
				t.Fatalf("exit %d, stderr %q; want 0 and the note %q", code, errb, tt.note)
			}
			if !strings.Contains(out, "- name: MILLRACE_BROKERS\n          value: "+tt.want+"\n") {
				t.Errorf("the pods do not get MILLRACE_BROKERS %s:\n%s", tt.want, out)
			}
		})
	}

	// A wrong broker in the environment is named as the environment's.
	t.Setenv("MILLRACE_BROKERS", "127.0.0.1:9092")
	code, _, errb := runDeploy(t, deployPipelines, "deploy", "render", "--image", "m:1")
	if code != exitUsage || !strings.HasPrefix(errb, `millrace: $MILLRACE_BROKERS "127.0.0.1:9092": a loopback address`) {
		t.Errorf("exit %d, stderr %q; want exit 2 naming $MILLRACE_BROKERS", code, errb)
	}
}
