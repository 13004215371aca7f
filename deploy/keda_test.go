package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"sigs.k8s.io/yaml"
)

// kedaCRD is KEDA's ScaledObject CRD, vendored (its header says from
// which commit).
var kedaCRD = filepath.Join("testdata", "keda", "keda.sh_scaledobjects.yaml")

// crdSchema validates objects against a CRD version's openAPIV3Schema,
// closed: a field the schema does not name is an error, as the API
// server's strict field validation (kubectl apply --validate=strict, the
// default) makes it. Fields under x-kubernetes-preserve-unknown-fields
// and additionalProperties stay open.
type crdSchema struct {
	version string
	schema  *openapi3.Schema
}

var (
	kedaOnce   sync.Once
	kedaLoaded *crdSchema
	kedaErr    error
)

func kedaSchema(t *testing.T) *crdSchema {
	t.Helper()
	kedaOnce.Do(func() { kedaLoaded, kedaErr = loadCRDSchema(kedaCRD, "v1alpha1") })
	if kedaErr != nil {
		t.Fatal(kedaErr)
	}
	return kedaLoaded
}

func loadCRDSchema(file, version string) (*crdSchema, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var crd struct {
		Kind string `json:"kind"`
		Spec struct {
			Group    string `json:"group"`
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if crd.Kind != "CustomResourceDefinition" {
		return nil, fmt.Errorf("%s is a %s, not a CustomResourceDefinition", file, crd.Kind)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		s := &openapi3.Schema{}
		if err := json.Unmarshal(v.Schema.OpenAPIV3Schema, s); err != nil {
			return nil, fmt.Errorf("%s: version %s: %w", file, version, err)
		}
		closeSchema(s)
		return &crdSchema{version: crd.Spec.Group + "/" + version, schema: s}, nil
	}
	return nil, fmt.Errorf("%s has no version %s", file, version)
}

// closeSchema makes every object schema that lists its properties refuse
// others.
func closeSchema(s *openapi3.Schema) {
	if s == nil {
		return
	}
	if preserve, _ := s.Extensions["x-kubernetes-preserve-unknown-fields"].(bool); !preserve &&
		len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
		no := false
		s.AdditionalProperties.Has = &no
	}
	for _, p := range s.Properties {
		closeSchema(p.Value)
	}
	if s.Items != nil {
		closeSchema(s.Items.Value)
	}
	if s.AdditionalProperties.Schema != nil {
		closeSchema(s.AdditionalProperties.Schema.Value)
	}
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range list {
			closeSchema(r.Value)
		}
	}
}

// validate checks one object (a YAML document): its apiVersion, then its
// fields against the schema, reporting every problem.
func (c *crdSchema) validate(doc []byte) error {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return errors.New("not an object")
	}
	if obj["apiVersion"] != c.version {
		return fmt.Errorf("apiVersion %v, the CRD serves %s", obj["apiVersion"], c.version)
	}
	err := c.schema.VisitJSON(v, openapi3.MultiErrors(), openapi3.EnableFormatValidation())
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var msgs []string
		for _, e := range me {
			msgs = append(msgs, e.Error())
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	return err
}

// TestKEDA_schema_check_refuses_what_the_API_server_would: the check the
// ScaledObjects pass refuses an unknown field, a wrong type, a missing
// required field and a value out of range, and takes a good object.
func TestKEDA_schema_check_refuses_what_the_API_server_would(t *testing.T) {
	const good = `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  minReplicaCount: 0
  maxReplicaCount: 3
  triggers:
    - type: kafka
      metadata: {consumerGroup: g, topic: t, lagThreshold: "5"}
`
	if err := kedaSchema(t).validate([]byte(good)); err != nil {
		t.Fatalf("a good ScaledObject: %v", err)
	}
	for _, tt := range []struct{ name, from, to, want string }{
		{"unknown field in spec", "  minReplicaCount: 0", "  minReplicas: 0", `"minReplicas"`},
		{"unknown field in a trigger", "    - type: kafka", "    - type: kafka\n      topic: t", `"topic"`},
		{"unknown field in scaleTargetRef", "scaleTargetRef: {name: x}", "scaleTargetRef: {name: x, namespace: y}", `"namespace"`},
		{"a number as a string", `maxReplicaCount: 3`, `maxReplicaCount: "3"`, "maxReplicaCount"},
		{"metadata values are strings", `lagThreshold: "5"`, `lagThreshold: 5`, "lagThreshold"},
		{"maxReplicaCount is at least 1", `maxReplicaCount: 3`, `maxReplicaCount: 0`, "maxReplicaCount"},
		{"triggers required", "  triggers:\n    - type: kafka\n      metadata: {consumerGroup: g, topic: t, lagThreshold: \"5\"}\n", "", "triggers"},
		{"another apiVersion", "keda.sh/v1alpha1", "keda.sh/v1", "apiVersion"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(good, tt.from, tt.to, 1)
			if bad == good {
				t.Fatalf("%q is not in the good object", tt.from)
			}
			err := kedaSchema(t).validate([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error about %s", err, tt.want)
			}
		})
	}
}
