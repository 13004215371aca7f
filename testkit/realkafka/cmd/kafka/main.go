// Command kafka runs a real single-node Apache Kafka broker on 127.0.0.1 in
// the foreground until SIGINT or SIGTERM, then stops it and removes its data.
//
//	go run ./testkit/realkafka/cmd/kafka [-version V] [-port P] [-sasl-ssl] [-v]
//
// With -sasl-ssl the port is a SASL_SSL listener with one SCRAM-SHA-512
// user; it prints the CA file to trust and the user's credentials.
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
	saslSSL := flag.Bool("sasl-ssl", false, "make the port SASL_SSL (SCRAM-SHA-512) and print the CA file and credentials")
	verbose := flag.Bool("v", false, "print the broker's log to stderr")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var logw io.Writer
	if *verbose {
		logw = os.Stderr
	}
	opts := realkafka.Options{Version: *version, Port: *port, Log: logw}
	if *saslSSL {
		opts.SASLSSL = &realkafka.SecureOptions{}
	}
	b, err := realkafka.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer b.Stop()
	fmt.Printf("kafka %s ready on %s (started in %.1fs)\n", b.Version(), b.Addr(), b.StartupTime().Seconds())
	if u := b.SASLSSL(); u != nil {
		fmt.Printf("security.protocol SASL_SSL, sasl.mechanism %s, username %s, password %s\n", u.Mechanism, u.Username, u.Password)
		fmt.Printf("CA file %s; PLAINTEXT for tools on %s\n", b.CAFile(), b.InternalAddr())
	}
	select {
	case <-ctx.Done():
		fmt.Println("stopping")
	case <-b.Done():
		b.Stop()
		return fmt.Errorf("broker exited unexpectedly")
	}
	return b.Stop()
}
