package pipeline

// Defaults used when pipelines.yaml does not set a value.
const (
	DefaultPartitions        = 8
	DefaultReplicationFactor = -1 // the broker's default.replication.factor
	DefaultConcurrency       = 8
	DefaultMaxInFlight       = 256
)

func (f *File) applyDefaults() {
	d := &f.Defaults
	if !d.Set("partitions") {
		d.Partitions = DefaultPartitions
	}
	if !d.Set("replication_factor") {
		d.ReplicationFactor = DefaultReplicationFactor
	}
	if !d.Set("concurrency") {
		d.Concurrency = DefaultConcurrency
	}
	if !d.Set("max_in_flight") {
		d.MaxInFlight = DefaultMaxInFlight
	}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		if !pl.Set("partitions") {
			pl.Partitions = d.Partitions
		}
		for j := range pl.Stages {
			st := &pl.Stages[j]
			if !st.Set("concurrency") {
				st.Concurrency = d.Concurrency
			}
			if !st.Set("max_in_flight") {
				st.MaxInFlight = d.MaxInFlight
			}
		}
	}
}
