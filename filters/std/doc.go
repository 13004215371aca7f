// Package std holds millrace's built-in filters.
//
// Importing the package for its side effects registers them, so that
// pipelines.yaml can name them in `filter:`:
//
//	import _ "github.com/millrace/millrace/filters/std"
//
// It registers:
//
//   - jq: transforms, drops or fans out JSON payloads with a jq program.
//   - exec: pipes each payload through an external program.
//   - log: logs each record and passes it on unchanged.
//
// Each filter documents its config block in its spec; `millrace filters docs`
// renders them.
package std
