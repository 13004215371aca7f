// Package namepattern holds the one pattern millrace's own names follow:
// pipeline, stage, filter and priority names. pipeline.NamePattern is it;
// it lives here so that package filters, which package pipeline imports,
// checks filter names against it too.
package namepattern

import "regexp"

// Regexp is what a name must match: lowercase letters and digits, in
// groups separated by single '.', '_' or '-'.
var Regexp = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)
