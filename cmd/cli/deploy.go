package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/deploy"
	"github.com/millrace/millrace/pipeline"
)

func newDeployCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the pipelines on Kubernetes",
		Long: `Deploy the pipelines on Kubernetes.

  deploy render   render the Kubernetes objects that run the pipelines file:
                  a Deployment per stage, autoscaled by KEDA on its consumer lag`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("deploy needs a subcommand: render")
		},
	}
	cmd.AddCommand(newDeployRenderCmd(g))
	return cmd
}

const deployRenderHelp = `Render the Kubernetes objects that run the pipelines file, as plain YAML for
kubectl and kustomize, one file per kind of object:

  configmap.yaml             ConfigMap millrace-pipelines: the pipelines file as it is
  deployments.yaml           per stage a Deployment millrace-<pipeline>-<stage> running
                             'millrace run --stage P/S --no-schedules'; with schedules,
                             millrace-scheduler ('millrace scheduler', 2 replicas: one
                             leads, one stands by); with an api block, millrace-api
                             ('millrace serve', 2 replicas)
  scaledobjects.yaml         per stage a KEDA ScaledObject: KEDA's Kafka scaler on the
                             stage's consumer group millrace.<pipeline>.<stage> and its
                             input topics, with the stage's scale: {min, max, lag}
  poddisruptionbudgets.yaml  per Deployment: a drain takes one pod at a time
  services.yaml              with an api block: Service millrace-api, port 8080
  kustomization.yaml         lists them, with --namespace as its namespace

Every pod mounts the ConfigMap at /etc/millrace, gets the brokers in
$MILLRACE_BROKERS, and serves /healthz, /readyz (its probes) and /metrics on
0.0.0.0:9464, with Prometheus scrape annotations. Stage pods join their group
as static members named after the pod ($MILLRACE_INSTANCE_ID), and get the
stage's resources: from the file. Containers run as a non-root user on a
read-only root filesystem (with a writable /tmp); the image's entrypoint must
be the millrace binary (or your own, built on cmd/cli).

The brokers are --brokers, else $MILLRACE_BROKERS (render then says so on
stderr: they go into the objects), else the file's broker.brokers, resolved
now, in this environment: pods cannot use the embedded broker. The render
holds no secret: the pods take their environment from the
Secret 'millrace', which you create, holding MILLRACE_ADMIN_TOKEN (an admin
address other hosts can reach needs a token; /metrics then wants it, so a
Prometheus scraping the pods must send it) and every variable the file reads
as ${NAME}. KEDA must be installed in the cluster for the ScaledObjects.

With --out DIR it writes the files there, and removes the files of an earlier
render that this one no longer makes; without, it prints every object as one
YAML stream, for kubectl apply -f -. Then:

  kubectl create namespace millrace
  kubectl -n millrace create secret generic millrace \
    --from-literal=MILLRACE_ADMIN_TOKEN="$(openssl rand -hex 32)"
  kubectl apply -k DIR

Exit codes: 0 rendered; 1 the file has problems, or cannot run in pods (an
api block without tokens, say); 2 bad usage.`

// deployRenderOptions are what deploy render renders, and where to.
type deployRenderOptions struct {
	file   *pipeline.File
	source []byte
	opts   deploy.Options
	out    string // "" prints to stdout
	// brokersEnv: the brokers are $MILLRACE_BROKERS's, which render
	// notes, so that a variable left in the shell does not go into the
	// objects unseen.
	brokersEnv bool
}

