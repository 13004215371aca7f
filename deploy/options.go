package deploy

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultStopTimeout is the stop timeout of the rendered processes when
// [Options] sets none: that of `millrace run`.
const DefaultStopTimeout = 30 * time.Second

// Options say how [Render] renders a pipelines file.
type Options struct {
	// Image is the container image the pods run: required. Its entrypoint
	// must be the millrace binary (or a binary of your own built on
	// cmd/cli), as the containers give only its arguments.
	Image string
	// Namespace, if set, is the namespace of every object and of the
	// kustomization; "" leaves it to kubectl or kustomize.
	Namespace string
	// Brokers are the Kafka brokers the pods and KEDA use, host:port;
	// nil: the file's broker.brokers. There must be some: pods cannot use
	// the embedded broker.
	Brokers []string
	// StopTimeout is the --stop-timeout of the rendered processes: how
	// long records in flight (requests, a fire) may take to finish on
	// SIGTERM. Their terminationGracePeriodSeconds is 15s more. 0 means
	// [DefaultStopTimeout].
	StopTimeout time.Duration
}

// OptionError is an option of [Options] that is wrong. Option is named
// the way `millrace deploy render` names its flag: image, namespace,
// brokers, stop-timeout.
type OptionError struct {
	Option string
	Value  string
	Reason string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Option, e.Value, e.Reason)
}

// Validate checks o: the image is an image reference, the namespace a
// DNS-1123 label, each broker a host:port other hosts can reach, the stop
// timeout not negative. Its error is an [*OptionError].
func (o Options) Validate() error {
	if o.Image == "" {
		return &OptionError{Option: "image", Reason: "the container image to run is required"}
	}
	if !imageReference.MatchString(o.Image) || len(o.Image) > maxImageReference {
		return &OptionError{Option: "image", Value: o.Image,
			Reason: "want an image reference, like ghcr.io/millrace/millrace:1.0 or registry:5000/team/app@sha256:…"}
	}
	if o.Namespace != "" {
		if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return &OptionError{Option: "namespace", Value: o.Namespace, Reason: "want a Kubernetes namespace name: " + errs[0]}
		}
	}
	if err := checkBrokers(o.Brokers); err != nil {
		return &OptionError{Option: "brokers", Value: err.broker, Reason: err.reason}
	}
	if o.StopTimeout < 0 {
		return &OptionError{Option: "stop-timeout", Value: o.StopTimeout.String(), Reason: "want 0 or more"}
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.StopTimeout == 0 {
		o.StopTimeout = DefaultStopTimeout
	}
}

// brokerError is a broker address the pods could not use.
type brokerError struct{ broker, reason string }

// checkBrokers checks that every broker is host:port with a port number
// and a host other than loopback: a pod's loopback is its own.
func checkBrokers(brokers []string) *brokerError {
	for _, b := range brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return &brokerError{b, "want host:port"}
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return &brokerError{b, "want host:port with a port from 1 to 65535"}
		}
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return &brokerError{b, "a loopback address: in a pod it is the pod itself; give brokers the pods can reach"}
		}
	}
	return nil
}

// imageReference is the grammar of a container image reference, as
// github.com/distribution/reference (Docker, containerd) reads one:
// [host[:port]/]path[:tag][@digest], the path in lower case.
var imageReference = func() *regexp.Regexp {
	const (
		alnum      = `[a-z0-9]+`
		separator  = `(?:[._]|__|[-]+)`
		component  = alnum + `(?:` + separator + alnum + `)*`
		domainPart = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		host       = `(?:` + domainPart + `(?:\.` + domainPart + `)*|\[[a-fA-F0-9:]+\])`
		domain     = host + `(?::[0-9]+)?`
		name       = `(?:` + domain + `/)?` + component + `(?:/` + component + `)*`
		tag        = `[\w][\w.-]{0,127}`
		digest     = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^` + name + `(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

// maxImageReference bounds an image reference (the name part is at most
// 255 characters; a tag and a sha512 digest add about 270).
const maxImageReference = 600
