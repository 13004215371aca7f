package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

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
			p.add(syntaxPos(err, data), "%s", syntaxMessage(err))
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
	f.Warnings = p.warnings.sorted()
	return f, nil
}

const emptyFile = "file is empty: it needs `version: 1` and a list of `pipelines:`"

var (
	yamlLine   = regexp.MustCompile(`^yaml: line (\d+): `)
	yamlAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// yamlParserProblems are the problems yaml.v3's parser (not its scanner)
// reports. It numbers their lines from 0 and the scanner's from 1, and a
// line 0 (line 1 for the scanner) goes without "line N: ". For an
// unclosed construct the line is where the construct began, such as its
// '['. syntax_test.go pins these.
var yamlParserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
}

// syntaxPos is where a YAML syntax error is: the line yaml.v3 gives, at
// column 1 since it gives none, or where an unknown anchor is referenced.
func syntaxPos(err error, data []byte) Pos {
	msg := err.Error()
	if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			return posOf(data, i)
		}
	}
	line := 0 // as the parser numbers them
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if yamlParserProblems[msg] || line == 0 {
		line++
	}
	// The end of the input, after the last newline, is on the last line.
	lines := bytes.Count(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) + 1
	return Pos{Line: min(line, lines), Column: 1}
}

// posOf is the position of data[offset], columns counted in characters.
func posOf(data []byte, offset int) Pos {
	start := bytes.LastIndexByte(data[:offset], '\n') + 1
	return Pos{Line: bytes.Count(data[:offset], []byte("\n")) + 1, Column: utf8.RuneCount(data[start:offset]) + 1}
}

func syntaxMessage(err error) string {
	msg := yamlLine.ReplaceAllString(err.Error(), "")
	return "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
}
