package prometheus_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit/prometheus"
)

func TestCheckExprs_reports_parse_errors_panels_without_data_and_missing_metrics(t *testing.T) {
	target := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range []string{`a_total{pipeline="p",stage="s"}`, "b_total", "c_total"} {
			name, _, _ := strings.Cut(m, "{")
			fmt.Fprintf(w, "# HELP %[1]s A fixture.\n# TYPE %[1]s counter\n%[2]s 1\n", name, m)
		}
	}))
	s := prometheus.Start(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.WaitScraped(ctx, target); err != nil {
		t.Fatal(err)
	}
	rep, err := s.CheckExprs(ctx, prometheus.ExprCheck{
		Dashboards: []string{filepath.Join("testdata", "dashboard.json"), filepath.Join("testdata", "bad.dashboard.json")},
		RuleFiles:  []string{filepath.Join("testdata", "good.rules.yml")},
		Prefix:     "d_",
		Vars: []map[string]string{
			{"pipeline": "nope", "stage": "nope", "__rate_interval": "1m"},
			{"pipeline": "p", "stage": "x", "__rate_interval": "1m"}, // no series of stage x
		},
		Wait: 3 * time.Second,
	})
	if err == nil {
		t.Fatal("no problems found")
	}
	msg := err.Error()
	for _, want := range []string{
		`panel "top" target A: "sum(rate(a_total{stage=~\"x\"}[1m]))": no data after 3s`,
		`panel "broken" target A: prometheus: query "sum(rate(a_total[5m])": /api/v1/query: bad_data`,
		`not in Prometheus's data (unknown, or not scraped): [d_total]`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems do not include %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 3 {
		t.Errorf("%d problems, want 3 (the other panels and the variables pass; the panel reading the missing d_total is not waited for):\n%s", n, msg)
	}
	want := prometheus.ExprReport{Exprs: 5, Variables: 2, Rules: 2, Metrics: []string{"d_total"}}
	if !reflect.DeepEqual(rep, want) {
		t.Errorf("report %+v, want %+v", rep, want)
	}
}
