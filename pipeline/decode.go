package pipeline

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/internal/yamlscalar"
)

var (
	nodeType      = reflect.TypeFor[*yaml.Node]()
	positionsType = reflect.TypeFor[Positions]()
	durationType  = reflect.TypeFor[time.Duration]()
)

// labels name the mappings of the model in problems.
var labels = map[reflect.Type]string{
	reflect.TypeFor[File]():          "the top level",
	reflect.TypeFor[Broker]():        "broker",
	reflect.TypeFor[BrokerTLS]():     "broker tls",
	reflect.TypeFor[BrokerSASL]():    "broker sasl",
	reflect.TypeFor[Admin]():         "admin",
	reflect.TypeFor[API]():           "api",
	reflect.TypeFor[Scheduler]():     "scheduler",
	reflect.TypeFor[APIToken]():      "api token",
	reflect.TypeFor[Defaults]():      "defaults",
	reflect.TypeFor[Pipeline]():      "pipeline",
	reflect.TypeFor[Stage]():         "stage",
	reflect.TypeFor[Retry]():         "retry",
	reflect.TypeFor[Backoff]():       "backoff",
	reflect.TypeFor[Dedup]():         "dedup",
	reflect.TypeFor[Scale]():         "scale",
	reflect.TypeFor[Resources]():     "resources",
	reflect.TypeFor[ResourceList]():  "resource list",
	reflect.TypeFor[PriorityTopic](): "priority entry",
	reflect.TypeFor[Results]():       "results",
	reflect.TypeFor[Callback]():      "callback",
	reflect.TypeFor[CallbackRetry](): "callback retry",
	reflect.TypeFor[Schedule]():      "schedule",
}

// decoder decodes YAML nodes into the model strictly: an unknown or repeated
// key, or a value of the wrong kind, is a problem at its position. Scalars
// are read by internal/yamlscalar, as filter config blocks are. It keeps
// going after a problem so that every problem is reported at once.
type decoder struct {
	p *problems
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

func (d *decoder) decode(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(n))
		return
	}
	if isNull(n) {
		return
	}
	if v.Type() == durationType {
		dur, err := yamlscalar.Duration(n)
		if err != nil {
			d.wrong(n, what, err)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.decode(n, v.Elem(), what)
	case reflect.Struct:
		d.decodeStruct(n, v, what)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.p.add(pos(n), "%s: want a list, got %s", what, d.describe(n))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		for i, item := range n.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if isNull(item) {
				// A bare `-` is not an absent key: it is an item with
				// nothing in it. Validation of the item, if any, reports
				// at the item too (and is not repeated there).
				d.p.add(pos(item), "%s: item %d is empty: want %s", what, i+1, want(v.Type().Elem()))
				setSelf(v.Index(i), pos(item))
				continue
			}
			d.decode(item, v.Index(i), what)
		}
	case reflect.String:
		str, err := yamlscalar.String(n)
		if err != nil {
			d.wrong(n, what, err)
			return
		}
		v.SetString(str)
	case reflect.Int:
		i, err := yamlscalar.Int(n)
		if err != nil {
			d.wrong(n, what, err)
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		f, err := yamlscalar.Float(n)
		if err != nil {
			d.wrong(n, what, err)
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := yamlscalar.Bool(n)
		if err != nil {
			d.wrong(n, what, err)
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("pipeline: no decoder for %s", v.Type()))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.MappingNode {
		d.p.add(pos(n), "%s: want a mapping, got %s", what, d.describe(n))
		setSelf(v, pos(n))
		return
	}
	fields := map[string]int{}
	var known []string
	positions := -1
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.Type == positionsType {
			positions = i
		}
		if tag := f.Tag.Get("yaml"); tag != "" && tag != "-" {
			fields[tag] = i
			known = append(known, tag)
		}
	}
	ps := Positions{Self: pos(n), Keys: map[string]Pos{}}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		switch {
		case !ok:
			d.p.add(pos(k), "unknown key %q in %s (known keys: %s)", k.Value, labels[v.Type()], strings.Join(known, ", "))
			continue
		case seen[k.Value]:
			d.p.add(pos(k), "key %q is set twice in %s", k.Value, labels[v.Type()])
			continue
		}
		seen[k.Value] = true
		if val.Kind == yaml.AliasNode {
			val = val.Alias
		}
		// A key with a null value (`key:` alone, or `~`) counts as absent.
		if !isNull(val) || v.Field(idx).Type() == nodeType {
			ps.Keys[k.Value] = pos(val)
		}
		if val.Kind == yaml.SequenceNode {
			ps.recordItems(k.Value, val)
		}
		d.decode(val, v.Field(idx), k.Value)
	}
	if positions >= 0 {
		v.Field(positions).Set(reflect.ValueOf(ps))
	}
}

// wrong reports a value that is not what the model wants (err says what).
func (d *decoder) wrong(n *yaml.Node, what string, err error) {
	d.p.add(pos(n), "%s: %v, got %s", what, err, d.describe(n))
}

// want describes what a value of type t is written as.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return yamlscalar.WantDuration
	case t.Kind() == reflect.Pointer:
		return want(t.Elem())
	case t.Kind() == reflect.Struct:
		return "a mapping"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.String:
		return yamlscalar.WantString
	case t.Kind() == reflect.Int:
		return yamlscalar.WantInt
	case t.Kind() == reflect.Bool:
		return yamlscalar.WantBool
	}
	return yamlscalar.WantFloat
}

// setSelf places a mapping of the model that was not decoded at pos, so
// that problems about it have a position.
func setSelf(v reflect.Value, at Pos) {
	if v.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Type == positionsType {
			v.Field(i).Set(reflect.ValueOf(Positions{Self: at}))
		}
	}
}

func isNull(n *yaml.Node) bool { return yamlscalar.Null(n) }

// describe is how a problem shows a value of the wrong kind.
func (d *decoder) describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return d.p.quoted(pos(n), n.Value)
}
