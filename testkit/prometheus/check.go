package prometheus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// ExprCheck says what [Server.CheckExprs] checks.
type ExprCheck struct {
	// Dashboards are Grafana dashboard files (JSON).
	Dashboards []string
	// RuleFiles are Prometheus rule files.
	RuleFiles []string
	// Prefix selects the metric names that must be in the server's data
	// (such as "millrace_"); empty checks none.
	Prefix string
	// Vars are sets of values for the dashboards' variables, Grafana's
	// global ones ($__rate_interval, $__range…) included. Every set is
	// tried; with the last one every panel and every label_values
	// variable must show data.
	Vars []map[string]string
	// Wait bounds how long one expression may take to show data (a rate
	// needs two scrapes; some metrics are refreshed every few seconds).
	// Zero means 30s.
	Wait time.Duration
}

// ExprReport counts what CheckExprs evaluated.
type ExprReport struct {
	// Exprs counts the dashboards' expressions, Variables their
	// label_values variables, Rules the rule files' expressions.
	Exprs, Variables, Rules int
	// Metrics are the names with the prefix that the files read, sorted.
	Metrics []string
}

// CheckExprs evaluates every expression of the dashboards (with each set
// of variables) and of the rule files in s. It returns every problem
// found, joined: an expression Prometheus refuses (a parse error, a type
// error), a panel or variable without data for the last set of
// variables, a variable Grafana's label_values cannot be, and a metric
// name with the prefix that s has no series of (Prometheus answers an
// unknown metric with no data, not an error).
func (s *Server) CheckExprs(ctx context.Context, c ExprCheck) (ExprReport, error) {
	if c.Wait <= 0 {
		c.Wait = 30 * time.Second
	}
	if len(c.Vars) == 0 {
		c.Vars = []map[string]string{{}}
	}
	last := c.Vars[len(c.Vars)-1]
	var rep ExprReport
	var errs []error
	type file struct {
		path      string
		exprs     []Expr
		variables []Variable
	}
	var dashboards, rules []file
	for _, path := range c.Dashboards {
		exprs, variables, err := DashboardExprs(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dashboards = append(dashboards, file{path, exprs, variables})
		rep.Exprs += len(exprs)
		rep.Variables += len(variables)
	}
	for _, path := range c.RuleFiles {
		exprs, err := RuleExprs(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, file{path: path, exprs: exprs})
		rep.Rules += len(exprs)
	}

	// The metrics first: an expression reading one that is missing is
	// not waited for (the missing metric is the problem reported).
	names := map[string]bool{}
	for _, f := range append(dashboards, rules...) {
		for _, e := range f.exprs {
			for _, n := range MetricNames(e.Expr, c.Prefix) {
				names[n] = true
			}
		}
		for _, v := range f.variables {
			for _, n := range MetricNames(v.Query, c.Prefix) {
				names[n] = true
			}
		}
	}
	if c.Prefix == "" {
		names = nil
	}
	missing := map[string]bool{}
	for n := range names {
		rep.Metrics = append(rep.Metrics, n)
	}
	sort.Strings(rep.Metrics)
	for _, n := range rep.Metrics {
		if s.awaitData(ctx, fmt.Sprintf("count({__name__=%q})", n), c.Wait) != nil {
			missing[n] = true
		}
	}
	if len(missing) > 0 {
		var list []string
		for n := range missing {
			list = append(list, n)
		}
		sort.Strings(list)
		errs = append(errs, fmt.Errorf("metrics read but not in Prometheus's data (unknown, or not scraped): %v", list))
	}
	readsMissing := func(expr string) bool {
		for _, n := range MetricNames(expr, c.Prefix) {
			if missing[n] {
				return true
			}
		}
		return false
	}
	// check evaluates expr; with data set it also waits for a sample.
	check := func(expr string, vars map[string]string, data bool) error {
		q, err := Expand(expr, vars)
		if err != nil {
			return err
		}
		if data && !readsMissing(expr) {
			return s.awaitData(ctx, q, c.Wait)
		}
		_, err = s.Query(ctx, q)
		return err
	}

	for _, f := range dashboards {
		for _, v := range f.variables {
			q, err := LabelValuesQuery(v.Query)
			if err == nil {
				err = check(q, last, true)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: variable %s: %w", f.path, v.Name, err))
			}
		}
		for _, e := range f.exprs {
			for i, vars := range c.Vars {
				if err := check(e.Expr, vars, i == len(c.Vars)-1); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s: %w", f.path, e.Where, err))
					break
				}
			}
		}
	}
	for _, f := range rules {
		for _, e := range f.exprs {
			if err := check(e.Expr, nil, false); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", f.path, e.Where, err))
			}
		}
	}
	return rep, errors.Join(errs...)
}

// errNoData says an expression gave no samples.
var errNoData = errors.New("no data")

// awaitData evaluates expr until it gives a sample, for up to wait. An
// error of the query ends the wait at once.
func (s *Server) awaitData(ctx context.Context, expr string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		r, err := s.Query(ctx, expr)
		switch {
		case err == nil && len(r.Samples) > 0:
			return nil
		case err != nil && ctx.Err() == nil:
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%q: %w after %s", expr, errNoData, wait)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
