package deploy_test

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfile is deploy/Dockerfile, read as the tests need it.
type dockerfile struct {
	args  map[string]string // ARG defaults
	build string            // the RUN line of the go build
	lines []string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{args: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		d.lines = append(d.lines, line)
		if rest, ok := strings.CutPrefix(line, "ARG "); ok {
			name, def, _ := strings.Cut(rest, "=")
			d.args[name] = def
		}
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			d.build = strings.TrimPrefix(line, "RUN ")
		}
	}
	return d
}

// TestDockerfile_builds_a_static_binary_that_runs_without_its_build_env
// does what `docker build -f deploy/Dockerfile` does, without an engine
// (none runs here): the build stage's go build, with its environment and
// flags as written, then the binary run as the runtime stage runs it — no
// libc (distroless/static has none), an empty environment, another
// directory.
func TestDockerfile_builds_a_static_binary_that_runs_without_its_build_env(t *testing.T) {
	d := readDockerfile(t)
	goMod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	// The toolchain go.mod names (the Go make builds with), else its go line.
	goVersion := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindSubmatch(goMod)
	if goVersion == nil {
		goVersion = regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod)
	}
	if goVersion == nil || d.args["GO_VERSION"] != string(goVersion[1]) {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s: the image would build with another Go", d.args["GO_VERSION"], goVersion)
	}
	if d.args["BASE"] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("ARG BASE=%s, want distroless/static (no libc, no shell; non-root)", d.args["BASE"])
	}
	for _, want := range []string{"FROM golang:${GO_VERSION} AS build", "FROM ${BASE}",
		"USER 65532:65532", `ENTRYPOINT ["/usr/local/bin/millrace"]`, "COPY --from=build /out/millrace /usr/local/bin/millrace"} {
		if !contains(d.lines, want) {
			t.Errorf("Dockerfile has no line %q", want)
		}
	}
	if d.build == "" || d.args["MAIN"] != "./cmd/millrace" {
		t.Fatalf("no RUN … go build line, or MAIN is not ./cmd/millrace (%q)", d.args["MAIN"])
	}

	// The build stage's command, as written: VAR=value… go build flags.
	out := filepath.Join(t.TempDir(), "millrace")
	fields := strings.Fields(strings.NewReplacer("${MAIN}", d.args["MAIN"], "/out/millrace", out).Replace(d.build))
	var env []string
	for len(fields) > 0 && strings.Contains(fields[0], "=") && !strings.HasPrefix(fields[0], "-") {
		env, fields = append(env, fields[0]), fields[1:]
	}
	if len(fields) < 2 || fields[0] != "go" || fields[1] != "build" {
		t.Fatalf("the build line is not VAR=… go build …: %q", d.build)
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux"} {
		if !contains(env, want) {
			t.Errorf("the build line does not set %s", want)
		}
	}
	args := unquote(fields[1:])
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary names a dynamic loader: it is not static, and distroless/static has no libc")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".debug_info") != nil {
		t.Error("the binary keeps its DWARF tables: -ldflags=-s -w did not apply")
	}

	// Run it as the image would: nothing from this machine's environment,
	// no shell (distroless: the repo's exec stages, which run sh, cannot
	// run there; a pipeline of built-in filters can), time zones from the
	// binary (ZONEINFO pointing nowhere).
	dir := t.TempDir()
	pipelines := `version: 1
broker: {brokers: ["kafka:9092"]}
pipelines:
  - name: orders
    input: orders
    results: {}
    schedules: [{name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin}]
    stages:
      - {name: price, filter: jq, config: {program: '.total = .qty * .price'}}
      - {name: audit, filter: log}
`
	if err := os.WriteFile(filepath.Join(dir, "pipelines.yaml"), []byte(pipelines), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", "-f", "pipelines.yaml"}, "pipelines.yaml: ok"},
		{[]string{"filters", "list"}, "jq"},
		{[]string{"--help"}, "millrace"},
	} {
		run := exec.Command(out, c.args...)
		run.Dir, run.Env = dir, []string{"HOME=/home/nonroot", "ZONEINFO=/nonexistent"}
		b, err := run.CombinedOutput()
		if err != nil || !strings.Contains(string(b), c.want) {
			t.Errorf("millrace %s: %v\n%s", strings.Join(c.args, " "), err, b)
		}
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// unquote drops the shell quotes of -ldflags="-s -w" split by Fields:
// ["-ldflags=\"-s", "-w\""] → ["-ldflags=-s -w"].
func unquote(fields []string) []string {
	var out []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Count(f, `"`) == 1 {
			j := i + 1
			for j < len(fields) && !strings.Contains(fields[j], `"`) {
				j++
			}
			if j < len(fields) {
				f = strings.Join(fields[i:j+1], " ")
				i = j
			}
		}
		out = append(out, strings.ReplaceAll(f, `"`, ""))
	}
	return out
}
