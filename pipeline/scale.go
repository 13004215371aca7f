package pipeline

import (
	"regexp"
)

// Defaults of a stage's `scale:` block.
const (
	// DefaultScaleMin is the fewest replicas of a stage's Deployment.
	DefaultScaleMin = 1
	// DefaultScaleLag is the consumer lag per replica, in records, that
	// KEDA's Kafka scaler aims at (lagThreshold).
	DefaultScaleLag = 100
	// maxScaleLag bounds scale.lag.
	maxScaleLag = 100_000_000
)

// Scale is how `millrace deploy render` scales a stage's Deployment on
// its consumer lag (a KEDA ScaledObject with the Kafka scaler).
type Scale struct {
	Positions `yaml:"-"`

	// Min is the fewest replicas (default 1; 0 lets KEDA scale the stage
	// to zero while it has no lag).
	Min int `yaml:"min"`
	// Max is the most replicas (default: the partitions of the stage's
	// input): a consumer group gives each partition to one member, so
	// replicas beyond the partition count sit idle.
	Max int `yaml:"max"`
	// Lag is the consumer lag per replica KEDA aims at, in records
	// (lagThreshold; default 100).
	Lag int `yaml:"lag"`
}

// Resources are the requests and limits of a stage's container in the
// rendered Deployment, in Kubernetes quantities (cpu: 250m, memory:
// 256Mi).
type Resources struct {
	Positions `yaml:"-"`

	Requests ResourceList `yaml:"requests"`
	Limits   ResourceList `yaml:"limits"`
}

// ResourceList is a CPU and a memory quantity; "" leaves one unset.
type ResourceList struct {
	Positions `yaml:"-"`

	CPU    string `yaml:"cpu"`
	Memory string `yaml:"memory"`
}

// ScalePlan is a stage's scale block with its defaults.
type ScalePlan struct {
	Min, Max, Lag int
}

// ResourcesPlan is a stage's resources block ("" where unset).
type ResourcesPlan struct {
	RequestsCPU, RequestsMemory, LimitsCPU, LimitsMemory string
}

// scalePlan resolves s (may be nil) for a stage whose input has
// partitions partitions.
func (s *Scale) scalePlan(partitions int) ScalePlan {
	pl := ScalePlan{Min: DefaultScaleMin, Max: partitions, Lag: DefaultScaleLag}
	if s == nil {
		return pl
	}
	if s.Set("min") {
		pl.Min = s.Min
	}
	if s.Set("max") {
		pl.Max = s.Max
	}
	if s.Set("lag") {
		pl.Lag = s.Lag
	}
	return pl
}

func (r *Resources) resourcesPlan() ResourcesPlan {
	if r == nil {
		return ResourcesPlan{}
	}
	return ResourcesPlan{RequestsCPU: r.Requests.CPU, RequestsMemory: r.Requests.Memory,
		LimitsCPU: r.Limits.CPU, LimitsMemory: r.Limits.Memory}
}

func (s *Scale) validate(p *problems, where string, partitions int) {
	if !s.decoded() {
		return
	}
	plan := s.scalePlan(partitions)
	if s.Set("min") && (s.Min < 0 || s.Min > partitions) {
		at := s.Of("min")
		p.add(at, "%s: scale.min must be between 0 and the input's %d partitions, got %d", where, partitions, s.Min)
	}
	if s.Set("max") {
		at := s.Of("max")
		switch {
		case s.Max < 1:
			p.add(at, "%s: scale.max must be at least 1, got %d", where, s.Max)
		case s.Max > partitions:
			p.add(at, "%s: scale.max %d is more than the %d partitions of the stage's input: a consumer group gives each "+
				"partition to one member, so replicas beyond %d would sit idle (raise partitions, or lower max)",
				where, s.Max, partitions, partitions)
		case plan.Min > s.Max:
			p.add(at, "%s: scale.max %d is less than scale.min %d", where, s.Max, plan.Min)
		}
	}
	if s.Set("lag") && (s.Lag < 1 || s.Lag > maxScaleLag) {
		p.add(s.Of("lag"), "%s: scale.lag must be between 1 and %d records, got %d", where, maxScaleLag, s.Lag)
	}
}

// quantity matches a Kubernetes resource quantity as pipelines.yaml
// takes it: a decimal number with an optional SI or binary suffix (100m,
// 0.5, 256Mi, 1G), as k8s.io/apimachinery's resource.ParseQuantity reads
// it (no exponents).
var quantity = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)

func (r *Resources) validate(p *problems, where string) {
	if !r.decoded() {
		return
	}
	for _, l := range []struct {
		name string
		list *ResourceList
	}{{"requests", &r.Requests}, {"limits", &r.Limits}} {
		for _, q := range []struct{ key, v string }{{"cpu", l.list.CPU}, {"memory", l.list.Memory}} {
			if l.list.Set(q.key) && !quantity.MatchString(q.v) {
				at := l.list.Of(q.key)
				p.add(at, "%s: resources.%s.%s %s: want a Kubernetes quantity, like 250m or 0.5 (cpu), 256Mi or 1Gi (memory)",
					where, l.name, q.key, p.quoted(at, q.v))
			}
		}
	}
}
