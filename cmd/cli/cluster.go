package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// clusterFlags are the flags of the commands that talk to a running
// cluster.
type clusterFlags struct {
	timeout time.Duration
	sec     securityFlags
}

func (c *clusterFlags) add(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&c.timeout, "connect-timeout", 10*time.Second, "how long to wait for the brokers (0: until they answer, or a signal)")
	c.sec.add(cmd)
}

// cluster says how to reach the brokers (see clientBrokers), with the
// client id of plan (if not nil) and the security of the flags, the
// environment and plan (see security), which it also sets in plan.
func (c *clusterFlags) cluster(g *globals, plan *pipeline.Plan) (kafkaops.Cluster, error) {
	if c.timeout < 0 {
		return kafkaops.Cluster{}, usagef("--connect-timeout %s: want 0 or more", c.timeout)
	}
	var file *transport.Security
	clientID := ""
	if plan != nil {
		clientID, file = plan.ClientID, plan.Security
	}
	sec, err := security(file, &c.sec)
	if err != nil {
		return kafkaops.Cluster{}, err
	}
	if plan != nil {
		plan.Security = sec // for the clients the command makes from the plan
	}
	if sec != nil && len(g.resolveBrokers(plan)) == 0 {
		return kafkaops.Cluster{}, usagef("TLS or SASL is set, but no brokers are: the embedded broker speaks PLAINTEXT only " +
			"(set --brokers, $MILLRACE_BROKERS or the file's broker.brokers)")
	}
	warnInsecure(g.log, sec, g.clientBrokers(plan))
	cl := kafkaops.Cluster{Brokers: g.clientBrokers(plan), ClientID: clientID, ConnectTimeout: c.timeout, Security: sec}
	return cl, nil
}
