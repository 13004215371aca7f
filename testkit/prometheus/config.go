package prometheus

import (
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Job names of the scrape configs Start writes.
const (
	// Job is the job label of the targets given to Start.
	Job = "millrace"
	// SelfJob is the job label of the server's own /metrics.
	SelfJob = "prometheus"
)

// config is the part of prometheus.yml that Start writes.
type config struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		ScrapeTimeout      string `yaml:"scrape_timeout"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files,omitempty"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type scrapeConfig struct {
	JobName       string         `yaml:"job_name"`
	Authorization *authorization `yaml:"authorization,omitempty"`
	StaticConfigs []staticConfig `yaml:"static_configs"`
}

type authorization struct {
	Type        string `yaml:"type"`
	Credentials string `yaml:"credentials"`
}

type staticConfig struct {
	Targets []string `yaml:"targets"`
}

// writeConfig writes dir/prometheus.yml for a server listening on self.
// Rule files are made absolute: Prometheus reads them relative to the
// config file.
func writeConfig(dir, self string, o Options) (string, error) {
	var c config
	interval := o.ScrapeInterval.String()
	c.Global.ScrapeInterval, c.Global.ScrapeTimeout, c.Global.EvaluationInterval = interval, interval, interval
	for _, f := range o.RuleFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return "", err
		}
		c.RuleFiles = append(c.RuleFiles, abs)
	}
	if len(o.Targets) > 0 {
		sc := scrapeConfig{JobName: Job, StaticConfigs: []staticConfig{{Targets: o.Targets}}}
		if o.BearerToken != "" {
			sc.Authorization = &authorization{Type: "Bearer", Credentials: o.BearerToken}
		}
		c.ScrapeConfigs = append(c.ScrapeConfigs, sc)
	}
	if o.ScrapeSelf {
		c.ScrapeConfigs = append(c.ScrapeConfigs, scrapeConfig{JobName: SelfJob, StaticConfigs: []staticConfig{{Targets: []string{self}}}})
	}
	text, err := yaml.Marshal(&c)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "prometheus.yml")
	return path, os.WriteFile(path, text, 0o600)
}
