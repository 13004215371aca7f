package deploy_test

// check_test.go decodes a render strictly into the Kubernetes API types
// and checks its objects against each other and against the plan.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/millrace/millrace/deploy"
	_ "github.com/millrace/millrace/filters/std" // the filters of the pipelines files
	"github.com/millrace/millrace/pipeline"
)

// repoPipelines is the repository's example pipelines file.
var repoPipelines = filepath.Join("..", pipeline.DefaultFile)

// exampleOptions are the options deploy/examples is rendered with.
var exampleOptions = deploy.Options{
	Image:     "ghcr.io/millrace/millrace:latest",
	Namespace: "millrace",
	Brokers:   []string{"kafka-0.kafka:9092", "kafka-1.kafka:9092", "kafka-2.kafka:9092"},
}

// render is one render and what it was made from.
type render struct {
	plan    *pipeline.Plan
	file    *pipeline.File
	source  []byte
	opts    deploy.Options
	brokers []string // what the pods get
	m       *deploy.Manifests
}

// renderSource parses source as the pipelines file name (with env as its
// environment) and renders it.
func renderSource(t *testing.T, name string, source []byte, env map[string]string, o deploy.Options) (render, error) {
	t.Helper()
	f, err := pipeline.Parse(name, source, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	m, err := deploy.Render(f, source, o)
	r := render{plan: f.Plan(), file: f, source: source, opts: o, m: m, brokers: o.Brokers}
	if len(r.brokers) == 0 {
		r.brokers = r.plan.Brokers
	}
	if r.opts.StopTimeout == 0 {
		r.opts.StopTimeout = deploy.DefaultStopTimeout
	}
	return r, err
}

func mustRender(t *testing.T, source string, env map[string]string, o deploy.Options) render {
	t.Helper()
	r, err := renderSource(t, "pipelines.yaml", []byte(source), env, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// objects are the rendered objects, each decoded strictly into its API
// type (the ScaledObjects as JSON values checked against KEDA's CRD).
type objects struct {
	configMaps    []corev1.ConfigMap
	deployments   []appsv1.Deployment
	budgets       []policyv1.PodDisruptionBudget
	services      []corev1.Service
	scaled        []scaledObject
	kustomization kustomization
	files         []string // the files, kustomization.yaml aside
}

// scaledObject is a rendered ScaledObject as the test reads it, once its
// schema check passed.
type scaledObject struct {
	metav1.TypeMeta
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		ScaleTargetRef struct {
			APIVersion, Kind, Name, EnvSourceContainerName string
		} `json:"scaleTargetRef"`
		MinReplicaCount, MaxReplicaCount int
		Triggers                         []struct {
			Type     string
			Metadata map[string]string
		}
	} `json:"spec"`
}

// kustomization is kustomize's Kustomization, with the fields the render
// may write.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
}

// documents splits a YAML stream into its documents.
func documents(t *testing.T, data []byte) [][]byte {
	t.Helper()
	rd := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(line, []byte("#")) {
			b.Write(line)
		}
	}
	return b.Bytes()
}

// strict decodes doc into v, failing on unknown and duplicate fields.
func strict(t *testing.T, where string, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s: not a valid %T: %v\n%s", where, v, err, doc)
	}
}

