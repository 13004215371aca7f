// Package prometheus runs a real Prometheus server on loopback for tests,
// and Prometheus's promtool on exposition bodies and rule files.
//
// [Start] runs the prometheus binary of the Debian package "prometheus"
// (found on PATH; `make test` installs it as root with apt-get) on a free
// 127.0.0.1 port, with a fresh config scraping the given targets every
// second and a fresh data directory under os.TempDir(). It waits until the
// server is ready (/-/ready) and stops it and removes the directory when
// the test ends, failed or not:
//
//	prom := prometheus.Start(t, "127.0.0.1:9464")
//	if err := prom.WaitScraped(ctx, "127.0.0.1:9464"); err != nil {
//		t.Fatal(err)
//	}
//	v, err := prom.QueryValue(ctx, `sum(millrace_records_consumed_total)`)
//
// [CheckMetrics], [CheckRules] and [TestRules] run "promtool check
// metrics", "promtool check rules" and "promtool test rules".
// [DashboardExprs] and [RuleExprs] list the PromQL of a Grafana dashboard
// and of a rule file, [Expand] fills in Grafana's variables and
// [MetricNames] names the metrics an expression reads, so a test can
// evaluate every expression against a server that scraped the real thing
// and see that each metric exists (Prometheus answers an unknown metric
// with no data, not an error).
//
// Where prometheus or promtool is not installed the test is skipped with a
// line saying so, except under CI=true, where it fails (as
// testkit.RealKafka does for Java).
//
// The server runs in its own process group with a parent-death signal
// (SIGKILL) on Linux, so it does not outlive the test binary; a data
// directory left behind by a killed test binary is removed by a later Start.
package prometheus
