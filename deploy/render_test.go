package deploy_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/millrace/millrace/deploy"
)

func TestRender_repository_pipelines_decode_strictly_and_agree_with_the_plan(t *testing.T) {
	r, err := renderSource(t, repoPipelines, readRepoPipelines(t), nil, exampleOptions)
	if err != nil {
		t.Fatal(err)
	}
	o := check(t, r)
	stages, _ := r.plan.Stages()
	if len(stages) != 8 || len(o.deployments) != 9 || len(o.scaled) != 8 || len(o.budgets) != 9 {
		t.Errorf("%d stages: %d Deployments, %d ScaledObjects, %d PodDisruptionBudgets; want 8, 9 (the scheduler's too), 8, 9",
			len(stages), len(o.deployments), len(o.scaled), len(o.budgets))
	}
	// orders' first stage reads its priority topic and its input.
	so := o.scaled[0]
	if so.Metadata.Name != "millrace-orders-validate" || len(so.Spec.Triggers) != 2 ||
		so.Spec.Triggers[0].Metadata["topic"] != "orders.high" || so.Spec.Triggers[1].Metadata["topic"] != "orders" {
		t.Errorf("the first ScaledObject: %+v; want millrace-orders-validate on orders.high and orders", so)
	}
}

// apiPipelines has an api block with a token from the environment,
// brokers from the environment, no schedules, and a stage with scale and
// resources.
const apiPipelines = `version: 1
broker:
  brokers: ["${KAFKA_BROKERS}"]
api:
  tokens:
    - token: ${ORDERS_API_TOKEN}
      pipelines: [orders]
admin:
  token: ${MILLRACE_ADMIN_TOKEN}
pipelines:
  - name: orders
    input: orders.in
    partitions: 6
    priority:
      - {topic: orders.rush, weight: 8, name: rush}
      - {topic: orders.bulk, weight: 1, name: bulk}
    results: {}
    stages:
      - name: check_1
        filter: jq
        config: {program: .}
        scale: {min: 0, max: 3, lag: 500}
        retry: {tiers: [5s, 1m]}
        resources:
          requests: {cpu: 250m, memory: 128Mi}
          limits: {cpu: "1", memory: 0.5Gi}
      - name: price
        filter: jq
        config: {program: .}
        resources:
          limits: {memory: 1G}
`

var apiEnv = map[string]string{
	"KAFKA_BROKERS":        "kafka.data.svc.cluster.local:9092",
	"ORDERS_API_TOKEN":     "tok-3f9a1c5e-never-rendered",
	"MILLRACE_ADMIN_TOKEN": "adm-77d2b0a4-never-rendered",
}

