package deploy

import (
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/millrace/millrace/pipeline"
)

// scaledObject mirrors the part of KEDA's keda.sh/v1alpha1 ScaledObject
// (github.com/kedacore/keda apis/keda/v1alpha1) the render writes. KEDA's
// own Go types come with its controller's dependencies; the tests check
// this against the CRD's schema instead (testdata/keda).
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef scaleTarget `json:"scaleTargetRef"`
	// MinReplicaCount may be 0: KEDA then scales the stage to zero while
	// it has no lag.
	MinReplicaCount int32          `json:"minReplicaCount"`
	MaxReplicaCount int32          `json:"maxReplicaCount"`
	Triggers        []scaleTrigger `json:"triggers"`
}

type scaleTarget struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	// EnvSourceContainerName is the container whose environment the
	// triggers' ...FromEnv keys read.
	EnvSourceContainerName string `json:"envSourceContainerName"`
}

type scaleTrigger struct {
	Type     string            `json:"type"`
	Metadata map[string]string `json:"metadata"`
}

// Metadata of KEDA's Kafka scaler (keda.sh/docs/latest/scalers/apache-kafka).
const (
	kafkaTrigger = "kafka"
	// offsetResetEarliest counts a partition the group has not committed
	// on as lagging by all its records, as millrace's groups start at the
	// oldest offset.
	offsetResetEarliest = "earliest"
)

// scaledObject scales a stage's Deployment on its consumer group's lag:
// one Kafka trigger per input topic (a first stage with priority topics
// has several; KEDA scales to the largest replica count they ask for),
// aiming at scale.lag records of lag per replica, between scale.min and
// scale.max replicas. Retry tier topics are not counted: their records
// wait for their delay by design.
func (r *renderer) scaledObject(s pipeline.StagePlan) *scaledObject {
	name := r.names[s.ID()]
	so := &scaledObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject"},
		ObjectMeta: r.meta(name, stageLabels(s)),
		Spec: scaledObjectSpec{
			ScaleTargetRef: scaleTarget{APIVersion: "apps/v1", Kind: "Deployment", Name: name,
				EnvSourceContainerName: ContainerName},
			MinReplicaCount: int32(s.Scale.Min),
			MaxReplicaCount: int32(s.Scale.Max),
		},
	}
	topics := make([]string, 0, len(s.Inputs)+len(s.RetryTopics))
	for _, in := range s.Inputs {
		topics = append(topics, in.Topic)
	}
	if s.Scale.Min == 0 {
		// Scaled to zero, nothing reads the retry tiers: their records
		// (due later) must wake the stage too.
		topics = append(topics, s.RetryTopics...)
	}
	for _, topic := range topics {
		so.Spec.Triggers = append(so.Spec.Triggers, scaleTrigger{Type: kafkaTrigger, Metadata: map[string]string{
			"bootstrapServersFromEnv": BrokersEnv,
			"consumerGroup":           s.Group,
			"topic":                   topic,
			"lagThreshold":            strconv.Itoa(s.Scale.Lag),
			"offsetResetPolicy":       offsetResetEarliest,
		}})
	}
	return so
}
