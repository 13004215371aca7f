package transport

import (
	"strconv"
	"strings"
	"sync/atomic"

	metrics "github.com/rcrowley/go-metrics"
)

// maxAPIKey bounds the Kafka API keys counted by [KafkaRequests]; the
// highest key Kafka 4.1 defines is below it (the protocol guide's
// "Api Keys" table).
const maxAPIKey = 128

// requests counts the requests this process's clients sent, by API key.
var requests [maxAPIKey]atomic.Int64

// KafkaRequests returns how many Kafka requests the clients made with
// [NewSaramaConfig] (every millrace client) have sent since the process
// started, by API key (0 Produce, 1 Fetch, 3 Metadata, 8 OffsetCommit, 12
// Heartbeat, … as numbered in Kafka's protocol guide), leaving out keys
// with none. The counts come from sarama's per-request hook
// ("protocol-requests-rate-<key>"), so a request is counted when sarama
// sends it, whether or not it is answered; sarama sends ApiVersions and
// SaslHandshake (one each per connection) without that hook, so they are
// not counted.
func KafkaRequests() map[int16]int64 {
	out := map[int16]int64{}
	for k := range requests {
		if n := requests[k].Load(); n > 0 {
			out[int16(k)] = n
		}
	}
	return out
}

// requestMeter returns the counting meter for a go-metrics name sarama
// registers once per client connection and API key, or nil for any other
// name. Per-broker copies ("…-for-broker-<id>") are not counted, so each
// request counts once.
func requestMeter(name string) metrics.Meter {
	key, ok := strings.CutPrefix(name, "protocol-requests-rate-")
	if !ok {
		return nil
	}
	k, err := strconv.Atoi(key)
	if err != nil || k < 0 || k >= maxAPIKey {
		return nil
	}
	return countingMeter{&requests[k]}
}

// countingMeter is a go-metrics meter that only counts, into n: no rates,
// so it never joins go-metrics' ticker.
type countingMeter struct{ n *atomic.Int64 }

func (m countingMeter) Count() int64    { return m.n.Load() }
func (m countingMeter) Mark(n int64)    { m.n.Add(n) }
func (countingMeter) Rate1() float64    { return 0 }
func (countingMeter) Rate5() float64    { return 0 }
func (countingMeter) Rate15() float64   { return 0 }
func (countingMeter) RateMean() float64 { return 0 }
func (m countingMeter) Snapshot() metrics.Meter {
	var c atomic.Int64
	c.Store(m.n.Load())
	return countingMeter{&c}
}
func (countingMeter) Stop() {}
