package pipeline

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/itchyny/gojq"
	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/schedtime"
	"github.com/millrace/millrace/transport"
)

// File is a decoded pipelines.yaml.
type File struct {
	Positions `yaml:"-"`
	// Path is where the file was read from; problems are reported against it.
	Path string `yaml:"-"`
	// Warnings are settings of a valid file that are likely a mistake, as
	// `file:line:col: warning: message` (in file order).
	Warnings Problems `yaml:"-"`
	// SecretEnv are the environment variables the file's secrets are read
	// from with ${NAME} (broker.sasl.password, admin.token, api tokens,
	// callback secrets), sorted: a process must get them (a Kubernetes
	// pod, from its Secret), and the exec filter keeps them from the
	// programs it runs.
	SecretEnv []string `yaml:"-"`
	// LiteralSecrets name the secrets written in the file as they are, not
	// read from the environment ("broker.sasl.password (line 7)").
	LiteralSecrets []string `yaml:"-"`

	Version   int        `yaml:"version"`
	Broker    *Broker    `yaml:"broker"`
	Admin     *Admin     `yaml:"admin"`
	API       *API       `yaml:"api"`
	Scheduler *Scheduler `yaml:"scheduler"`
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
	// TLS encrypts the connections to the brokers (security.protocol SSL,
	// or SASL_SSL with SASL).
	TLS *BrokerTLS `yaml:"tls"`
	// SASL authenticates millrace to the brokers (SASL_PLAINTEXT, or
	// SASL_SSL with TLS).
	SASL *BrokerSASL `yaml:"sasl"`
	// Linger, FetchMinBytes, FetchMaxWait and MaxPartitionFetchBytes tune
	// the clients: see transport.Tuning.
	Linger                 time.Duration `yaml:"linger"`
	FetchMinBytes          int           `yaml:"fetch_min_bytes"`
	FetchMaxWait           time.Duration `yaml:"fetch_max_wait"`
	MaxPartitionFetchBytes int           `yaml:"max_partition_fetch_bytes"`
}

// BrokerTLS is the broker block's tls: Kafka's ssl.* client settings.
type BrokerTLS struct {
	Positions `yaml:"-"`

	// Enabled turns TLS on or off; a tls block turns it on unless it says
	// enabled: false.
	Enabled *bool `yaml:"enabled"`
	// CAFile is a PEM file of the certificate authorities to trust; empty
	// trusts the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the brokers' certificates must carry; empty
	// checks each broker's host as dialled.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate (tests only: anybody in
	// the path can read and change the traffic).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// BrokerSASL is the broker block's sasl: Kafka's sasl.mechanism and the
// credentials of sasl.jaas.config. Formatted with fmt (any verb), it never
// shows Password.
type BrokerSASL struct {
	Positions `yaml:"-"`

	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password: use ${ENV}.
	Password string `yaml:"password"`
}

// settings is s as transport's SASL, whose printing redacts the password.
func (s BrokerSASL) settings() transport.SASL {
	return transport.SASL{Mechanism: s.Mechanism, Username: s.Username, Password: s.Password}
}

// MarshalJSON writes s without its password.
func (s BrokerSASL) MarshalJSON() ([]byte, error) { return s.settings().MarshalJSON() }

// LogValue is s for log/slog, without its password.
func (s BrokerSASL) LogValue() slog.Value { return s.settings().LogValue() }

// Format writes s without its password, whatever the verb.
func (s BrokerSASL) Format(f fmt.State, verb rune) { s.settings().Format(f, verb) }

// Admin configures the admin HTTP server of `millrace run` and `millrace
// broker` (/healthz, /readyz, /metrics). Flags override it.
type Admin struct {
	Positions `yaml:"-"`

	// Addr is host:port, or "off"; default 127.0.0.1:9464.
	Addr string `yaml:"addr"`
	// Token is the bearer token /metrics needs (use ${ENV}); an address
	// other hosts can reach needs one.
	Token string `yaml:"token"`
}

// API configures the HTTP jobs API (`millrace serve`, `millrace run
// --api-addr`; docs/api.yaml). Flags override Addr.
type API struct {
	Positions `yaml:"-"`

	// Addr is where `millrace serve` listens, host:port; default
	// 127.0.0.1:8080 (`millrace run` serves the API only with --api-addr,
	// so that its replicas do not contend for one port).
	Addr string `yaml:"addr"`
	// MaxBodyBytes is the largest request body: a job's payload, or a
	// batch (default 1 MiB).
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// ProduceTimeout bounds how long a submission waits for the broker to
	// take its record before it answers 503 (default 10s).
	ProduceTimeout time.Duration `yaml:"produce_timeout"`
	// MaxWait is the longest long-poll a status request may ask for with
	// ?wait= (default 30s).
	MaxWait time.Duration `yaml:"max_wait"`
	// Tokens are the bearer tokens the API accepts (use ${ENV}); an address
	// other hosts can reach needs at least one. With tokens, every request
	// needs one. Pointers, so that no way of printing a File shows one (fmt
	// shows the fields of a struct it cannot format, skipping Format
	// methods, but not what a pointer in it points to).
	Tokens []*APIToken `yaml:"tokens"`
}

// APIToken is one bearer token of the API, and the pipelines it may use.
// Formatted with fmt (any verb), it never shows Token.
type APIToken struct {
	Positions `yaml:"-"`

	Token string `yaml:"token"`
	// Pipelines, if set, are the only pipelines the token may submit to
	// and read the jobs of.
	Pipelines []string `yaml:"pipelines"`
}

// Format writes t without its token, whatever the verb.
func (t APIToken) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{Token:%s Pipelines:%v}", redacted(t.Token), t.Pipelines)
}

