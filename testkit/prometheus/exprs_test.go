package prometheus_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/millrace/millrace/testkit/prometheus"
)

func TestDashboardExprs_finds_every_target_in_panels_and_rows(t *testing.T) {
	exprs, vars, err := prometheus.DashboardExprs(filepath.Join("testdata", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range exprs {
		got = append(got, e.Where+": "+e.Expr)
	}
	want := []string{
		`panel "top" target A: sum(rate(a_total{stage=~"$stage"}[$__rate_interval]))`,
		`panel "in a row" target A: b_total`,
		`panel "in a row" target B: c_total`,
		`panel "in a collapsed row" target A: d_total`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exprs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantVars := []prometheus.Variable{
		{Name: "pipeline", Query: "label_values(a_total, pipeline)"},
		{Name: "stage", Query: `label_values(a_total{pipeline=~"$pipeline"}, stage)`},
	}
	if !reflect.DeepEqual(vars, wantVars) {
		t.Errorf("variables %+v, want %+v", vars, wantVars)
	}
}

func TestRuleExprs_reads_every_rule(t *testing.T) {
	exprs, err := prometheus.RuleExprs(filepath.Join("testdata", "good.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []prometheus.Expr{
		{Where: `group "demo" rule job:up:sum`, Expr: "sum by (job) (up)"},
		{Where: `group "demo" rule DemoTargetDown`, Expr: "up == 0"},
	}
	if !reflect.DeepEqual(exprs, want) {
		t.Errorf("got %+v, want %+v", exprs, want)
	}
}

func TestExpand_replaces_every_variable_syntax_and_refuses_unknown_ones(t *testing.T) {
	vars := map[string]string{"stage": "price", "__rate_interval": "1m"}
	for _, tt := range []struct{ in, want, err string }{
		{`rate(a{stage=~"$stage"}[$__rate_interval])`, `rate(a{stage=~"price"}[1m])`, ""},
		{`a{stage="${stage}"} + a{stage="${stage:regex}"} + a{stage="[[stage]]"}`, `a{stage="price"} + a{stage="price"} + a{stage="price"}`, ""},
		{`a{pipeline="$pipeline"}`, "", "unknown variables pipeline"},
	} {
		got, err := prometheus.Expand(tt.in, vars)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Expand(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMetricNames_finds_names_outside_strings(t *testing.T) {
	expr := `histogram_quantile(0.99, sum by (le) (rate(millrace_x_seconds_bucket{stage="millrace_not_a_metric"}[1m])))
	  / on (stage) millrace_y_total + millrace_y_total unless up{job='millrace_job'}`
	got := prometheus.MetricNames(expr, "millrace_")
	want := []string{"millrace_x_seconds_bucket", "millrace_y_total"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MetricNames = %v, want %v", got, want)
	}
}

func TestLabelValuesQuery(t *testing.T) {
	got, err := prometheus.LabelValuesQuery(`label_values(a_total{pipeline=~"x"}, stage)`)
	if want := `count by (stage) (a_total{pipeline=~"x"})`; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := prometheus.LabelValuesQuery(`query_result(up)`); err == nil {
		t.Error("query_result(up) was taken for label_values")
	}
}
