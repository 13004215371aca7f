package pipeline

import (
	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/filters"
)

// File is a decoded pipelines.yaml.
type File struct {
	Positions `yaml:"-"`
	// Path is where the file was read from; problems are reported against it.
	Path string `yaml:"-"`

	Version   int        `yaml:"version"`
	Broker    *Broker    `yaml:"broker"`
	Defaults  Defaults   `yaml:"defaults"`
	Pipelines []Pipeline `yaml:"pipelines"`
}

// Broker says which Kafka cluster to use. When it is absent (or lists no
// brokers) millrace runs an embedded broker.
type Broker struct {
	Positions `yaml:"-"`

	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	// Compression of produced records: none, gzip, snappy, lz4 or zstd.
	Compression string `yaml:"compression"`
}

// Defaults apply to every pipeline and stage that does not set its own.
type Defaults struct {
	Positions `yaml:"-"`

	// Partitions is the partition count of topics millrace creates.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of created topics; -1 means the broker's default.
	ReplicationFactor int `yaml:"replication_factor"`
	// Concurrency is how many records a stage's filter processes at once
	// per process.
	Concurrency int `yaml:"concurrency"`
	// MaxInFlight is how many records of one partition a stage may have
	// handed out and not finished at once.
	MaxInFlight int `yaml:"max_in_flight"`
}

// Pipeline is one job: an input topic and an ordered list of stages.
type Pipeline struct {
	Positions `yaml:"-"`

	Name        string  `yaml:"name"`
	Description string  `yaml:"description"`
	Input       string  `yaml:"input"`
	Output      string  `yaml:"output"`
	Partitions  int     `yaml:"partitions"`
	Stages      []Stage `yaml:"stages"`
}

// Stage is one filter of a pipeline and its policies.
type Stage struct {
	Positions `yaml:"-"`

	Name   string `yaml:"name"`
	Filter string `yaml:"filter"`
	// Config is the filter's config block, checked against its spec.
	Config *yaml.Node `yaml:"config"`
	// Topic overrides the stage's input topic (stages after the first).
	Topic       string `yaml:"topic"`
	Concurrency int    `yaml:"concurrency"`
	MaxInFlight int    `yaml:"max_in_flight"`

	filterConfig filters.Config
}

// Pos is a position in the YAML file, 1-based.
type Pos struct {
	Line, Column int
}

// Positions records where a mapping and each of its keys' values are.
type Positions struct {
	Self Pos
	Keys map[string]Pos
}

// Of returns the position of the value of key, or of the mapping itself
// when the key is absent.
func (p Positions) Of(key string) Pos {
	if at, ok := p.Keys[key]; ok {
		return at
	}
	return p.Self
}

// Set reports whether key was present in the YAML.
func (p Positions) Set(key string) bool {
	_, ok := p.Keys[key]
	return ok
}