// Scheduler names the topic and consumer group through which the
// processes of one deployment elect the one that fires its schedules
// (README: Schedules). Two deployments with different pipelines files on
// one Kafka cluster need their own: with one group, the leader of one
// would be the only scheduler of both, and fire only its own schedules.
type Scheduler struct {
	Positions `yaml:"-"`

	// Group is the consumer group (default millrace.scheduler).
	Group string `yaml:"group"`
	// Topic is the single-partition, compacted topic of the schedules'
	// last ticks (default millrace.schedules).
	Topic string `yaml:"topic"`
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

	// Retry, Ordering, Timeout and the group timeouts apply to stages
	// whose pipeline and themselves set none; see [Stage].
	Retry            Retry         `yaml:"retry"`
	Ordering         Ordering      `yaml:"ordering"`
	Timeout          time.Duration `yaml:"timeout"`
	SessionTimeout   time.Duration `yaml:"session_timeout"`
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
}

// Pipeline is one job: an input topic and an ordered list of stages.
type Pipeline struct {
	Positions `yaml:"-"`

	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Input       string `yaml:"input"`
	Output      string `yaml:"output"`
	Partitions  int    `yaml:"partitions"`
	// Priority lists more input topics with weights; Input is one of them
	// (weight 1 unless listed).
	Priority []PriorityTopic `yaml:"priority"`
	Stages   []Stage         `yaml:"stages"`

	// Retry, Ordering, Timeout and the group timeouts apply to the
	// pipeline's stages that set none; see [Stage].
	Retry            Retry         `yaml:"retry"`
	Ordering         Ordering      `yaml:"ordering"`
	Timeout          time.Duration `yaml:"timeout"`
	SessionTimeout   time.Duration `yaml:"session_timeout"`
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`

	// Results is nil unless the pipeline keeps the status of its jobs.
	Results *Results `yaml:"results"`
	// Schedules start the pipeline's jobs at times: each fire is a record
	// on the pipeline's input (see [SchedulePlan]).
	Schedules []Schedule `yaml:"schedules"`
}

// PriorityTopic is one entry of a pipeline's priority list.
type PriorityTopic struct {
	Positions `yaml:"-"`

	Topic string `yaml:"topic"`
	// Weight is the topic's share of the records read (default 1).
	Weight int `yaml:"weight"`
	// Name is what `millrace produce --priority` calls it; default Topic.
	Name string `yaml:"name"`
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

	// Retry, Ordering, Timeout, SessionTimeout and RebalanceTimeout are
	// taken from the nearest of the stage, its pipeline and the defaults
	// that sets them, else the built-in defaults. A retry block applies as
	// a whole: its unset fields take the built-in defaults, not those of
	// an outer level.
	Retry    Retry         `yaml:"retry"`
	Ordering Ordering      `yaml:"ordering"`
	Timeout  time.Duration `yaml:"timeout"`
	// SessionTimeout and RebalanceTimeout are the stage's consumer group
	// timeouts; see [StagePlan].
	SessionTimeout   time.Duration `yaml:"session_timeout"`
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// Dedup is nil unless the stage deduplicates.
	Dedup *Dedup `yaml:"dedup"`
	// Scale and Resources are how `millrace deploy render` runs the stage
	// on Kubernetes: its replicas and consumer lag target (KEDA), its
	// container's requests and limits. `millrace run` ignores them.
	Scale     *Scale     `yaml:"scale"`
	Resources *Resources `yaml:"resources"`

	// filterSpec and filterConfig are the filter's, once validated.
	filterSpec   filters.Spec
	filterConfig filters.Config
}

// Retry is a retry block: how a failed record is tried again. Which fields
// are set is in its Positions.
type Retry struct {
	Positions `yaml:"-"`

	Attempts int             `yaml:"attempts"`
	Backoff  Backoff         `yaml:"backoff"`
	Tiers    []time.Duration `yaml:"tiers"`
}

// Backoff spaces the inline attempts of a [Retry].
type Backoff struct {
	Positions `yaml:"-"`

	Initial    time.Duration `yaml:"initial"`
	Max        time.Duration `yaml:"max"`
	Multiplier float64       `yaml:"multiplier"`
	Jitter     float64       `yaml:"jitter"`
}

// Dedup makes a stage process each idempotency key once per window.
type Dedup struct {
	Positions `yaml:"-"`

	// Key is a jq expression evaluated on the payload, or "header:NAME".
	Key     string        `yaml:"key"`
	Window  time.Duration `yaml:"window"`
	MaxKeys int           `yaml:"max_keys"`

	keyOf KeyFunc
}

// Results makes a pipeline keep the status of every job in Kafka, answer
// on reply topics and POST signed callbacks (see docs/jobs.md). `results:
// {}` turns it on with the defaults; unset fields take them (see
// [ResultsPlan]).
type Results struct {
	Positions `yaml:"-"`

	// Keep is how long a finished job is kept (default 24h).
	Keep time.Duration `yaml:"keep"`
	// ReplyTopics are the topics a record may name in its
	// millrace-reply-to header.
	ReplyTopics []string `yaml:"reply_topics"`
	// ReplyMaxBytes: outputs whose total is at most this are inlined in
	// replies (default 65536, 0..1048576).
	ReplyMaxBytes int `yaml:"reply_max_bytes"`
	// Callback is nil unless finished jobs are POSTed to a URL.
	Callback *Callback `yaml:"callback"`
	// CallbackHosts are the hosts Callback.URL may name: a host name
	// (exact, case-insensitive) or "*.suffix" for any subdomain of suffix.
	CallbackHosts []string `yaml:"callback_hosts"`
}

// Callback is where and how a pipeline POSTs the status of each finished
// job. Formatted with fmt (any verb), it never shows Secret.
type Callback struct {
	Positions `yaml:"-"`

	// URL is an http or https URL with a host.
	URL string `yaml:"url"`
	// Secret is the HMAC-SHA256 key of the X-Millrace-Signature header
	// (use ${ENV}).
	Secret string `yaml:"secret"`
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// Retry bounds the backoff between attempts of one delivery.
	Retry CallbackRetry `yaml:"retry"`
}

// Format writes c without its secret, whatever the verb.
func (c Callback) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{URL:%s Secret:%s Timeout:%s Retry:{Initial:%s Max:%s Deadline:%s}}",
		redactedURL(c.URL), redacted(c.Secret), c.Timeout, c.Retry.Initial, c.Retry.Max, c.Retry.Deadline)
}

