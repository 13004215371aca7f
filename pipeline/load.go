package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/millrace/millrace/filters"
)

// DefaultFile is the file millrace reads when none is named.
const DefaultFile = "pipelines.yaml"

// Option changes how [Load] and [Parse] read a file.
type Option func(*options)

type options struct {
	registry *filters.Registry
}

// WithRegistry makes stages name filters of r instead of those of
// [filters.DefaultRegistry], for tests that register filters of their own.
func WithRegistry(r *filters.Registry) Option {
	return func(o *options) { o.registry = r }
}

// Load reads, decodes and validates a pipelines file. If anything is wrong
// the error is [Problems], listing every problem with its position.
func Load(path string, opts ...Option) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipelines file: %w", err)
	}
	return Parse(path, data, os.LookupEnv, opts...)
}

// Parse decodes and validates the pipelines file held in data; path is
// only used in problems. lookupEnv resolves ${NAME} references (os.LookupEnv
// in production). Stages name filters of [filters.DefaultRegistry] unless
// [WithRegistry] says otherwise.
func Parse(path string, data []byte, lookupEnv func(string) (string, bool), opts ...Option) (*File, error) {
	o := options{registry: filters.DefaultRegistry()}
	for _, opt := range opts {
		opt(&o)
	}
	p := &problems{file: path}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if strings.TrimSpace(string(data)) == "" || err.Error() == "EOF" {
			p.add(Pos{1, 1}, emptyFile)
		} else {
			p.add(syntaxPos(err), "%s", syntaxMessage(err))
		}
		return nil, p.list
	}
	var extra yaml.Node
	if dec.Decode(&extra) == nil {
		p.add(pos(&extra), "the file holds more than one YAML document; millrace reads only one")
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if isNull(doc) {
		// `~`, `null`, `---` or a lone tag: a document with nothing in it.
		p.add(Pos{1, 1}, emptyFile)
		return nil, p.list.sorted()
	}
	interpolate(doc, lookupEnv, p)
	f := &File{Path: path}
	(&decoder{p: p}).decode(doc, reflect.ValueOf(f).Elem(), "pipelines file")
	if f.Positions.Keys == nil {
		if len(p.list) == 0 { // not reached: the decoder said why
			p.add(Pos{1, 1}, emptyFile)
		}
		return nil, p.list.sorted()
	}
	f.applyDefaults()
	f.validate(p, o.registry)
	if len(p.list) > 0 {
		return nil, p.list.sorted()
	}
	return f, nil
}

const emptyFile = "file is empty: it needs `version: 1` and a list of `pipelines:`"

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

func syntaxPos(err error) Pos {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Pos{Line: line, Column: 1}
	}
	return Pos{Line: 1, Column: 1}
}

func syntaxMessage(err error) string {
	msg := yamlLine.ReplaceAllString(err.Error(), "")
	return "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}
