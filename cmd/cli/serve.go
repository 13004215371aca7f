package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/internal/admin"
	"github.com/millrace/millrace/internal/api"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

const serveHelp = `Serve the HTTP jobs API until SIGINT or SIGTERM: submit jobs over HTTP, ask
their status, long-poll for their result (docs/api.yaml is the contract).

  POST /v1/pipelines/{pipeline}/jobs        the body is the job's payload:
                                            202, Location: its status URL
  POST /v1/pipelines/{pipeline}/jobs:batch  one payload per line (NDJSON)
  GET  /v1/jobs/{id}[?wait=30s]             its status; 200 once finished
  GET  /v1/pipelines                        the pipelines and their stages

A submission is answered 202 only once Kafka acknowledged the job's record,
and 503 (with Retry-After) when Kafka did not confirm it within
api.produce_timeout: Kafka may still have written a record it could not
confirm, so retry with the same Idempotency-Key, which makes the job id a
function of the key: a retried request gets the same job.

serve runs no stages, so it scales on its own behind a load balancer; every
serve process answers the same for the same job (each reads the jobs' events
from Kafka). Its address is --addr, else api.addr in the file, else
127.0.0.1:8080; an address other hosts can reach needs api.tokens (bearer
tokens) in the file. Without brokers configured it uses the embedded broker
of a 'millrace run' or 'millrace broker' on this machine (127.0.0.1:9092).
It serves /healthz, /readyz and /metrics on --admin-addr, as run does.

  curl -si -H 'Content-Type: application/json' \
    --data-binary '{"order_id":"o-1","customer":"c-7","qty":2,"price":9.5}' \
    http://127.0.0.1:8080/v1/pipelines/orders/jobs
  curl -s 'http://127.0.0.1:8080/v1/jobs/<job_id>?wait=30s'`

// apiOptions say where and how the jobs API serves.
type apiOptions struct {
	addr string
	plan *pipeline.Plan
}

// serveOptions are what `millrace serve` runs.
type serveOptions struct {
	api         apiOptions
	cluster     kafkaops.Cluster
	admin       adminOptions
	stopTimeout time.Duration
}

func newServeCmd(g *globals) *cobra.Command {
	var (
		addr        string
		stopTimeout time.Duration
		cf          = clusterFlags{}
		af          adminFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP jobs API (submit jobs, ask their status) without running stages",
		Long:  serveHelp,
		Example: `  millrace serve
  millrace serve --brokers kafka-1:9092,kafka-2:9092 --addr 127.0.0.1:8081
  millrace run --api-addr 127.0.0.1:8080`,
		Args: noArgs,
	}
	parse := func([]string) (serveOptions, error) {
		if stopTimeout < 0 {
			return serveOptions{}, usagef("--stop-timeout %s: want 0 or more", stopTimeout)
		}
		file, err := g.load()
		if err != nil {
			return serveOptions{}, err
		}
		plan := file.Plan()
		o := serveOptions{stopTimeout: stopTimeout}
		// An open api.addr without tokens never gets here: validation refuses it.
		if o.api, err = apiOptionsOf("--addr", addr, cmp.Or(plan.API.Addr, pipeline.DefaultAPIAddr), plan); err != nil {
			return serveOptions{}, err
		}
		if o.cluster, err = cf.cluster(g, plan); err != nil {
			return serveOptions{}, err
		}
		if o.admin, err = af.options(plan); err != nil {
			return serveOptions{}, err
		}
		return o, nil
	}
	do := func(ctx context.Context, o serveOptions) error {
		ctx, stop := signalContext(ctx, g.log, stopping{"stopping: answering the requests in progress", "exiting at once"})
		defer stop()
		reg := admin.NewRegistry()
		var running atomic.Pointer[apiServer]
		srv, err := serveAdmin(o.admin, g, reg, func() (bool, []string) {
			if a := running.Load(); a != nil {
				return a.api.Ready()
			}
			return false, []string{"connecting to Kafka"}
		})
		if err != nil {
			return err
		}
		defer closeAdmin(srv)
		a, err := startAPI(ctx, o.api, o.cluster, reg, g.log)
		if err != nil {
			return err
		}
		running.Store(a)
		<-ctx.Done()
		a.stop(o.stopTimeout, g.log)
		return nil
	}
	command(g, cmd, parse, do)
	cmd.Flags().StringVar(&addr, "addr", "", "where to serve the API, host:port (default: api.addr of the file, else "+pipeline.DefaultAPIAddr+")")
	cmd.Flags().DurationVar(&stopTimeout, "stop-timeout", 30*time.Second, "how long requests in progress may take to finish on stop")
	cmd.Flags().DurationVar(&cf.timeout, "connect-timeout", 30*time.Second,
		"how long to wait for the brokers at start (0: until they answer, or a signal)")
	af.add(cmd)
	return cmd
}

