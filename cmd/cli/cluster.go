package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
)

// clusterFlags are the flags of the commands that talk to a running
// cluster.
type clusterFlags struct{ timeout time.Duration }

func (c *clusterFlags) add(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&c.timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers (0: until they answer, or a signal)")
}

// cluster says how to reach the brokers (see clientBrokers), with the
// client id of plan (if not nil).
func (c *clusterFlags) cluster(g *globals, plan *pipeline.Plan) (kafkaops.Cluster, error) {
	if c.timeout < 0 {
		return kafkaops.Cluster{}, usagef("--connect-timeout %s: want 0 or more", c.timeout)
	}
	cl := kafkaops.Cluster{Brokers: g.clientBrokers(plan), ConnectTimeout: c.timeout}
	if plan != nil {
		cl.ClientID = plan.ClientID
	}
	return cl, nil
}
