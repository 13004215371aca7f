// Command millrace runs background jobs as pipes and filters on Kafka.
//
// This file is all of main. To add your own filters, copy it into your own
// module, add an import of your filter package next to the built-ins, and
// build: every millrace command keeps working, with your filters registered.
package main

import (
	"os"

	"github.com/millrace/millrace/cmd/cli"
	_ "github.com/millrace/millrace/filters/std" // the built-in filters
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
