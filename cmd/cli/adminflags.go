package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/internal/admin"
	"github.com/millrace/millrace/pipeline"
)

// adminFlags are the admin server's flags of `run` and `broker`.
type adminFlags struct{ addr, token string }

func (a *adminFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.addr, "admin-addr", "",
		"where to serve /healthz, /readyz and /metrics, host:port, or off (default: admin.addr of the file, else "+admin.DefaultAddr+")")
	cmd.Flags().StringVar(&a.token, "admin-token", "",
		"bearer token /metrics needs (default: $MILLRACE_ADMIN_TOKEN, then admin.token of the file); needed for an address other hosts can reach")
}

// adminTokenEnv is the environment variable the admin token is read
// from when --admin-token is not given: a token in a flag shows in the
// process list (and a Kubernetes pod spec), one in the environment does not.
const adminTokenEnv = "MILLRACE_ADMIN_TOKEN"

// adminOptions say where and how to serve the admin endpoints; addr ""
// means off.
type adminOptions struct {
	addr, token string
	// fallback: the address is the default one, so if it is taken (by
	// another millrace process on this machine) a free port is used.
	fallback bool
}

// options resolves the flags with the file's admin block (plan may be
// nil): flags first, then the file, then the default. An address other
// hosts can reach without a token is bad usage from --admin-addr, and a
// failure (exit 1) from the file's admin.addr, named at its file:line:col.
// Validation cannot refuse the latter: the token may come from
// $MILLRACE_ADMIN_TOKEN, set where the command runs (a pod's Secret) and
// not where the file is validated.
func (a *adminFlags) options(plan *pipeline.Plan) (adminOptions, error) {
	o := adminOptions{addr: a.addr, token: a.token}
	if o.token == "" {
		o.token = os.Getenv(adminTokenEnv)
	}
	fromFile := ""
	if plan != nil {
		if o.addr == "" && plan.AdminAddr != "" {
			o.addr, fromFile = plan.AdminAddr, cmp.Or(plan.AdminAddrAt, "the pipelines file")
		}
		if o.token == "" {
			o.token = plan.AdminToken
		}
	}
	if o.addr == "" {
		o.addr, o.fallback = admin.DefaultAddr, true
	}
	if o.addr == admin.Off {
		return adminOptions{}, nil
	}
	loop, err := admin.Loopback(o.addr)
	switch {
	case err != nil && fromFile != "":
		return adminOptions{}, fmt.Errorf("%s: admin addr %s: %v", fromFile, o.addr, err)
	case err != nil:
		return adminOptions{}, usagef("--admin-addr: %v", err)
	case !loop && o.token == "" && fromFile != "":
		return adminOptions{}, fmt.Errorf("%s: admin addr %s: %v", fromFile, o.addr, admin.ErrNeedsToken)
	case !loop && o.token == "":
		return adminOptions{}, usagef("--admin-addr %s: %v", o.addr, admin.ErrNeedsToken)
	}
	return o, nil
}

// serveAdmin starts the admin server (nil when it is off). If the default
// address is taken, it serves on a free loopback port instead, and says so.
func serveAdmin(o adminOptions, g *globals, reg prometheus.Gatherer, ready func() (bool, []string)) (*admin.Server, error) {
	if o.addr == "" {
		return nil, nil
	}
	cfg := admin.Config{Addr: o.addr, Token: o.token, Gatherer: reg, Ready: ready, Logger: g.log}
	srv, err := admin.Start(cfg)
	if err != nil && o.fallback && errors.Is(err, syscall.EADDRINUSE) {
		g.log.Warn("the admin address is taken (another millrace on this machine?); serving on a free port instead",
			"addr", o.addr)
		cfg.Addr = "127.0.0.1:0"
		srv, err = admin.Start(cfg)
	}
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, errors.New(err.Error() + " (pick another address with --admin-addr, or --admin-addr off)")
		}
		return nil, err
	}
	g.log.Info("admin server listening", "addr", srv.Addr(), "endpoints", "/healthz /readyz /metrics", "token", o.token != "")
	return srv, nil
}

// closeAdmin stops the admin server, if any, giving requests a moment.
func closeAdmin(srv *admin.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Close(ctx)
}
