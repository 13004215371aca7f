package admin

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry with the Go runtime's and the process's
// collectors (go_*, process_*) and millrace_build_info{version,goversion}
// (always 1), for a process's /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "millrace_build_info",
		Help: "Always 1; its labels say which millrace is running: its module version and the Go version it was built with."},
		[]string{"version", "goversion"})
	info.WithLabelValues(Version(), runtime.Version()).Set(1)
	reg.MustRegister(info)
	return reg
}

// Version is the module version of the running millrace, "(devel)" when
// built from a checkout.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
