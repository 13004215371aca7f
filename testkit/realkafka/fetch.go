package realkafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// ErrNoMaven is wrapped by the error of Fetch and Start when the jars are not
// cached yet and mvn is not on PATH.
var ErrNoMaven = errors.New("realkafka: mvn (Apache Maven) not found on PATH")

// dependencyPlugin is the pinned Maven plugin that copies the jars.
const dependencyPlugin = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

// completeMarker is written into a version's cache directory once all jars
// are in place; a directory without it is never used.
const completeMarker = "complete"

// staleStaging is the age after which a leftover staging directory of a
// killed download is removed.
const staleStaging = time.Hour

// Fetch makes sure the jars of a Kafka version are in the cache, downloading
// them with Maven if needed, and returns the libs directory and the version.
//
// When opts.Version is empty it tries DefaultVersion, then 4.0.0, then 3.9.1.
// It is safe to call from several processes at once: each downloads into its
// own staging directory next to the target and renames it into place.
func Fetch(ctx context.Context, opts Options) (libsDir, version string, err error) {
	opts = opts.withDefaults()
	var errs []error
	for _, v := range opts.candidateVersions() {
		libs, err := fetchVersion(ctx, opts, v)
		if err == nil {
			return libs, v, nil
		}
		errs = append(errs, err)
		if errors.Is(err, ErrNoMaven) || ctx.Err() != nil {
			break
		}
		fmt.Fprintf(opts.Log, "realkafka: kafka %s unavailable: %v\n", v, firstLine(err))
	}
	return "", "", errors.Join(errs...)
}

// versionDir is the cache directory of one Kafka version.
func versionDir(cacheDir, version string) string {
	return filepath.Join(cacheDir, "kafka-"+version)
}

// isComplete reports whether dir holds a finished download.
func isComplete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, completeMarker))
	return err == nil
}

// fetchMu serializes downloads within a process, so concurrent Starts wait
// for one Maven run instead of each running their own. Across processes the
// atomic rename keeps the cache consistent.
var fetchMu sync.Mutex

// fetchVersion returns the libs dir of version, downloading it if needed.
func fetchVersion(ctx context.Context, opts Options, version string) (string, error) {
	target := versionDir(opts.CacheDir, version)
	libs := filepath.Join(target, "libs")
	if isComplete(target) {
		return libs, nil
	}
	fetchMu.Lock() // one download at a time in this process
	defer fetchMu.Unlock()
	if isComplete(target) {
		return libs, nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("fetching kafka %s: %w", version, ErrNoMaven)
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return "", err
	}
	removeStaleStaging(opts.CacheDir, version)
	staging, err := os.MkdirTemp(opts.CacheDir, "kafka-"+version+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(staging) // no-op after a successful rename
	fmt.Fprintf(opts.Log, "realkafka: downloading kafka %s jars with Maven into %s\n", version, target)
	start := time.Now()
	if err := runMaven(ctx, mvn, version, filepath.Join(staging, "libs")); err != nil {
		return "", err
	}
	if err := writeMarker(staging, version); err != nil {
		return "", err
	}
	if err := os.Rename(staging, target); err != nil && !isComplete(target) {
		return "", fmt.Errorf("fetching kafka %s: %w", version, err)
	}
	fmt.Fprintf(opts.Log, "realkafka: kafka %s jars ready in %s\n", version, time.Since(start).Round(time.Millisecond))
	return libs, nil
}

// writeMarker marks a staging directory as complete.
func writeMarker(dir, version string) error {
	jars, err := filepath.Glob(filepath.Join(dir, "libs", "*.jar"))
	if err != nil {
		return err
	}
	if len(jars) == 0 {
		return fmt.Errorf("fetching kafka %s: Maven copied no jars", version)
	}
	body := fmt.Sprintf("kafka %s\njars %d\n", version, len(jars))
	return os.WriteFile(filepath.Join(dir, completeMarker), []byte(body), 0o644)
}

// removeStaleStaging deletes staging directories left by killed downloads.
func removeStaleStaging(cacheDir, version string) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "kafka-"+version+".tmp-*"))
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > staleStaging {
			os.RemoveAll(d)
		}
	}
}

// runMaven copies the jars of version into outDir using a generated pom.xml
// in a temporary directory.
func runMaven(ctx context.Context, mvn, version, outDir string) error {
	dir, err := os.MkdirTemp("", "millrace-kafka-pom-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pom := filepath.Join(dir, "pom.xml")
	if err := os.WriteFile(pom, []byte(pomXML(version)), 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, mvn, "-B", "-q", "-U", "-f", pom, dependencyPlugin,
		"-DoutputDirectory="+outDir, "-DincludeScope=runtime")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fetching kafka %s: mvn failed: %w\n%s", version, err, tail(stripANSI(out.String()), 40))
	}
	return nil
}

// pomXML is a pom whose runtime dependencies are a Kafka broker, its CLI
// tools and a logging backend that matches the version's slf4j binding.
func pomXML(version string) string {
	var deps strings.Builder
	for _, d := range artifacts(version) {
		fmt.Fprintf(&deps, "    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n",
			d.group, d.artifact, d.version)
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.github.millrace</groupId>
  <artifactId>realkafka-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
` + deps.String() + `  </dependencies>
</project>
`
}

// artifact is one Maven coordinate.
type artifact struct{ group, artifact, version string }

// artifacts lists what to download for a Kafka version. Kafka 4.x logs with
// log4j2 through slf4j 1.7 (log4j-slf4j-impl); Kafka 3.x uses reload4j.
func artifacts(version string) []artifact {
	as := []artifact{
		{"org.apache.kafka", "kafka_2.13", version},
		{"org.apache.kafka", "kafka-tools", version},
	}
	if usesLog4j2(version) {
		const log4j = "2.24.3"
		return append(as,
			artifact{"org.apache.logging.log4j", "log4j-api", log4j},
			artifact{"org.apache.logging.log4j", "log4j-core", log4j},
			artifact{"org.apache.logging.log4j", "log4j-slf4j-impl", log4j})
	}
	return append(as,
		artifact{"org.slf4j", "slf4j-reload4j", "1.7.36"},
		artifact{"ch.qos.reload4j", "reload4j", "1.2.25"})
}

// usesLog4j2 reports whether a Kafka version logs with log4j2 (4.0 and
// later) rather than reload4j.
func usesLog4j2(version string) bool {
	return majorVersion(version) >= 4
}

// majorVersion is the leading number of a version, or 0.
func majorVersion(version string) int {
	n := 0
	for _, c := range version {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// ansiEscape matches the color codes Maven prints even in batch mode.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// stripANSI removes terminal color codes from s.
func stripANSI(s string) string { return ansiEscape.ReplaceAllString(s, "") }

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// firstLine returns the first line of an error message.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
