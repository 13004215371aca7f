package realkafka

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// brokerConfig is what server.properties is generated from.
type brokerConfig struct {
	version    string
	dir        string // the broker's temp dir
	port       int    // the clients' listener: PLAINTEXT, or SASL_SSL with secure
	controller int    // CONTROLLER
	// internal is the PLAINTEXT listener between brokers (and for tools)
	// when the clients' listener is SASL_SSL; 0 otherwise.
	internal int
	secure   *secureListener
}

// serverProperties renders a single-node KRaft server.properties.
func (c brokerConfig) serverProperties() string {
	props := [][2]string{
		{"process.roles", "broker,controller"},
		{"node.id", "1"},
		{"controller.quorum.voters", fmt.Sprintf("1@127.0.0.1:%d", c.controller)},
	}
	props = append(props, c.listeners()...)
	props = append(props, [][2]string{
		{"log.dirs", filepath.Join(c.dir, "data")},
		{"num.partitions", "1"},
		{"auto.create.topics.enable", "false"},
		{"offsets.topic.replication.factor", "1"},
		{"transaction.state.log.replication.factor", "1"},
		{"transaction.state.log.min.isr", "1"},
		{"group.initial.rebalance.delay.ms", "0"},
		{"log.cleaner.dedupe.buffer.size", "2097152"},
		{"log.retention.ms", "-1"},
	}...)
	if majorVersion(c.version) >= 4 {
		props = append(props,
			[2]string{"share.coordinator.state.topic.replication.factor", "1"},
			[2]string{"share.coordinator.state.topic.min.isr", "1"})
	}
	var b strings.Builder
	for _, p := range props {
		fmt.Fprintf(&b, "%s=%s\n", p[0], p[1])
	}
	return b.String()
}

// listeners configures the listeners: PLAINTEXT for clients and brokers,
// or SASL_SSL for clients only and PLAINTEXT between brokers (INTERNAL),
// each advertised as itself, so a client learns only the addresses of the
// listener it connected to. The controller listener is PLAINTEXT.
func (c brokerConfig) listeners() [][2]string {
	controller := fmt.Sprintf("CONTROLLER://127.0.0.1:%d", c.controller)
	if c.secure == nil {
		plain := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", c.port)
		return [][2]string{
			{"listeners", plain + "," + controller},
			{"advertised.listeners", plain},
			{"inter.broker.listener.name", "PLAINTEXT"},
			{"controller.listener.names", "CONTROLLER"},
			{"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
		}
	}
	secure := fmt.Sprintf("SASL_SSL://127.0.0.1:%d", c.port)
	internal := fmt.Sprintf("INTERNAL://127.0.0.1:%d", c.internal)
	mech := strings.ToLower(c.secure.mechanism)
	return [][2]string{
		{"listeners", secure + "," + internal + "," + controller},
		{"advertised.listeners", secure + "," + internal},
		{"inter.broker.listener.name", "INTERNAL"},
		{"controller.listener.names", "CONTROLLER"},
		{"listener.security.protocol.map", "SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"},
		{"listener.name.sasl_ssl.sasl.enabled.mechanisms", c.secure.mechanism},
		{"listener.name.sasl_ssl." + mech + ".sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required;"},
		{"listener.name.sasl_ssl.ssl.keystore.type", "PEM"},
		{"listener.name.sasl_ssl.ssl.keystore.location", c.secure.keystore},
	}
}

// log4j2Config logs to stdout at level; used by Kafka 4.x.
func log4j2Config(level string) string {
	return `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ` + level + `
rootLogger.appenderRef.out.ref = OUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.kconfig.name = kafka.server.KafkaConfig
logger.kconfig.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
`
}

// log4jConfig logs to stdout at level; used by Kafka 3.x (reload4j).
func log4jConfig(level string) string {
	return `log4j.rootLogger=` + level + `, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.Target=System.out
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.state.change.logger=WARN
`
}

// writeFiles writes server.properties and the logging configs into c.dir.
func (c brokerConfig) writeFiles() error {
	files := map[string]string{
		"server.properties":       c.serverProperties(),
		"log4j2.properties":       log4j2Config("INFO"),
		"log4j.properties":        log4jConfig("INFO"),
		"tools-log4j2.properties": log4j2Config("WARN"),
		"tools-log4j.properties":  log4jConfig("WARN"),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// newClusterID returns a random 22-character base64url cluster id, as
// StorageTool random-uuid prints. Like Kafka's Uuid.randomUuid it never
// starts with '-': StorageTool's argument parser reads "-t -Xyz…" as a
// missing value followed by an option (1 format in 64 failed that way).
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id, nil
		}
	}
}

// pickPorts returns n distinct ports on 127.0.0.1: the clients' port (want,
// or a free one when want is 0), then n-1 free ones.
func pickPorts(want, n int) ([]int, error) {
	var client net.Listener
	var err error
	if want != 0 {
		client, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", want))
	} else {
		client, err = listenBelowEphemeral()
	}
	if err != nil {
		return nil, fmt.Errorf("realkafka: port %d not free: %w", want, err)
	}
	defer client.Close()
	ports := []int{listenerPort(client)}
	for len(ports) < n {
		l, err := listenBelowEphemeral()
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, listenerPort(l))
	}
	return ports, nil
}

// listenBelowEphemeral listens on a free loopback port below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), falling back to any
// free port. A port bind(0) picks comes from that range, from which
// outgoing connections take their local ports too: between a Restart's
// stop and start a client's connection once took the controller's port,
// and the broker did not start (BindException in
// TestDedup_exactly_once_across_a_broker_restart).
func listenBelowEphemeral() (net.Listener, error) {
	low := 32768 // Linux's default start of the range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const first = 10000
	for range 100 {
		if low <= first {
			break
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+mrand.IntN(low-first))); err == nil {
			return l, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// listenerPort is the TCP port l listens on.
func listenerPort(l net.Listener) int {
	return l.Addr().(*net.TCPAddr).Port
}