func newDeployRenderCmd(g *globals) *cobra.Command {
	var o deployRenderOptions
	cmd := &cobra.Command{
		Use:   "render --image IMAGE [--namespace NS] [--out DIR] [--brokers LIST] [--stop-timeout 30s]",
		Short: "Render the Kubernetes objects that run the pipelines: a Deployment and a KEDA ScaledObject per stage",
		Long:  deployRenderHelp,
		Example: `  millrace deploy render --image ghcr.io/millrace/millrace:1.0 --brokers kafka-0.kafka:9092,kafka-1.kafka:9092 --namespace millrace --out deploy/k8s
  millrace deploy render -f pipelines.yaml --image registry.example.com/jobs/millrace:1.0 --brokers kafka:9092 --stop-timeout 1m`,
		Args: noArgs,
	}
	require(cmd, "image")
	parse := func([]string) (deployRenderOptions, error) {
		if o.opts.StopTimeout <= 0 {
			return o, usagef("--stop-timeout %s: want more than 0", o.opts.StopTimeout)
		}
		o.opts.Brokers = g.brokers
		o.brokersEnv = false
		if len(o.opts.Brokers) == 0 && os.Getenv("MILLRACE_BROKERS") != "" {
			o.opts.Brokers = strings.Split(os.Getenv("MILLRACE_BROKERS"), ",")
			o.brokersEnv = true
		}
		var oe *deploy.OptionError
		if err := o.opts.Validate(); errors.As(err, &oe) {
			if oe.Option == "brokers" && o.brokersEnv {
				return o, usagef("$MILLRACE_BROKERS %q: %s", oe.Value, oe.Reason)
			}
			return o, usagef("--%s %q: %s", oe.Option, oe.Value, oe.Reason)
		} else if err != nil {
			return o, usagef("%v", err)
		}
		var err error
		if o.file, o.source, err = g.loadSource(); err != nil {
			return o, err
		}
		if len(o.file.LiteralSecrets) > 0 {
			// A problem of the file, not of the command line: exit 1.
			return o, fmt.Errorf("%s: %s written in the file would be in the ConfigMap for anyone who may read it: "+
				"read it from the environment (${NAME}) and put NAME in the Secret %s", g.file,
				strings.Join(o.file.LiteralSecrets, ", "), deploy.SecretName)
		}
		if len(o.opts.Brokers) == 0 && len(o.file.Plan().Brokers) == 0 {
			return o, usagef("--brokers is required: neither $MILLRACE_BROKERS nor %s (broker.brokers) names brokers, and pods cannot use the embedded broker",
				g.file)
		}
		return o, nil
	}
	do := func(_ context.Context, o deployRenderOptions) error {
		m, err := deploy.Render(o.file, o.source, o.opts)
		if err != nil {
			return err
		}
		if o.brokersEnv {
			instead := ""
			if len(o.file.Plan().Brokers) > 0 {
				instead = ", in place of the file's broker.brokers"
			}
			fmt.Fprintf(g.stderr, "note: the brokers are $MILLRACE_BROKERS's, %s, and the objects hold them%s "+
				"(--brokers picks others)\n", strings.Join(o.opts.Brokers, ","), instead)
		}
		if exec := execStages(o.file.Plan()); len(exec) > 0 {
			fmt.Fprintf(g.stderr, "note: %s %s run programs (filter exec): the image must hold them and what runs them "+
				"(distroless/static has no shell), or every pod of this file fails to start, as each validates every stage\n",
				plural(len(exec), "stage"), strings.Join(exec, ", "))
		}
		if len(o.file.SecretEnv) > 0 {
			fmt.Fprintf(g.stderr, "note: the pods read the file's secrets from the Secret %s, which must hold %s\n",
				deploy.SecretName, strings.Join(o.file.SecretEnv, ", "))
		}
		if sec := o.file.Plan().Security; sec.Protocol() != "PLAINTEXT" {
			fmt.Fprintf(g.stderr, "note: broker %s: a tls ca_file, cert_file or key_file must be in the image or mounted at its path; "+
				"and KEDA's Kafka scaler needs the credentials too: add a TriggerAuthentication and an authenticationRef to each "+
				"ScaledObject (not rendered yet; README: Security)\n", sec.Protocol())
		}
		for _, id := range slowStages(o.file.Plan(), o.opts.StopTimeout) {
			fmt.Fprintf(g.stderr, "note: stage %s may run a record longer than --stop-timeout %s: a rollout or scale-down "+
				"stops it and the record runs again (raise --stop-timeout)\n", id, pipeline.FormatDuration(o.opts.StopTimeout))
		}
		if o.out == "" {
			_, err := g.stdout.Write(m.YAML())
			return err
		}
		return writeRender(g, o.out, m.Files())
	}
	command(g, cmd, parse, do)
	fl := cmd.Flags()
	fl.StringVar(&o.opts.Image, "image", "", "the container image the pods run, like ghcr.io/millrace/millrace:1.0 (required)")
	fl.StringVar(&o.opts.Namespace, "namespace", "", "the namespace of the objects and of the kustomization (default: none, kubectl's)")
	fl.StringVar(&o.out, "out", "", "write the files into this directory (default: print every object to stdout)")
	fl.DurationVar(&o.opts.StopTimeout, "stop-timeout", deploy.DefaultStopTimeout,
		"the processes' --stop-timeout; terminationGracePeriodSeconds is 15s more")
	return cmd
}

