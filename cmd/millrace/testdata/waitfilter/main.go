// Command waitfilter is millrace with one filter of its own, "wait",
// built the way README's "Writing a filter" tells a user to build their
// own binary: cmd/millrace/main.go with one more import. The scale-out
// test (scaleout_test.go) builds and runs it.
package main

import (
	"os"

	"github.com/millrace/millrace/cmd/cli"
	_ "github.com/millrace/millrace/cmd/millrace/testdata/waitfilter/wait" // yours
	_ "github.com/millrace/millrace/filters/std"                           // the built-in filters
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
