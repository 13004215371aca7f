package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/millrace/millrace/pipeline"
)

// File is one rendered file: its name (no directory) and contents.
type File struct {
	Name string
	Data []byte
}

// The rendered files, one per kind of object, and the kustomization.
const (
	ConfigMapFile     = "configmap.yaml"
	DeploymentsFile   = "deployments.yaml"
	ScaledObjectsFile = "scaledobjects.yaml"
	DisruptionFile    = "poddisruptionbudgets.yaml"
	ServicesFile      = "services.yaml"
	KustomizationFile = "kustomization.yaml"
)

// maxConfigMapSource bounds the pipelines file: a ConfigMap holds at most
// 1 MiB in all, its metadata included.
const maxConfigMapSource = 1000 << 10

// Header opens every rendered file, followed by the pipelines file's name
// and "; do not edit: render again".
const Header = "# Rendered by millrace deploy render from "

// FileNames are the names of every file a render may make.
func FileNames() []string {
	return []string{ConfigMapFile, DeploymentsFile, DisruptionFile, ScaledObjectsFile, ServicesFile, KustomizationFile}
}

// Manifests are the rendered objects of a pipelines file.
type Manifests struct {
	header string
	// kinds are the objects of each file, in the order kubectl should
	// apply them (the ConfigMap first, the ScaledObjects, which need
	// KEDA's CRD, last).
	kinds         []kind
	kustomization []byte
}

type kind struct {
	file    string
	objects [][]byte // each a YAML document
}

// Render renders the Kubernetes objects that run the pipelines file f,
// whose bytes are source (the ConfigMap holds them as they are: ${NAME}
// references are resolved in the pods, from the Secret). It fails for a
// file the pods cannot run: no brokers (or loopback ones), an api block
// without tokens, names that cannot be labels.
//
// Per stage, named [StageName]: a Deployment running `millrace run
// --stage P/S --no-schedules` (no replicas: KEDA owns them), a KEDA
// ScaledObject with a Kafka trigger per input topic on the stage's
// consumer group, and a PodDisruptionBudget. When the file has schedules,
// the Deployment [SchedulerName] (2 replicas: one leads, one stands by)
// and its PodDisruptionBudget; with an api block, [APIName]'s Deployment
// (2 replicas), Service and PodDisruptionBudget. Output is deterministic:
// objects in file order of the pipelines and stages, then the scheduler,
// then the API.
func Render(f *pipeline.File, source []byte, o Options) (*Manifests, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	o.setDefaults()
	plan := f.Plan()
	name := filepath.Base(f.Path)
	if !utf8.Valid(source) {
		return nil, fmt.Errorf("%s is not UTF-8: a ConfigMap cannot hold it as text", name)
	}
	if len(source) > maxConfigMapSource {
		return nil, fmt.Errorf("%s is %d bytes: a ConfigMap holds at most about 1 MiB", name, len(source))
	}
	brokers, err := podBrokers(plan, o, name)
	if err != nil {
		return nil, err
	}
	stages, err := plan.Stages()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(source)
	r := &renderer{opts: o, brokers: strings.Join(brokers, ","), configHash: hex.EncodeToString(sum[:]),
		names: stageNames(stages), secretOptional: plan.AdminToken != ""}
	if err := r.checkNames(stages); err != nil {
		return nil, err
	}
	if f.API != nil && len(plan.API.Tokens) == 0 {
		return nil, fmt.Errorf("%s has an api block without tokens: millrace serve listens on %s in the pod, "+
			"which other hosts reach, and refuses to do so without api.tokens (bearer tokens; use ${NAME} and "+
			"put the tokens in the Secret %q)", name, apiAddr, SecretName)
	}
	kinds, err := r.objects(stages, source, len(plan.EnabledSchedules()) > 0, f.API != nil)
	if err != nil {
		return nil, err
	}
	m := &Manifests{header: Header + name + "; do not edit: render again\n"}
	for _, k := range kinds {
		if len(k.objects) == 0 {
			continue
		}
		kd := kind{file: k.file}
		for _, obj := range k.objects {
			doc, err := marshal(obj)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k.file, err)
			}
			kd.objects = append(kd.objects, doc)
		}
		m.kinds = append(m.kinds, kd)
	}
	if m.kustomization, err = r.kustomization(m.kinds); err != nil {
		return nil, err
	}
	return m, nil
}

