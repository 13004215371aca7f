package deploy

// kustomizationDoc is a kustomize.config.k8s.io/v1beta1 Kustomization
// listing the rendered files.
type kustomizationDoc struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
}

func (r *renderer) kustomization(kinds []kind) ([]byte, error) {
	k := kustomizationDoc{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization", Namespace: r.opts.Namespace}
	for _, kd := range kinds {
		k.Resources = append(k.Resources, kd.file)
	}
	return marshal(k)
}
