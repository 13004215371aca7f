// Package deploy_test checks the operator files under deploy/: the
// Prometheus alerts with promtool, the Grafana dashboard's structure and
// the metrics both read. cmd/millrace's TestRun_metrics_scraped_by_a_real_prometheus
// evaluates every expression against a Prometheus scraping millrace run.
package deploy_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/internal/admin"
	"github.com/millrace/millrace/router"
	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/testkit/prometheus"
)

var (
	dashboardFile = filepath.Join("grafana", "millrace.json")
	alertsFile    = filepath.Join("prometheus", "alerts.yml")
)

// metrics are the names millrace exports (issue 13), as a query reads
// them: a histogram through its _bucket series.
var metrics = []string{
	"millrace_records_consumed_total",
	"millrace_records_produced_total",
	"millrace_records_dropped_total",
	"millrace_filter_errors_total",
	"millrace_retries_total",
	"millrace_records_quarantined_total",
	"millrace_dedup_skipped_total",
	"millrace_filter_duration_seconds_bucket",
	"millrace_record_latency_seconds_bucket",
	"millrace_in_flight_records",
	"millrace_stage_ready",
	"millrace_consumer_lag_records",
	"millrace_producer_errors_total",
	"millrace_kafka_requests_total",
	"millrace_build_info",
}

// unscoped are the metrics without pipeline and stage labels.
var unscoped = []string{"millrace_producer_errors_total", "millrace_kafka_requests_total", "millrace_build_info"}