// CallbackRetry bounds the exponential backoff of a callback delivery: the
// first retry waits Initial (default 1s), each wait at most Max (default
// 1m), and the delivery is given up Deadline (default 1h) after the job
// finished.
type CallbackRetry struct {
	Positions `yaml:"-"`

	Initial  time.Duration `yaml:"initial"`
	Max      time.Duration `yaml:"max"`
	Deadline time.Duration `yaml:"deadline"`
}

// Schedule fires a job of its pipeline at the ticks of a cron spec or an
// interval: one record on the pipeline's input per tick, made by Payload
// and Key, exactly once across every running scheduler. Which fields are
// set is in its Positions; [SchedulePlan] holds the defaults.
type Schedule struct {
	Positions `yaml:"-"`

	// Name is unique in the pipeline, following [NamePattern]; the
	// schedule's id is "pipeline/name".
	Name string `yaml:"name"`
	// Cron is a standard 5-field cron spec ("0 2 * * *") or a macro such
	// as @daily, in Timezone. A schedule sets Cron or Every, not both.
	Cron string `yaml:"cron"`
	// Every fires at the multiples of the interval since the Unix epoch
	// (at least 1s), in no time zone.
	Every time.Duration `yaml:"every"`
	// Timezone is the IANA time zone of Cron (default UTC).
	Timezone string `yaml:"timezone"`
	// Payload is a jq program, run with null input and the variables
	// $schedule (the name) and $scheduled_time (the tick, RFC 3339, in
	// Timezone), whose first result is the record's JSON value; default
	// [DefaultSchedulePayload].
	Payload string `yaml:"payload"`
	// Key is a jq program like Payload whose first result is the record's
	// key, meaning what a dedup key means; none: records have no key.
	Key string `yaml:"key"`
	// Jitter delays each fire by up to this much (0..1h, and less than the
	// time between two ticks), so that many schedules due at one time do
	// not all start at once: a spread fraction of it that is a function of
	// the schedule and the tick, the same on every leader.
	Jitter time.Duration `yaml:"jitter"`
	// Overlap is skip (the default: a tick is skipped while the previous
	// job from this schedule still runs, which needs `results:` on the
	// pipeline) or allow.
	Overlap string `yaml:"overlap"`
	// CatchUp is what happens to ticks missed while no scheduler ran:
	// none (they are skipped), latest (the default: the latest of them
	// fires) or all (each fires, the latest MaxCatchUp of them).
	CatchUp string `yaml:"catch_up"`
	// MaxCatchUp bounds catch_up: all (1..10000, default
	// [DefaultMaxCatchUp]).
	MaxCatchUp int `yaml:"max_catch_up"`
	// Enabled is false to keep a schedule without firing it (it can
	// still be triggered by hand); true when absent.
	Enabled bool `yaml:"enabled"`

	// The schedule once validated: its timing and zone, and its programs
	// compiled.
	timing       schedtime.Timing
	location     *time.Location
	payload, key *gojq.Code
}

