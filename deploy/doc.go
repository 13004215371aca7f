// Package deploy renders the Kubernetes objects that run a pipelines file
// (`millrace deploy render`): a ConfigMap holding the file; per stage a
// Deployment running `millrace run --stage P/S`, a KEDA ScaledObject that
// scales it on its consumer group's lag and a PodDisruptionBudget; the
// scheduler and the HTTP jobs API as Deployments of their own when the
// file has schedules or an api block; and a kustomization.yaml listing
// them.
//
// The objects are k8s.io/api types (the KEDA ScaledObject a small struct
// of this package mirroring keda.sh/v1alpha1), marshalled to YAML with
// sigs.k8s.io/yaml; the tests decode each strictly into its API type and
// the ScaledObject against KEDA's CRD schema, and deploy/examples holds
// the render of the repository's pipelines.yaml.
//
// Beside the Go files are the other operator files: the container image
// (Dockerfile), the Grafana dashboard (grafana/), the Prometheus alerts
// (prometheus/), and examples/, the render of the repository's
// pipelines.yaml.
package deploy
