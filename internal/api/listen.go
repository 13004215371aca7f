package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/internal/admin"
	"github.com/millrace/millrace/pipeline"
)

// ErrNeedsToken is the error of an address other hosts can reach without
// api.tokens.
var ErrNeedsToken = errors.New("an API address other hosts can reach needs api.tokens in the pipelines file (bearer tokens, from ${ENV})")

// recordOverhead is room, over api.max_body_bytes, for a record's key,
// headers and framing in the producer's record size limit.
const recordOverhead = 64 << 10

// ProducerConfig is the config of the API's producer: transport's
// producer config (idempotent, acks from all in-sync replicas, the plan's
// client id and compression) with its waits derived from the plan's
// api.produce_timeout T, so that the producer gives a record up about T
// after it was handed over when Kafka refuses connections (more, up to
// about 1.5 T, when its hosts do not answer at all): dials and writes time
// out after T/8, the broker waits T/4 for its replicas and the producer
// T/3 for the broker's answer (longer than the broker's own wait, so that
// an answer the broker sends is read), and a failed send is retried 3
// times, T/8 apart, each after one metadata refresh. The handler waits for
// the verdict, so a record given up is never sent after its submission
// was answered 503. Records may be as large as api.max_body_bytes plus 64
// KiB of key and headers; the broker's own limit (message.max.bytes, 1 MiB
// by default) still applies.
func ProducerConfig(plan *pipeline.Plan) (*sarama.Config, error) {
	c, err := plan.ProducerConfig()
	if err != nil {
		return nil, err
	}
	t := plan.API.ProduceTimeout
	c.Net.DialTimeout, c.Net.ReadTimeout, c.Net.WriteTimeout = t/8, t/3, t/8
	c.Producer.Timeout = t / 4
	c.Producer.Retry.Max, c.Producer.Retry.Backoff = 3, t/8
	c.Metadata.Retry.Max, c.Metadata.Retry.Backoff = 1, t/8
	c.Producer.MaxMessageBytes = plan.API.MaxBodyBytes + recordOverhead
	return c, c.Validate()
}

// HTTPServer is the API listening on an address.
type HTTPServer struct {
	ln  net.Listener
	srv *http.Server
}

// Listen serves h on addr (host:port; port 0 picks a free one) until
// Shutdown. An address other hosts can reach needs tokens (ErrNeedsToken).
// Reading a request (headers and body) is bounded by 1 minute, writing an
// answer by the longest long-poll plus the produce timeout plus 30 s, and
// an idle keep-alive connection is closed after 2 minutes.
func Listen(addr string, h http.Handler, plan pipeline.APIPlan, log *slog.Logger) (*HTTPServer, error) {
	loop, err := admin.Loopback(addr)
	if err != nil {
		return nil, fmt.Errorf("API address %q: want host:port: %w", addr, err)
	}
	if !loop && len(plan.Tokens) == 0 {
		return nil, fmt.Errorf("API address %s: %w", addr, ErrNeedsToken)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("API server: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &HTTPServer{ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      plan.MaxWait + plan.ProduceTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("API server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on (with the port it picked).
func (s *HTTPServer) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting requests and waits until those in progress
// are answered or ctx ends (then it closes their connections).
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return err
}