func TestAlerts_pass_promtool_check_rules_and_their_unit_tests(t *testing.T) {
	if err := prometheus.CheckRules(t, alertsFile); err != nil {
		t.Fatal(err)
	}
	if err := prometheus.TestRules(t, filepath.Join("prometheus", "alerts_test.yml")); err != nil {
		t.Fatal(err)
	}
}

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name, Type string
			Query      any
			Datasource *datasource
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Panels     []panel `json:"panels"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct{ Type, UID string }

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	text, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(text, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows: a collapsed row keeps its panels inside.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

func TestDashboard_is_a_grafana_dashboard_of_prometheus_panels_on_a_datasource_variable(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion >= 36", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s does not query the ${datasource} variable", v.Name)
		}
	}
	want := map[string]string{"datasource": "datasource", "pipeline": "query", "stage": "query"}
	for name, typ := range want {
		if vars[name] != typ {
			t.Errorf("variable %s is of type %q, want %q", name, vars[name], typ)
		}
	}
	ids := map[int]string{}
	occupied := map[[2]int]string{} // grid cell (x, y) → the panel on it
	panels := allPanels(d.Panels)
	if len(panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range panels {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d is missing or also %q's", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside Grafana's 24 columns", p.Title, g)
		}
		overlaps := map[string]bool{}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := occupied[[2]int{x, y}]; ok && !overlaps[other] {
					overlaps[other] = true
					t.Errorf("panel %q overlaps %q at column %d row %d", p.Title, other, x, y)
				}
				occupied[[2]int{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want the prometheus ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: target %q has no expr, or no or a repeated refId", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
}

// selectorRE matches a millrace metric and its label matchers, if any.
var selectorRE = regexp.MustCompile(`(millrace_\w+)(\{[^}]*\})?`)

func TestDashboard_reads_every_metric_for_the_selected_pipelines_and_stages(t *testing.T) {
	exprs, vars, err := prometheus.DashboardExprs(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, e := range exprs {
		for _, n := range prometheus.MetricNames(e.Expr, "millrace_") {
			read[n] = true
		}
		// Every selector of a metric with pipeline and stage labels is
		// scoped to the variables (a multi-value variable is a regex).
		for _, m := range selectorRE.FindAllStringSubmatch(e.Expr, -1) {
			if slices.Contains(unscoped, m[1]) {
				continue
			}
			if !strings.Contains(m[2], `pipeline=~"$pipeline"`) || !strings.Contains(m[2], `stage=~"$stage"`) {
				t.Errorf("%s: %s%s is not scoped to $pipeline and $stage", e.Where, m[1], m[2])
			}
		}
		if _, err := prometheus.Expand(e.Expr, map[string]string{
			"pipeline": "p", "stage": "s", "__rate_interval": "1m", "__range": "1h",
		}); err != nil {
			t.Errorf("%s: %v", e.Where, err)
		}
	}
	for _, v := range vars {
		if _, err := prometheus.LabelValuesQuery(v.Query); err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
		}
	}
	var unknown []string
	for n := range read {
		if !slices.Contains(metrics, n) {
			unknown = append(unknown, n)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("the dashboard reads metrics millrace does not export: %v", unknown)
	}
	for _, m := range metrics {
		if !read[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

func TestAlerts_read_only_metrics_millrace_exports(t *testing.T) {
	exprs, err := prometheus.RuleExprs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) == 0 {
		t.Fatal("no rules")
	}
	for _, e := range exprs {
		for _, n := range prometheus.MetricNames(e.Expr, "millrace_") {
			if !slices.Contains(metrics, n) {
				t.Errorf("%s reads %s, which millrace does not export", e.Where, n)
			}
		}
	}
}

// TestDashboard_and_alerts_evaluate_in_a_prometheus_scraping_the_metric_names:
// a real Prometheus scrapes testdata/metrics.prom (the exposition issue
// 13's names and labels give, for pipeline orders with stages validate
// and price) and evaluates every expression of the dashboard, with one
// stage and with both, and of the alerts: none may fail, every panel and
// variable must show data and every metric read must be in the scrape.
func TestDashboard_and_alerts_evaluate_in_a_prometheus_scraping_the_metric_names(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "metrics.prom"))
	if err != nil {
		t.Fatal(err)
	}
	if err := prometheus.CheckMetrics(t, body); err != nil {
		t.Fatalf("testdata/metrics.prom: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write(body)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	target := l.Addr().String()

	prom := prometheus.StartWith(t, prometheus.Options{Targets: []string{target}, RuleFiles: []string{alertsFile}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := prom.WaitScraped(ctx, target); err != nil {
		t.Fatal(err)
	}
	vars := func(stage string) map[string]string {
		return map[string]string{"pipeline": "orders", "stage": stage, "__rate_interval": "1m", "__interval": "1m", "__range": "5m"}
	}
	rep, err := prom.CheckExprs(ctx, prometheus.ExprCheck{
		Dashboards: []string{dashboardFile},
		RuleFiles:  []string{alertsFile},
		Prefix:     "millrace_",
		Vars:       []map[string]string{vars("price"), vars("(validate|price)")},
	})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := prom.AwaitRulesEvaluated(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Health != "ok" {
			t.Errorf("alert %s: health %s: %s", r.Name, r.Health, r.LastError)
		}
	}
	if !slices.Equal(rep.Metrics, sorted(metrics)) {
		t.Errorf("the files read %v, want every metric: %v", rep.Metrics, sorted(metrics))
	}
	t.Logf("%d dashboard expressions, %d variables, %d alert rules evaluated; %d metrics read", rep.Exprs, rep.Variables, rep.Rules, len(rep.Metrics))
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestMetricNames_are_those_millrace_registers: the names these tests and
// testdata/metrics.prom take for millrace's are those the process
// registers (router.NewMetrics, with the job results' metrics, and the
// admin registry's build info), so renaming a metric fails here until the
// dashboard, the alerts and the fixture follow. The job results' metrics
// (millrace_jobs_*, replies, callbacks) and the scheduler's
// (millrace_schedule_*) are not on the dashboard.
func TestMetricNames_are_those_millrace_registers(t *testing.T) {
	reg := admin.NewRegistry()
	rec := &describing{Registerer: reg}
	if _, err := router.NewMetrics(rec); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather() // the build info, set at once
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		rec.names = append(rec.names, f.GetName())
	}
	fqName := regexp.MustCompile(`^millrace_`)
	var registered []string
	for _, name := range rec.names {
		if !fqName.MatchString(name) || slices.Contains(registered, name) {
			continue
		}
		switch name {
		case "millrace_jobs_finished_total", "millrace_replies_total", "millrace_callbacks_total":
			continue
		}
		if strings.HasPrefix(name, "millrace_schedule_") {
			continue
		}
		if strings.HasSuffix(name, "_seconds") {
			name += "_bucket" // a histogram, as queries read it
		}
		registered = append(registered, name)
	}
	if got, want := sorted(registered), sorted(metrics); !slices.Equal(got, want) {
		t.Errorf("millrace registers %v; these tests take %v", got, want)
	}
	fixture, err := os.ReadFile(filepath.Join("testdata", "metrics.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metrics {
		if !regexp.MustCompile(`(?m)^` + m + `[{ ]`).Match(fixture) {
			t.Errorf("testdata/metrics.prom has no %s", m)
		}
	}
}

// describing is a Registerer that notes the names of what is registered
// with it (a vector has no series, so is not gathered, before it is used).
type describing struct {
	prom.Registerer
	names []string
}

func (d *describing) Register(c prom.Collector) error {
	descs := make(chan *prom.Desc, 16)
	go func() { c.Describe(descs); close(descs) }()
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	for desc := range descs {
		if m := name.FindStringSubmatch(desc.String()); m != nil {
			d.names = append(d.names, m[1])
		}
	}
	return d.Registerer.Register(c)
}

func (d *describing) MustRegister(cs ...prom.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}