// decode decodes every object of every file strictly into its API type:
// each file holds objects of one kind.
func decode(t *testing.T, r render) objects {
	t.Helper()
	var o objects
	kinds := map[string]string{
		deploy.ConfigMapFile: "v1/ConfigMap", deploy.DeploymentsFile: "apps/v1/Deployment",
		deploy.DisruptionFile: "policy/v1/PodDisruptionBudget", deploy.ServicesFile: "v1/Service",
		deploy.ScaledObjectsFile: "keda.sh/v1alpha1/ScaledObject",
		deploy.KustomizationFile: "kustomize.config.k8s.io/v1beta1/Kustomization",
	}
	schema := kedaSchema(t)
	for _, f := range r.m.Files() {
		want, ok := kinds[f.Name]
		if !ok {
			t.Fatalf("rendered file %s: not one this test knows", f.Name)
		}
		if !bytes.HasPrefix(f.Data, []byte("# Rendered by millrace deploy render from ")) {
			t.Errorf("%s does not open with the header comment:\n%.200s", f.Name, f.Data)
		}
		if f.Name != deploy.KustomizationFile {
			o.files = append(o.files, f.Name)
		}
		docs := documents(t, f.Data)
		if len(docs) == 0 {
			t.Errorf("%s holds no object", f.Name)
		}
		for i, doc := range docs {
			where := fmt.Sprintf("%s document %d", f.Name, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if got := path.Join(tm.APIVersion, tm.Kind); got != want {
				t.Fatalf("%s is a %s; want only %s there", where, got, want)
			}
			switch f.Name {
			case deploy.ConfigMapFile:
				var v corev1.ConfigMap
				strict(t, where, doc, &v)
				o.configMaps = append(o.configMaps, v)
			case deploy.DeploymentsFile:
				var v appsv1.Deployment
				strict(t, where, doc, &v)
				o.deployments = append(o.deployments, v)
			case deploy.DisruptionFile:
				var v policyv1.PodDisruptionBudget
				strict(t, where, doc, &v)
				o.budgets = append(o.budgets, v)
			case deploy.ServicesFile:
				var v corev1.Service
				strict(t, where, doc, &v)
				o.services = append(o.services, v)
			case deploy.ScaledObjectsFile:
				if err := schema.validate(doc); err != nil {
					t.Fatalf("%s does not pass KEDA's CRD schema: %v\n%s", where, err, doc)
				}
				var v scaledObject
				if err := yaml.Unmarshal(doc, &v); err != nil {
					t.Fatal(err)
				}
				var meta struct {
					Metadata metav1.ObjectMeta `json:"metadata"`
				}
				strict(t, where+" metadata", metadataOf(t, doc), &meta)
				o.scaled = append(o.scaled, v)
			case deploy.KustomizationFile:
				strict(t, where, doc, &o.kustomization)
			}
		}
	}
	// The stream for kubectl holds the same objects as the files.
	var fromFiles [][]byte
	for _, f := range r.m.Files() {
		if f.Name != deploy.KustomizationFile {
			fromFiles = append(fromFiles, documents(t, f.Data)...)
		}
	}
	stream := documents(t, r.m.YAML())
	if len(stream) != len(fromFiles) {
		t.Errorf("YAML() holds %d objects, the files %d", len(stream), len(fromFiles))
	}
	for _, doc := range stream {
		if !slices.ContainsFunc(fromFiles, func(d []byte) bool { return bytes.Equal(stripComments(d), stripComments(doc)) }) {
			t.Errorf("YAML() holds an object no file holds:\n%s", doc)
		}
	}
	return o
}

// metadataOf returns the metadata of the object doc, as a document.
func metadataOf(t *testing.T, doc []byte) []byte {
	t.Helper()
	var v struct {
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	return []byte(`{"metadata":` + string(v.Metadata) + `}`)
}

// check checks every object of a render against the API's rules and
// against each other and the plan.
func check(t *testing.T, r render) objects {
	t.Helper()
	o := decode(t, r)
	stages, err := r.plan.Stages()
	if err != nil {
		t.Fatal(err)
	}
	checkMeta := func(kind string, m metav1.ObjectMeta) {
		t.Helper()
		for _, e := range validation.IsDNS1123Label(m.Name) {
			t.Errorf("%s name %q: %s", kind, m.Name, e)
		}
		if m.Namespace != r.opts.Namespace {
			t.Errorf("%s %s: namespace %q, want %q", kind, m.Name, m.Namespace, r.opts.Namespace)
		}
		checkLabels(t, kind+" "+m.Name, m.Labels)
		if m.Labels[deploy.LabelName] != "millrace" {
			t.Errorf("%s %s: label %s=%q, want millrace", kind, m.Name, deploy.LabelName, m.Labels[deploy.LabelName])
		}
	}

	// The ConfigMap holds the file as it is.
	if len(o.configMaps) != 1 {
		t.Fatalf("%d ConfigMaps, want 1", len(o.configMaps))
	}
	cm := o.configMaps[0]
	checkMeta("ConfigMap", cm.ObjectMeta)
	if got := cm.Data[deploy.ConfigKey]; got != string(r.source) {
		t.Errorf("ConfigMap %s: %s is not the pipelines file verbatim:\n%s", cm.Name, deploy.ConfigKey, got)
	}

	deployments := map[string]appsv1.Deployment{}
	for _, d := range o.deployments {
		checkMeta("Deployment", d.ObjectMeta)
		if _, ok := deployments[d.Name]; ok {
			t.Errorf("two Deployments named %s", d.Name)
		}
		deployments[d.Name] = d
		checkPodTemplate(t, r, d, cm)
	}
	// Each Deployment's selector selects its pods and no other's.
	for _, a := range o.deployments {
		sel := selector(t, a.Spec.Selector)
		for _, b := range o.deployments {
			if got := sel.Matches(labels.Set(b.Spec.Template.Labels)); got != (a.Name == b.Name) {
				t.Errorf("Deployment %s's selector %s matches the pods of %s: %v", a.Name, sel, b.Name, got)
			}
		}
	}

	// One Deployment, ScaledObject and PodDisruptionBudget per stage,
	// running the stage, scaling on its group and topics.
	scaled := map[string]scaledObject{}
	for _, so := range o.scaled {
		checkMeta("ScaledObject", so.Metadata)
		scaled[so.Metadata.Name] = so
	}
	var ids []string
	for _, d := range o.deployments {
		if d.Labels[deploy.LabelComponent] == deploy.ComponentStage {
			ids = append(ids, argOf(t, d, "--stage"))
		}
	}
	var want []string
	for _, s := range stages {
		want = append(want, s.ID())
	}
	if !slices.Equal(ids, want) {
		t.Errorf("the stage Deployments run --stage %v; want the plan's stages %v", ids, want)
	}
	if len(o.scaled) != len(stages) {
		t.Errorf("%d ScaledObjects for %d stages", len(o.scaled), len(stages))
	}
	for _, s := range stages {
		name := stageDeployment(t, o, s.ID())
		d := deployments[name]
		if d.Labels[deploy.LabelPipeline] != s.Pipeline || d.Labels[deploy.LabelStage] != s.Name {
			t.Errorf("Deployment %s: labels %v; want pipeline %s, stage %s", name, d.Labels, s.Pipeline, s.Name)
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas %d: KEDA owns them, and kubectl apply would set them back", name, *d.Spec.Replicas)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.Args[0] != "run" || !slices.Contains(c.Args, "--no-schedules") {
			t.Errorf("Deployment %s runs %v; want run --no-schedules", name, c.Args)
		}
		id := env(c, deploy.InstanceIDEnv)
		if id == nil || id.ValueFrom == nil || id.ValueFrom.FieldRef == nil || id.ValueFrom.FieldRef.FieldPath != "metadata.name" {
			t.Errorf("Deployment %s: %s is not the pod's name: %+v", name, deploy.InstanceIDEnv, id)
		}
		checkResources(t, name, s.Resources, c.Resources)

		so, ok := scaled[name]
		if !ok {
			t.Errorf("stage %s: no ScaledObject %s", s.ID(), name)
			continue
		}
		checkScaledObject(t, r.plan, so, s, d)

		n := 0
		for _, b := range o.budgets {
			if selector(t, b.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("Deployment %s's pods are selected by %d PodDisruptionBudgets; want 1", name, n)
		}
	}
	for name, so := range scaled {
		if _, ok := deployments[so.Spec.ScaleTargetRef.Name]; !ok {
			t.Errorf("ScaledObject %s scales %s, which is not a rendered Deployment", name, so.Spec.ScaleTargetRef.Name)
		}
	}

	// Each PodDisruptionBudget covers one Deployment, one pod at a time.
	for _, b := range o.budgets {
		checkMeta("PodDisruptionBudget", b.ObjectMeta)
		if b.Spec.MaxUnavailable == nil || b.Spec.MaxUnavailable.IntValue() != 1 || b.Spec.MinAvailable != nil {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %v, minAvailable %v; want maxUnavailable 1", b.Name,
				b.Spec.MaxUnavailable, b.Spec.MinAvailable)
		}
		n := 0
		for _, d := range o.deployments {
			if selector(t, b.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("PodDisruptionBudget %s selects the pods of %d Deployments; want 1", b.Name, n)
		}
	}
	if want := len(o.deployments); len(o.budgets) != want {
		t.Errorf("%d PodDisruptionBudgets for %d Deployments", len(o.budgets), want)
	}

	// The scheduler runs when the file has schedules; the API when it has
	// an api block, behind its Service.
	sched, hasSched := deployments[deploy.SchedulerName]
	if want := len(r.plan.EnabledSchedules()) > 0; hasSched != want {
		t.Errorf("a scheduler Deployment: %v; the file has schedules: %v", hasSched, want)
	}
	if hasSched {
		c := sched.Spec.Template.Spec.Containers[0]
		if c.Args[0] != "scheduler" || sched.Spec.Replicas == nil || *sched.Spec.Replicas != 2 {
			t.Errorf("Deployment %s runs %v with %v replicas; want millrace scheduler, 2 replicas", sched.Name, c.Args, sched.Spec.Replicas)
		}
		if env(c, deploy.InstanceIDEnv) != nil {
			t.Errorf("the scheduler sets %s: a static member does not leave the group on stop, so its stand-by "+
				"would lead only after a session timeout", deploy.InstanceIDEnv)
		}
	}
	api, hasAPI := deployments[deploy.APIName]
	if want := r.file.API != nil; hasAPI != want {
		t.Errorf("an API Deployment: %v; the file has an api block: %v", hasAPI, want)
	}
	if len(o.services) != map[bool]int{true: 1}[hasAPI] {
		t.Fatalf("%d Services; want one for the API, if any", len(o.services))
	}
	if hasAPI {
		c := api.Spec.Template.Spec.Containers[0]
		if c.Args[0] != "serve" || argOf(t, api, "--addr") != "0.0.0.0:8080" {
			t.Errorf("Deployment %s runs %v; want millrace serve --addr 0.0.0.0:8080", api.Name, c.Args)
		}
		svc := o.services[0]
		checkMeta("Service", svc.ObjectMeta)
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, d := range o.deployments {
			if got := sel.Matches(labels.Set(d.Spec.Template.Labels)); got != (d.Name == deploy.APIName) {
				t.Errorf("Service %s selects the pods of %s: %v", svc.Name, d.Name, got)
			}
		}
		for _, p := range svc.Spec.Ports {
			if port(c, p.TargetPort.String()) == nil {
				t.Errorf("Service %s: targetPort %s is no port of the API's container", svc.Name, p.TargetPort.String())
			}
		}
	}

	// The kustomization lists the other files.
	k := o.kustomization
	if k.Namespace != r.opts.Namespace || !slices.Equal(sorted(k.Resources), o.files) {
		t.Errorf("kustomization: namespace %q, resources %v; want %q, %v", k.Namespace, k.Resources, r.opts.Namespace, o.files)
	}
	return o
}

// checkPodTemplate checks a Deployment's pods: its one container runs
// the image on the mounted pipelines file, with probes on ports it names,
// the brokers and the Secret in its environment, locked down.
func checkPodTemplate(t *testing.T, r render, d appsv1.Deployment, cm corev1.ConfigMap) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("Deployment %s: %d containers", d.Name, len(spec.Containers))
	}
	checkLabels(t, "Deployment "+d.Name+" pods", d.Spec.Template.Labels)
	c := spec.Containers[0]
	if c.Image != r.opts.Image {
		t.Errorf("Deployment %s: image %q, want %q", d.Name, c.Image, r.opts.Image)
	}
	// -f names the pipelines file in the mounted ConfigMap.
	file := argOf(t, d, "-f")
	mounted := false
	for _, vm := range c.VolumeMounts {
		vol := volume(spec, vm.Name)
		if vol == nil {
			t.Errorf("Deployment %s mounts volume %s, which it does not have", d.Name, vm.Name)
			continue
		}
		if vol.ConfigMap == nil {
			continue
		}
		if vol.ConfigMap.Name != cm.Name {
			t.Errorf("Deployment %s mounts ConfigMap %s; the render has %s", d.Name, vol.ConfigMap.Name, cm.Name)
		}
		if _, ok := cm.Data[strings.TrimPrefix(file, vm.MountPath+"/")]; ok && path.Dir(file) == vm.MountPath {
			mounted = true
		}
		if !vm.ReadOnly {
			t.Errorf("Deployment %s mounts the pipelines file writable", d.Name)
		}
	}
	if !mounted {
		t.Errorf("Deployment %s: -f %s is not a key of the mounted ConfigMap %s", d.Name, file, cm.Name)
	}
	// Probes ask the admin endpoints on a port the container names.
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("Deployment %s: no HTTP %s probe", d.Name, p.what)
			continue
		}
		get := p.probe.HTTPGet
		cp := port(c, get.Port.String())
		if get.Path != p.path || cp == nil {
			t.Errorf("Deployment %s: %s probe GET %s on port %s; want %s on a named port of the container", d.Name, p.what, get.Path,
				get.Port.String(), p.path)
		} else if addr := argOf(t, d, "--admin-addr"); !strings.HasSuffix(addr, ":"+strconv.Itoa(int(cp.ContainerPort))) {
			t.Errorf("Deployment %s: %s probe on port %d, the admin server listens on %s", d.Name, p.what, cp.ContainerPort, addr)
		}
	}
	for _, p := range c.Ports {
		for _, e := range validation.IsValidPortName(p.Name) {
			t.Errorf("Deployment %s: port name %q: %s", d.Name, p.Name, e)
		}
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" ||
		port(c, deploy.AdminPortName).ContainerPort != int32(atoi(t, ann["prometheus.io/port"])) {
		t.Errorf("Deployment %s: scrape annotations %v do not name the admin port's /metrics", d.Name, ann)
	}
	// The environment: the brokers, the Secret (optional), valid names.
	for _, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			t.Errorf("Deployment %s: env %q: %s", d.Name, e.Name, msg)
		}
	}
	if b := env(c, deploy.BrokersEnv); b == nil || b.Value != strings.Join(r.brokers, ",") {
		t.Errorf("Deployment %s: %s = %+v, want %q", d.Name, deploy.BrokersEnv, b, strings.Join(r.brokers, ","))
	}
	// The Secret holds the admin token the pods need, unless the file has
	// its own: then it may be missing.
	wantOptional := r.plan.AdminToken != ""
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != deploy.SecretName ||
		c.EnvFrom[0].SecretRef.Optional == nil || *c.EnvFrom[0].SecretRef.Optional != wantOptional {
		t.Errorf("Deployment %s: envFrom %+v; want the Secret %s, optional %v", d.Name, c.EnvFrom, deploy.SecretName, wantOptional)
	}
	// Stopping: longer than the process's own stop timeout (the
	// scheduler has none: it finishes a fire and leaves its group).
	stop := r.opts.StopTimeout
	if c.Args[0] != "scheduler" {
		var err error
		stop, err = time.ParseDuration(argOf(t, d, "--stop-timeout"))
		if err != nil || stop != r.opts.StopTimeout {
			t.Errorf("Deployment %s: --stop-timeout %s, want %s", d.Name, argOf(t, d, "--stop-timeout"), r.opts.StopTimeout)
		}
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= stop {
		t.Errorf("Deployment %s: terminationGracePeriodSeconds %v is not above the stop timeout %s", d.Name, g, stop)
	}
	// Locked down.
	sc, psc := c.SecurityContext, spec.SecurityContext
	if sc == nil || psc == nil || !is(sc.RunAsNonRoot) || !is(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		!is(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("Deployment %s: security contexts %+v, %+v; want non-root, read-only, no escalation, no capabilities, "+
			"RuntimeDefault seccomp", d.Name, sc, psc)
	}
}

// checkScaledObject checks a stage's ScaledObject against its plan and
// its Deployment: KEDA's Kafka scaler on the stage's group, one trigger
// per input topic.
func checkScaledObject(t *testing.T, plan *pipeline.Plan, so scaledObject, s pipeline.StagePlan, d appsv1.Deployment) {
	t.Helper()
	name := so.Metadata.Name
	ref := so.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("ScaledObject %s scales %s %s %s; want apps/v1 Deployment %s", name, ref.APIVersion, ref.Kind, ref.Name, d.Name)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if ref.EnvSourceContainerName != c.Name {
		t.Errorf("ScaledObject %s reads the environment of container %q; the Deployment's is %q", name, ref.EnvSourceContainerName, c.Name)
	}
	if so.Spec.MinReplicaCount != s.Scale.Min || so.Spec.MaxReplicaCount != s.Scale.Max {
		t.Errorf("ScaledObject %s: replicas %d..%d; want the plan's %d..%d", name, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount,
			s.Scale.Min, s.Scale.Max)
	}
	// The CRD's x-kubernetes-validations rule, which the schema check
	// cannot run, and KEDA's own limit: no more replicas than partitions.
	var partitions int
	for _, in := range s.Inputs {
		partitions = max(partitions, topicPartitions(t, plan, in.Topic))
	}
	if so.Spec.MinReplicaCount > so.Spec.MaxReplicaCount || so.Spec.MaxReplicaCount > partitions {
		t.Errorf("ScaledObject %s: replicas %d..%d; want min <= max <= the %d partitions", name, so.Spec.MinReplicaCount,
			so.Spec.MaxReplicaCount, partitions)
	}
	var topics []string
	for _, tr := range so.Spec.Triggers {
		m := tr.Metadata
		if tr.Type != "kafka" || m["consumerGroup"] != s.Group || m["offsetResetPolicy"] != "earliest" ||
			m["lagThreshold"] != strconv.Itoa(s.Scale.Lag) {
			t.Errorf("ScaledObject %s: trigger %s %v; want kafka on group %s, lagThreshold %d, offsetResetPolicy earliest",
				name, tr.Type, m, s.Group, s.Scale.Lag)
		}
		if v := env(c, m["bootstrapServersFromEnv"]); v == nil || v.Value == "" {
			t.Errorf("ScaledObject %s: bootstrapServersFromEnv %q is not set in the container", name, m["bootstrapServersFromEnv"])
		}
		topics = append(topics, m["topic"])
	}
	var inputs []string
	for _, in := range s.Inputs {
		inputs = append(inputs, in.Topic)
	}
	if s.Scale.Min == 0 { // scaled to zero, the retry tiers' records must wake it
		inputs = append(inputs, s.RetryTopics...)
	}
	if !slices.Equal(topics, inputs) {
		t.Errorf("ScaledObject %s: triggers on topics %v; want the stage's inputs %v (and its retry tiers at min 0)", name, topics, inputs)
	}
	if s.Group != pipeline.GroupName(s.Pipeline, s.Name) || s.Group != "millrace."+s.Pipeline+"."+s.Name {
		t.Errorf("stage %s: group %s", s.ID(), s.Group)
	}
}

// checkResources checks a stage container's resources against the plan.
func checkResources(t *testing.T, name string, p pipeline.ResourcesPlan, got corev1.ResourceRequirements) {
	t.Helper()
	for _, q := range []struct {
		list corev1.ResourceList
		name corev1.ResourceName
		want string
	}{
		{got.Requests, corev1.ResourceCPU, p.RequestsCPU}, {got.Requests, corev1.ResourceMemory, p.RequestsMemory},
		{got.Limits, corev1.ResourceCPU, p.LimitsCPU}, {got.Limits, corev1.ResourceMemory, p.LimitsMemory},
	} {
		v, ok := q.list[q.name]
		if q.want == "" {
			if ok {
				t.Errorf("Deployment %s: %s %s set; the file sets none", name, q.name, v.String())
			}
			continue
		}
		want, err := resource.ParseQuantity(q.want)
		if err != nil {
			t.Fatalf("plan quantity %q: %v", q.want, err)
		}
		again, err := resource.ParseQuantity(v.String())
		if !ok || err != nil || again.Cmp(want) != 0 {
			t.Errorf("Deployment %s: %s %s (%v); want %s", name, q.name, v.String(), err, q.want)
		}
	}
}

func checkLabels(t *testing.T, where string, l map[string]string) {
	t.Helper()
	for k, v := range l {
		for _, e := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", where, k, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %s value %q: %s", where, k, v, e)
		}
	}
}