// Pos is a position in the YAML file, 1-based.
type Pos struct {
	Line, Column int
}

// Positions records where a mapping and each of its keys' values are. A
// key whose value is null counts as absent.
type Positions struct {
	Self Pos
	Keys map[string]Pos
	// Items holds, for each key whose value is a list, where its items are.
	Items map[string][]Pos
}

// Item returns the position of item i of the list under key, or of the key
// when there is no such item.
func (p Positions) Item(key string, i int) Pos {
	if items := p.Items[key]; i < len(items) {
		return items[i]
	}
	return p.Of(key)
}

func (p *Positions) recordItems(key string, list *yaml.Node) {
	if p.Items == nil {
		p.Items = map[string][]Pos{}
	}
	items := make([]Pos, len(list.Content))
	for i, n := range list.Content {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		items[i] = pos(n)
	}
	p.Items[key] = items
}

// Of returns the position of the value of key, or of the mapping itself
// when the key is absent.
func (p Positions) Of(key string) Pos {
	if at, ok := p.Keys[key]; ok {
		return at
	}
	return p.Self
}

// decoded reports whether the mapping was decoded (it was not when its
// value was of another kind, which is a problem already).
func (p Positions) decoded() bool { return p.Keys != nil }

// Set reports whether key was present in the YAML with a value (not null).
func (p Positions) Set(key string) bool {
	_, ok := p.Keys[key]
	return ok
}
