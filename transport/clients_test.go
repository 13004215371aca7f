package transport_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every Kafka client millrace makes must carry the broker block's TLS and
// SASL (issue 18): a client made from a bare config reaches a PLAINTEXT
// cluster and fails on a secure one, which only a test on a secure broker
// would notice (`run --api-addr` did, once). So outside the places that
// apply the security (pipeline.Plan's configs, kafkaops.Cluster's, and
// transport itself), no code makes a client config of its own, and every
// kafkaops.Cluster literal sets Security.
func TestEvery_client_config_carries_the_security(t *testing.T) {
	allowed := []string{
		"transport/",           // the configs themselves, and their defaults
		"pipeline/security.go", // Plan.SaramaConfig, Plan.ProducerConfig
		"kafkaops/cluster.go",  // Cluster.Config, Cluster.syncProducer
		"testkit/",             // applies Backend.Security
		"internal/bench/",      // the benchmark's own clients, on PLAINTEXT brokers it starts
		"internal/kfake/",      // the broker
	}
	config := regexp.MustCompile(`transport\.New(Sarama|Producer)Config\(|sarama\.NewConfig\(\)`)
	cluster := regexp.MustCompile(`kafkaops\.Cluster\{`)
	root := ".."
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || strings.Contains(rel, "/testdata/") {
			return nil
		}
		for _, a := range allowed {
			if strings.HasPrefix(rel, a) {
				return nil
			}
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		text := string(src)
		for _, loc := range config.FindAllStringIndex(text, -1) {
			t.Errorf("%s:%d: %s makes a client config without the plan's security: use pipeline.Plan.SaramaConfig/ProducerConfig "+
				"or kafkaops.Cluster", rel, line(text, loc[0]), text[loc[0]:loc[1]])
		}
		for _, loc := range cluster.FindAllStringIndex(text, -1) {
			lit := text[loc[1]:]
			if end := strings.Index(lit, "}"); end >= 0 {
				lit = lit[:end]
			}
			if strings.TrimSpace(lit) != "" && !strings.Contains(lit, "Security:") {
				t.Errorf("%s:%d: a kafkaops.Cluster without Security: %s", rel, line(text, loc[0]), text[loc[0]:loc[1]]+lit+"}")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("read %d Go files outside the allowed places: the walk did not find the module's code", n)
	}
}

func line(text string, at int) int { return strings.Count(text[:at], "\n") + 1 }
