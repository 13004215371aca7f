package deploy

import (
	"encoding/json"
	"sort"

	"sigs.k8s.io/yaml"
)

// marshal encodes a typed object as YAML (through its JSON form, so the
// API types' json tags apply; keys sorted), without the empty fields the
// API types write for structs (strategy: {}, resources: {}) and status,
// which is what the cluster reports.
func marshal(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	delete(m, "status") // what the cluster reports, never rendered
	prune(m)
	return yaml.Marshal(m)
}

// emptyStructs are the keys whose value prune drops when it is {}: structs
// the API types marshal though they are empty, and that mean nothing so
// (unlike emptyDir: {}, which makes a volume).
var emptyStructs = map[string]bool{"strategy": true, "resources": true}

func prune(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if emptyStructs[k] {
				if cm, ok := c.(map[string]any); ok && len(cm) == 0 {
					delete(v, k)
					continue
				}
			}
			prune(c)
		}
	case []any:
		for _, c := range v {
			prune(c)
		}
	}
}

func sortFiles(files []File) {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
}