// apiOptionsOf resolves the API's address: the flag's, else def ("" for
// off). An address other hosts can reach without api.tokens is bad usage.
func apiOptionsOf(flag, addr, def string, plan *pipeline.Plan) (apiOptions, error) {
	if addr == "" {
		addr = def
	}
	if addr == "" {
		return apiOptions{}, nil
	}
	loop, err := admin.Loopback(addr)
	switch {
	case err != nil:
		return apiOptions{}, usagef("%s %s: want host:port", flag, addr)
	case !loop && len(plan.API.Tokens) == 0:
		return apiOptions{}, usagef("%s %s: %v", flag, addr, api.ErrNeedsToken)
	}
	return apiOptions{addr: addr, plan: plan}, nil
}

// apiServer is the jobs API, serving.
type apiServer struct {
	api    *api.Server
	http   *api.HTTPServer
	client interface{ Close() error }
	pub    *transport.Publisher
}

// startAPI connects to the cluster (retrying with backoff for its connect
// timeout), creates the pipelines' topics that do not exist, and serves
// the API on o.addr.
func startAPI(ctx context.Context, o apiOptions, cl kafkaops.Cluster, reg prometheus.Registerer, log *slog.Logger) (*apiServer, error) {
	client, err := cl.Connect(ctx)
	if err != nil {
		return nil, err
	}
	a := &apiServer{client: client}
	fail := func(err error) (*apiServer, error) {
		a.close()
		return nil, err
	}
	if err := kafkaops.EnsureTopics(client, o.plan.Topics(), o.plan.ReplicationFactor, log); err != nil {
		return fail(err)
	}
	pcfg, err := api.ProducerConfig(o.plan)
	if err != nil {
		return fail(fmt.Errorf("API producer config: %w", err))
	}
	if a.pub, err = transport.NewPublisher(cl.Brokers, pcfg); err != nil {
		return fail(err)
	}
	if a.api, err = api.New(api.Config{Plan: o.plan, Client: client, Brokers: cl.Brokers, Publisher: a.pub, Registerer: reg, Log: log}); err != nil {
		return fail(err)
	}
	if a.http, err = api.Listen(o.addr, a.api.Handler(), o.plan.API, log); err != nil {
		if errors.Is(err, api.ErrNeedsToken) {
			return fail(usagef("%v", err))
		}
		return fail(err)
	}
	log.Info("API listening", "addr", a.http.Addr(), "endpoints",
		"/v1/pipelines /v1/pipelines/{pipeline}/jobs /v1/pipelines/{pipeline}/jobs:batch /v1/jobs/{id} /v1/pipelines/{pipeline}/jobs/{id}",
		"tokens", len(o.plan.API.Tokens))
	return a, nil
}

// stop ends the long-polls, answers the requests in progress (for up to
// timeout), then flushes the producer and closes the connections.
func (a *apiServer) stop(timeout time.Duration, log *slog.Logger) {
	a.api.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.http.Shutdown(ctx); err != nil {
		log.Warn("API requests still in progress were cut off", "err", err)
	}
	a.close()
	log.Info("API stopped")
}

func (a *apiServer) close() {
	if a.api != nil {
		a.api.Close()
	}
	if a.pub != nil {
		_ = a.pub.Close()
	}
	_ = a.client.Close()
}