func topicPartitions(t *testing.T, plan *pipeline.Plan, topic string) int {
	t.Helper()
	for _, tp := range plan.Topics() {
		if tp.Name == topic {
			return tp.Partitions
		}
	}
	t.Fatalf("topic %s is not in the plan", topic)
	return 0
}

func selector(t *testing.T, ls *metav1.LabelSelector) labels.Selector {
	t.Helper()
	if ls == nil || len(ls.MatchLabels)+len(ls.MatchExpressions) == 0 {
		t.Fatalf("an empty selector selects every pod")
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// stageDeployment returns the name of the Deployment running stage id.
func stageDeployment(t *testing.T, o objects, id string) string {
	t.Helper()
	for _, d := range o.deployments {
		if d.Labels[deploy.LabelComponent] == deploy.ComponentStage && argOf(t, d, "--stage") == id {
			return d.Name
		}
	}
	t.Fatalf("no Deployment runs --stage %s", id)
	return ""
}

// argOf returns the value of a flag of the Deployment's container.
func argOf(t *testing.T, d appsv1.Deployment, name string) string {
	t.Helper()
	args := d.Spec.Template.Spec.Containers[0].Args
	i := slices.Index(args, name)
	if i < 0 || i+1 == len(args) {
		t.Fatalf("Deployment %s runs %v, without %s", d.Name, args, name)
	}
	return args[i+1]
}

func env(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func port(c corev1.Container, name string) *corev1.ContainerPort {
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			return &c.Ports[i]
		}
	}
	return nil
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func is(b *bool) bool { return b != nil && *b }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

func readRepoPipelines(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPipelines)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
