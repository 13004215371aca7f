// Command kafka runs a real single-node Apache Kafka broker on 127.0.0.1 in
// the foreground until SIGINT or SIGTERM, then stops it and removes its data.
//
//	go run ./testkit/realkafka/cmd/kafka [-version V] [-port P] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/millrace/millrace/testkit/realkafka"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kafka:", err)
		os.Exit(1)
	}
}

// run starts the broker, waits for a signal or the broker's exit, and stops.
func run() error {
	version := flag.String("version", "", "Kafka version (default "+realkafka.DefaultVersion+", with fallbacks)")
	port := flag.Int("port", 0, "PLAINTEXT port on 127.0.0.1 (0 = a free port)")
	verbose := flag.Bool("v", false, "print the broker's log to stderr")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var logw io.Writer
	if *verbose {
		logw = os.Stderr
	}
	b, err := realkafka.Start(ctx, realkafka.Options{Version: *version, Port: *port, Log: logw})
	if err != nil {
		return err
	}
	defer b.Stop()
	fmt.Printf("kafka %s ready on %s (started in %.1fs)\n", b.Version(), b.Addr(), b.StartupTime().Seconds())
	select {
	case <-ctx.Done():
		fmt.Println("stopping")
	case <-b.Done():
		b.Stop()
		return fmt.Errorf("broker exited unexpectedly")
	}
	return b.Stop()
}
