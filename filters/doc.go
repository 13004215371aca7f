// Package filters is millrace's public filter API.
//
// A filter is one step of a pipeline: it takes one message and returns zero,
// one or many messages, or an error. Filters are registered by name together
// with a [Spec] that documents and validates their `config:` block in
// pipelines.yaml, so `millrace validate` can point at the exact line of a bad
// setting and `millrace filters docs` can render a reference.
//
// To add your own filter, register it from an init function and build your
// own binary that imports it next to the built-ins (see cmd/millrace):
//
//	func init() {
//		filters.MustRegister(filters.Spec{
//			Name:    "upper",
//			Summary: "Upper-cases the payload.",
//			New: func(filters.Config) (filters.Filter, error) {
//				return filters.Func(func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
//					m.Payload = bytes.ToUpper(m.Payload)
//					return []*filters.Message{m}, nil
//				}), nil
//			},
//		})
//	}
//
// Test a filter with the conformance suite in testkit/filtertest, which
// checks what the engine relies on beyond the cases you give it.
//
// This package knows nothing about Kafka: the engine in package router turns
// records into [Message] values and back.
package filters
