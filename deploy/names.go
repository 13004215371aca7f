package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/millrace/millrace/pipeline"
)

// Names and labels of the rendered objects.
const (
	// ConfigMapName is the ConfigMap holding the pipelines file.
	ConfigMapName = "millrace-pipelines"
	// ConfigKey is the pipelines file's key in the ConfigMap, and its
	// file name in ConfigDir.
	ConfigKey = "pipelines.yaml"
	// ConfigDir is where the pods mount the ConfigMap, read-only.
	ConfigDir = "/etc/millrace"
	// SecretName is the Secret, made by you, whose keys become the
	// environment of every pod (optional): MILLRACE_ADMIN_TOKEN and the
	// variables the pipelines file reads (${NAME}).
	SecretName = "millrace"
	// SchedulerName and APIName are the scheduler's and the HTTP jobs
	// API's Deployment (and PodDisruptionBudget; APIName its Service).
	SchedulerName = "millrace-scheduler"
	APIName       = "millrace-api"

	// AdminPort is the admin server's port (/healthz, /readyz, /metrics),
	// named AdminPortName; APIPort the jobs API's, named APIPortName.
	AdminPort     = 9464
	AdminPortName = "admin"
	APIPort       = 8080
	APIPortName   = "http"
	// ContainerName is the millrace container of every pod.
	ContainerName = "millrace"
	// BrokersEnv holds the brokers in every pod; KEDA's Kafka scaler reads
	// it from the stage's container (bootstrapServersFromEnv).
	BrokersEnv = "MILLRACE_BROKERS"
	// InstanceIDEnv is a stage pod's name: the static group membership id
	// (group.instance.id) `millrace run` joins its groups with.
	InstanceIDEnv = "MILLRACE_INSTANCE_ID"

	// Labels of every object. Component is stage, scheduler or api;
	// Pipeline and Stage are a stage's names as in the file.
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelPipeline  = "millrace.dev/pipeline"
	LabelStage     = "millrace.dev/stage"
	// ConfigHashAnnotation on a pod template is the SHA-256 of the
	// pipelines file, so that a change of the file rolls the pods.
	ConfigHashAnnotation = "millrace.dev/pipelines-sha256"
)

// Components, the values of [LabelComponent].
const (
	ComponentStage     = "stage"
	ComponentScheduler = "scheduler"
	ComponentAPI       = "api"
)

// maxName is the longest object name rendered: a DNS-1123 label, as a
// Deployment's name must be to name its pods' hostnames.
const maxName = validation.DNS1123LabelMaxLength

// StageName is the name of a stage's Deployment, ScaledObject and
// PodDisruptionBudget when no other stage's would be the same:
// "millrace-<pipeline>-<stage>", with '.' and '_' read as '-'
// (orders/price: millrace-orders-price). A name longer than 63
// characters, or one two stages share (a.b/c and a/b.c), is cut and ends
// in a hash of the stage's id instead: see [Render].
func StageName(pipelineName, stage string) string {
	return dnsName("millrace-" + pipelineName + "-" + stage)
}

func dnsName(s string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(s)
}

// stageNames gives each stage (by id) its object name: [StageName], or,
// when that is too long or shared, as much of it as fits before "-" and 8
// hex digits of the SHA-256 of the stage's id.
func stageNames(stages []pipeline.StagePlan) map[string]string {
	count := map[string]int{SchedulerName: 1, APIName: 1, ConfigMapName: 1}
	for _, s := range stages {
		count[StageName(s.Pipeline, s.Name)]++
	}
	names := map[string]string{}
	for _, s := range stages {
		name := StageName(s.Pipeline, s.Name)
		if len(name) > maxName || count[name] > 1 {
			sum := sha256.Sum256([]byte(s.ID()))
			suffix := "-" + hex.EncodeToString(sum[:4])
			name = strings.TrimRight(name[:min(len(name), maxName-len(suffix))], "-") + suffix
		}
		names[s.ID()] = name
	}
	return names
}

// labelValue checks that a pipeline's or stage's name can be a label
// value (at most 63 characters; the name pattern does the rest).
func labelValue(what, v string) error {
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		return fmt.Errorf("%s %q cannot be a Kubernetes label value: %s; shorten it", what, v, errs[0])
	}
	return nil
}

func labels(component string) map[string]string {
	return map[string]string{LabelName: "millrace", LabelComponent: component}
}

func stageLabels(s pipeline.StagePlan) map[string]string {
	l := labels(ComponentStage)
	l[LabelPipeline], l[LabelStage] = s.Pipeline, s.Name
	return l
}
