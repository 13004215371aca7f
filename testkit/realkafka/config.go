package realkafka

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// brokerConfig is what server.properties is generated from.
type brokerConfig struct {
	version    string
	dir        string // the broker's temp dir
	port       int    // PLAINTEXT
	controller int    // CONTROLLER
}

// serverProperties renders a single-node KRaft server.properties.
func (c brokerConfig) serverProperties() string {
	plain := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", c.port)
	props := [][2]string{
		{"process.roles", "broker,controller"},
		{"node.id", "1"},
		{"controller.quorum.voters", fmt.Sprintf("1@127.0.0.1:%d", c.controller)},
		{"listeners", fmt.Sprintf("%s,CONTROLLER://127.0.0.1:%d", plain, c.controller)},
		{"advertised.listeners", plain},
		{"inter.broker.listener.name", "PLAINTEXT"},
		{"controller.listener.names", "CONTROLLER"},
		{"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
		{"log.dirs", filepath.Join(c.dir, "data")},
		{"num.partitions", "1"},
		{"auto.create.topics.enable", "false"},
		{"offsets.topic.replication.factor", "1"},
		{"transaction.state.log.replication.factor", "1"},
		{"transaction.state.log.min.isr", "1"},
		{"group.initial.rebalance.delay.ms", "0"},
		{"log.cleaner.dedupe.buffer.size", "2097152"},
		{"log.retention.ms", "-1"},
	}
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

// pickPorts returns the PLAINTEXT port (want, or a free one when want is 0)
// and a distinct free CONTROLLER port, both on 127.0.0.1.
func pickPorts(want int) (port, controller int, err error) {
	plain, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", want))
	if err != nil {
		return 0, 0, fmt.Errorf("realkafka: port %d not free: %w", want, err)
	}
	defer plain.Close()
	ctrl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer ctrl.Close()
	return listenerPort(plain), listenerPort(ctrl), nil
}

// listenerPort is the TCP port l listens on.
func listenerPort(l net.Listener) int {
	return l.Addr().(*net.TCPAddr).Port
}