// podBrokers are the brokers the pods get: the options', else the file's,
// which must be some the pods can reach.
func podBrokers(plan *pipeline.Plan, o Options, name string) ([]string, error) {
	if len(o.Brokers) > 0 {
		return o.Brokers, nil
	}
	if len(plan.Brokers) == 0 {
		return nil, fmt.Errorf("%s names no brokers (broker.brokers) and pods cannot use the embedded broker: "+
			"give the Kafka brokers the pods reach (millrace deploy render --brokers)", name)
	}
	if err := checkBrokers(plan.Brokers); err != nil {
		return nil, fmt.Errorf("broker.brokers of %s: %q: %s (millrace deploy render --brokers overrides them)",
			name, err.broker, err.reason)
	}
	return plan.Brokers, nil
}

// kindObjects are the objects of one file, before they are encoded.
type kindObjects struct {
	file    string
	objects []any
}

// objects builds every object, by file, in the order kubectl should
// apply them: the scheduler's with schedules, the API's with api.
func (r *renderer) objects(stages []pipeline.StagePlan, source []byte, schedules, api bool) ([]kindObjects, error) {
	var deployments, scaled, budgets, services []any
	for _, s := range stages {
		d, err := r.stageDeployment(s)
		if err != nil {
			return nil, err
		}
		deployments = append(deployments, d)
		scaled = append(scaled, r.scaledObject(s))
		budgets = append(budgets, r.disruptionBudget(r.names[s.ID()], stageLabels(s)))
	}
	if schedules {
		deployments = append(deployments, r.schedulerDeployment())
		budgets = append(budgets, r.disruptionBudget(SchedulerName, labels(ComponentScheduler)))
	}
	if api {
		deployments = append(deployments, r.apiDeployment())
		services = append(services, r.apiService())
		budgets = append(budgets, r.disruptionBudget(APIName, labels(ComponentAPI)))
	}
	return []kindObjects{
		{ConfigMapFile, []any{r.configMap(source)}},
		{ServicesFile, services},
		{DeploymentsFile, deployments},
		{DisruptionFile, budgets},
		{ScaledObjectsFile, scaled},
	}, nil
}

// checkNames checks that the stages' names can be label values and that
// no two objects of a kind share a name.
func (r *renderer) checkNames(stages []pipeline.StagePlan) error {
	seen := map[string]string{SchedulerName: "the scheduler", APIName: "the API"}
	for _, s := range stages {
		if err := labelValue("pipeline name", s.Pipeline); err != nil {
			return err
		}
		if err := labelValue("stage name", s.Name); err != nil {
			return fmt.Errorf("pipeline %q: %w", s.Pipeline, err)
		}
		name := r.names[s.ID()]
		if other, ok := seen[name]; ok { // not reached: stageNames hashes shared names
			return fmt.Errorf("stage %s and %s would both be named %s", s.ID(), other, name)
		}
		seen[name] = "stage " + s.ID()
	}
	return nil
}

// Files returns the rendered files, sorted by name: one per kind of
// object (configmap.yaml, deployments.yaml, poddisruptionbudgets.yaml,
// scaledobjects.yaml, and services.yaml when there is a Service), each
// object a YAML document, and kustomization.yaml listing them.
func (m *Manifests) Files() []File {
	files := []File{{Name: KustomizationFile, Data: []byte(m.header + string(m.kustomization))}}
	for _, k := range m.kinds {
		var b strings.Builder
		b.WriteString(m.header)
		for i, doc := range k.objects {
			if i > 0 {
				b.WriteString("---\n")
			}
			b.Write(doc)
		}
		files = append(files, File{Name: k.file, Data: []byte(b.String())})
	}
	sortFiles(files)
	return files
}

// YAML returns every object (not the kustomization) as one multi-document
// YAML stream, for kubectl apply -f -: the ConfigMap first, the
// ScaledObjects last.
func (m *Manifests) YAML() []byte {
	var b strings.Builder
	b.WriteString(m.header)
	first := true
	for _, k := range m.kinds {
		for _, doc := range k.objects {
			if !first {
				b.WriteString("---\n")
			}
			first = false
			b.Write(doc)
		}
	}
	return []byte(b.String())
}