func TestRender_api_priority_topics_scale_and_resources(t *testing.T) {
	tests := []struct {
		name   string
		source string
		env    map[string]string
		opts   deploy.Options
		checks func(t *testing.T, r render, o objects)
	}{
		{"the file's brokers, an api block with tokens, no schedules, no namespace", apiPipelines, apiEnv,
			deploy.Options{Image: "registry.example.com:5000/team/millrace@sha256:" + strings.Repeat("ab", 32)},
			func(t *testing.T, r render, o objects) {
				if len(o.services) != 1 || o.services[0].Name != deploy.APIName {
					t.Errorf("Services %v; want %s", o.services, deploy.APIName)
				}
				for _, f := range r.m.Files() {
					for _, v := range apiEnv {
						if strings.Contains(v, "never-rendered") && bytes.Contains(f.Data, []byte(v)) {
							t.Errorf("%s holds the value of a secret", f.Name)
						}
					}
				}
				if got := o.scaled[0].Spec; got.MinReplicaCount != 0 || got.MaxReplicaCount != 3 || len(got.Triggers) != 5 {
					t.Errorf("check_1 scales %+v; want 0..3 replicas on 3 inputs and 2 retry tiers", got)
				}
				if name := o.deployments[0].Name; name != "millrace-orders-check-1" {
					t.Errorf("stage orders/check_1 is named %s", name)
				}
			}},
		{"--brokers over the file's, a namespace, a stop timeout of 2m", apiPipelines, apiEnv,
			deploy.Options{Image: "millrace", Namespace: "jobs", Brokers: []string{"b-1.kafka:9094", "[fd00::1]:9094"},
				StopTimeout: 2 * time.Minute},
			func(t *testing.T, r render, o objects) {
				for _, d := range o.deployments {
					if g := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != 135 {
						t.Errorf("Deployment %s: terminationGracePeriodSeconds %d; want 135", d.Name, g)
					}
				}
			}},
		{"a file with trailing blanks, a tab and no final newline: the ConfigMap holds it as it is",
			"version: 1   \nbroker: {brokers: [kafka:9092]}\t\npipelines:\n  - {name: p, input: in, stages: [{name: s, filter: log}]}  ", nil,
			deploy.Options{Image: "millrace"}, nil},
		{"the repository's pipelines without a namespace", string(readRepoPipelines(t)), nil,
			deploy.Options{Image: "ghcr.io/millrace/millrace:1.0", Brokers: []string{"kafka:9092"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRender(t, tt.source, tt.env, tt.opts)
			o := check(t, r)
			if tt.checks != nil {
				tt.checks(t, r, o)
			}
		})
	}
}

func TestRender_is_deterministic(t *testing.T) {
	a := mustRender(t, apiPipelines, apiEnv, exampleOptions)
	b := mustRender(t, apiPipelines, apiEnv, exampleOptions)
	if !bytes.Equal(a.m.YAML(), b.m.YAML()) {
		t.Fatal("two renders of one file differ")
	}
}

// TestRender_names_are_DNS_labels_one_per_stage: a stage's objects are
// named millrace-<pipeline>-<stage> unless that is too long or another
// stage's; then they end in a hash of the stage's id.
func TestRender_names_are_DNS_labels_one_per_stage(t *testing.T) {
	long := strings.Repeat("p", 50)
	source := `version: 1
broker: {brokers: [kafka:9092]}
pipelines:
  - {name: a-b, input: in.1, stages: [{name: c, filter: log}]}
  - {name: a.b, input: in.2, stages: [{name: c, filter: log}]}
  - {name: ` + long + `, input: in.3, stages: [{name: first, filter: log}, {name: ` + strings.Repeat("s", 30) + `, filter: log}]}
  - {name: fine, input: in.4, stages: [{name: ok, filter: log}]}
`
	r := mustRender(t, source, nil, deploy.Options{Image: "millrace:dev"})
	o := check(t, r)
	want := map[string]func(string) bool{
		"a-b/c":                              hashed("millrace-a-b-c-"),
		"a.b/c":                              hashed("millrace-a-b-c-"),
		long + "/first":                      hashed("millrace-" + long[:45]),
		long + "/" + strings.Repeat("s", 30): hashed("millrace-" + long[:45]),
		"fine/ok":                            func(n string) bool { return n == "millrace-fine-ok" },
	}
	for id, ok := range want {
		name := stageDeployment(t, o, id)
		if !ok(name) {
			t.Errorf("stage %s is named %s", id, name)
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("stage %s: name %s: %v", id, name, errs)
		}
	}
	if got := deploy.StageName("orders", "price_v2"); got != "millrace-orders-price-v2" {
		t.Errorf("StageName(orders, price_v2) = %s", got)
	}
}

// hashed matches a name that starts with prefix and ends in "-" and 8
// hex digits.
func hashed(prefix string) func(string) bool {
	return func(name string) bool {
		i := strings.LastIndexByte(name, '-')
		return strings.HasPrefix(name, prefix) && i > 0 && len(name)-i-1 == 8 &&
			strings.Trim(name[i+1:], "0123456789abcdef") == "" && len(name) <= 63
	}
}

func TestRender_refuses_what_the_pods_could_not_run(t *testing.T) {
	const noBrokers = `version: 1
pipelines: [{name: p, input: in, stages: [{name: s, filter: log}]}]
`
	const fileBrokers = `version: 1
broker: {brokers: ["${KAFKA:-127.0.0.1:9092}"]}
pipelines: [{name: p, input: in, stages: [{name: s, filter: log}]}]
`
	image := deploy.Options{Image: "millrace:1"}
	with := func(o deploy.Options, f func(*deploy.Options)) deploy.Options { f(&o); return o }
	tests := []struct {
		name   string
		source string
		opts   deploy.Options
		option string // the OptionError's, if it is one
		want   string
	}{
		{"no brokers", noBrokers, image, "", "names no brokers (broker.brokers) and pods cannot use the embedded broker"},
		{"loopback brokers in the file", fileBrokers, image, "", `broker.brokers of pipelines.yaml: "127.0.0.1:9092": a loopback address`},
		{"an api block without tokens", strings.Replace(fileBrokers, "broker:", "api: {}\nbroker:", 1),
			with(image, func(o *deploy.Options) { o.Brokers = []string{"kafka:9092"} }), "", "api block without tokens"},
		{"requests above limits", strings.Replace(noBrokers, "filter: log}", "filter: log, resources: {requests: {cpu: 2}, limits: {cpu: 1500m}}}", 1),
			with(image, func(o *deploy.Options) { o.Brokers = []string{"kafka:9092"} }), "",
			"stage p/s: resources.requests.cpu 2 is more than resources.limits.cpu 1500m"},
		{"a pipeline name too long for a label", strings.Replace(noBrokers, "name: p,", "name: "+strings.Repeat("x", 64)+",", 1),
			with(image, func(o *deploy.Options) { o.Brokers = []string{"kafka:9092"} }), "", "cannot be a Kubernetes label value"},
		{"no image", noBrokers, deploy.Options{Brokers: []string{"kafka:9092"}}, "image", "the container image to run is required"},
		{"not an image", noBrokers, deploy.Options{Image: "Millrace Latest", Brokers: []string{"kafka:9092"}}, "image", "want an image reference"},
		{"a namespace that is not a DNS label", noBrokers, with(image, func(o *deploy.Options) { o.Namespace = "Team_A" }), "namespace",
			"want a Kubernetes namespace name"},
		{"a loopback broker", noBrokers, with(image, func(o *deploy.Options) { o.Brokers = []string{"localhost:9092"} }), "brokers",
			"a loopback address"},
		{"a broker without a port", noBrokers, with(image, func(o *deploy.Options) { o.Brokers = []string{"kafka"} }), "brokers",
			"want host:port"},
		{"a negative stop timeout", noBrokers, with(image, func(o *deploy.Options) {
			o.Brokers, o.StopTimeout = []string{"kafka:9092"}, -time.Second
		}), "stop-timeout", "want 0 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderSource(t, "pipelines.yaml", []byte(tt.source), nil, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error saying %q", err, tt.want)
			}
			var oe *deploy.OptionError
			if isOption := errors.As(err, &oe); isOption != (tt.option != "") || isOption && oe.Option != tt.option {
				t.Fatalf("%v: OptionError %+v; want one of option %q", err, oe, tt.option)
			}
		})
	}
}

func TestOptions_take_image_references(t *testing.T) {
	for _, ref := range []string{"millrace", "millrace:latest", "ghcr.io/millrace/millrace:1.2.3", "localhost:5000/a/b_c/d-e:v1",
		"[fd00::1]:5000/millrace:x", "millrace@sha256:" + strings.Repeat("0", 64), "docker.io/library/millrace:1@sha256:" + strings.Repeat("f", 64)} {
		if err := (deploy.Options{Image: ref}).Validate(); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
	for _, ref := range []string{"Millrace", "millrace:", ":1", "a//b", "millrace:-x", "millrace@sha256:12", "ghcr.io/-x/y", "a b"} {
		if err := (deploy.Options{Image: ref}).Validate(); err == nil {
			t.Errorf("%s: taken", ref)
		}
	}
}
