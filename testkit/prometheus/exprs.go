package prometheus

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Expr is a PromQL expression found in a dashboard or a rule file.
type Expr struct {
	// Where names it: the panel's title and the target's refId, or the
	// rule's group and name.
	Where string
	// Expr is the expression as written, Grafana variables and all.
	Expr string
}

// Variable is a query variable of a Grafana dashboard.
type Variable struct {
	Name  string
	Query string // such as label_values(metric{…}, label)
}

// dashboardNode is the part of a dashboard, panel or row DashboardExprs reads.
type dashboardNode struct {
	Title   string          `json:"title"`
	Panels  []dashboardNode `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// DashboardExprs reads a Grafana dashboard (JSON) and returns the expr of
// every target of every panel, in rows too, and its query variables.
func DashboardExprs(path string) ([]Expr, []Variable, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var d dashboardNode
	if err := json.Unmarshal(text, &d); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var exprs []Expr
	var walk func(p dashboardNode)
	walk = func(p dashboardNode) {
		for _, tg := range p.Targets {
			if tg.Expr != "" {
				exprs = append(exprs, Expr{Where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), Expr: tg.Expr})
			}
		}
		for _, c := range p.Panels {
			walk(c)
		}
	}
	walk(d)
	var vars []Variable
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct{ Query string }
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				return nil, nil, fmt.Errorf("%s: variable %s: query is neither a string nor an object with one", path, v.Name)
			}
			q = obj.Query
		}
		vars = append(vars, Variable{Name: v.Name, Query: q})
	}
	return exprs, vars, nil
}

// RuleExprs reads a Prometheus rule file and returns the expr of every
// alerting and recording rule.
func RuleExprs(path string) ([]Expr, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(text, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var exprs []Expr
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, Expr{Where: fmt.Sprintf("group %q rule %s%s", g.Name, r.Alert, r.Record), Expr: r.Expr})
		}
	}
	return exprs, nil
}

// variableRE matches Grafana's variable syntaxes $name, ${name},
// ${name:format} and [[name]].
var variableRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// Expand replaces Grafana variables in expr by their values in vars, the
// global ones ($__rate_interval, $__interval, $__range…) included. It
// fails on a variable vars does not have.
func Expand(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := variableRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variableRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if missing != nil {
		return "", fmt.Errorf("unknown variables %s in %q", strings.Join(missing, ", "), expr)
	}
	return out, nil
}

// stringRE matches PromQL string literals.
var stringRE = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")

// MetricNames returns the sorted, distinct names starting with prefix
// that expr uses outside string literals: with prefix "millrace_", the
// millrace metrics it reads (a histogram's as …_bucket).
func MetricNames(expr, prefix string) []string {
	bare := stringRE.ReplaceAllString(expr, `""`)
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(prefix) + `[A-Za-z0-9_:]*`)
	seen := map[string]bool{}
	var names []string
	for _, n := range re.FindAllString(bare, -1) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// labelValuesRE matches Grafana's label_values(selector, label).
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$`)

// LabelValuesQuery turns a variable query label_values(selector, label)
// into PromQL giving one sample per value: count by (label) (selector).
func LabelValuesQuery(query string) (string, error) {
	m := labelValuesRE.FindStringSubmatch(query)
	if m == nil {
		return "", fmt.Errorf("%q is not label_values(selector, label)", query)
	}
	return fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), nil
}