// loadSource reads the pipelines file once and validates those bytes,
// printing every problem as load does: the ConfigMap must hold the file
// that was checked.
func (g *globals) loadSource() (*pipeline.File, []byte, error) {
	data, err := os.ReadFile(g.file)
	if err != nil {
		return nil, nil, fileHint(fmt.Errorf("read pipelines file: %w", err))
	}
	f, err := pipeline.Parse(g.file, data, os.LookupEnv)
	var ps pipeline.Problems
	if errors.As(err, &ps) && len(ps) > 0 {
		fmt.Fprintln(g.stderr, ps.Error())
		fmt.Fprintf(g.stderr, "%s: %d %s\n", g.file, len(ps), plural(len(ps), "problem"))
		return nil, nil, errPrinted
	}
	if err == nil && len(f.Warnings) > 0 {
		fmt.Fprintln(g.stderr, f.Warnings.Error())
	}
	return f, data, err
}

// writeRender writes files into dir, and removes the files an earlier
// render wrote there that this one does not make (services.yaml of a file
// that had an api block, say), so that kubectl apply -f DIR applies what
// this render made.
func writeRender(g *globals, dir string, files []deploy.File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	made := map[string]bool{}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
		made[f.Name] = true
		fmt.Fprintf(g.stdout, "wrote %s\n", p)
	}
	for _, name := range deploy.FileNames() {
		p := filepath.Join(dir, name)
		if made[name] {
			continue
		}
		if data, err := os.ReadFile(p); err == nil && bytes.HasPrefix(data, []byte(deploy.Header)) {
			if err := os.Remove(p); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %s: this render makes no such objects\n", p)
		}
	}
	fmt.Fprintf(g.stdout, "apply with: kubectl apply -k %s (the pods need the Secret %s first: see deploy render --help)\n", dir, deploy.SecretName)
	return nil
}

// execStages are the ids of plan's stages that run programs (filter exec).
func execStages(plan *pipeline.Plan) []string {
	stages, _ := plan.Stages()
	var ids []string
	for _, sp := range stages {
		if sp.Filter.Name == "exec" {
			ids = append(ids, sp.ID())
		}
	}
	return ids
}

// slowStages are the ids of plan's stages whose timeout (one record's
// bound), set in the file, is longer than the processes' stop timeout (the
// default timeout, 60 s, is a bound few records come near).
func slowStages(plan *pipeline.Plan, stop time.Duration) []string {
	if stop <= 0 {
		stop = deploy.DefaultStopTimeout
	}
	stages, _ := plan.Stages()
	var ids []string
	for _, sp := range stages {
		if sp.Timeout > stop && sp.Timeout != pipeline.DefaultTimeout {
			ids = append(ids, sp.ID())
		}
	}
	return ids
}
