package deploy

import (
	"fmt"
	"path"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/millrace/millrace/pipeline"
)

// Addresses the rendered processes serve on, in the pod.
var (
	adminAddr = "0.0.0.0:" + strconv.Itoa(AdminPort)
	apiAddr   = "0.0.0.0:" + strconv.Itoa(APIPort)
)

// Pod settings every rendered pod shares.
const (
	// runAsUser is the non-root user the containers run as (distroless's
	// nonroot), whatever the image's USER.
	runAsUser = 65532
	// graceMargin is how much longer than the stop timeout Kubernetes
	// waits before it kills a stopping pod.
	graceMargin = 15 * time.Second
	// schedulerReplicas and apiReplicas: one to lead (or serve) and one
	// standing by.
	schedulerReplicas = 2
	apiReplicas       = 2
)

// renderer holds what every object of one render needs.
type renderer struct {
	opts       Options
	brokers    string            // comma-separated
	configHash string            // hex SHA-256 of the pipelines file
	names      map[string]string // stage id → object name
	// secretOptional: the file has its own admin token, so the pods start
	// without the Secret; otherwise they need its MILLRACE_ADMIN_TOKEN,
	// and a missing Secret shows as such ("secret not found") rather than
	// as a process exiting for want of a token.
	secretOptional bool
}

func (r *renderer) meta(name string, l map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: r.opts.Namespace, Labels: l}
}

func (r *renderer) configMap(source []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: r.meta(ConfigMapName, map[string]string{LabelName: "millrace"}),
		Data:       map[string]string{ConfigKey: string(source)},
	}
}

// stageDeployment runs one stage. It sets no replicas: its ScaledObject's
// HPA owns them, and a replicas field would set them back at every
// kubectl apply.
func (r *renderer) stageDeployment(s pipeline.StagePlan) (*appsv1.Deployment, error) {
	res, err := resources(s.Resources)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", s.ID(), err)
	}
	c := r.container([]string{"run", "-f", configPath(), "--stage", s.ID(), "--no-schedules",
		"--admin-addr", adminAddr, "--stop-timeout", r.opts.StopTimeout.String()})
	c.Resources = res
	c.Env = append(c.Env, corev1.EnvVar{Name: InstanceIDEnv,
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}})
	return r.deployment(r.names[s.ID()], stageLabels(s), nil, c), nil
}

func (r *renderer) schedulerDeployment() *appsv1.Deployment {
	c := r.container([]string{"scheduler", "-f", configPath(), "--admin-addr", adminAddr})
	n := int32(schedulerReplicas)
	return r.deployment(SchedulerName, labels(ComponentScheduler), &n, c)
}

func (r *renderer) apiDeployment() *appsv1.Deployment {
	c := r.container([]string{"serve", "-f", configPath(), "--addr", apiAddr, "--admin-addr", adminAddr,
		"--stop-timeout", r.opts.StopTimeout.String()})
	c.Ports = append([]corev1.ContainerPort{{Name: APIPortName, ContainerPort: APIPort, Protocol: corev1.ProtocolTCP}}, c.Ports...)
	n := int32(apiReplicas)
	return r.deployment(APIName, labels(ComponentAPI), &n, c)
}

func (r *renderer) apiService() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: r.meta(APIName, labels(ComponentAPI)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: labels(ComponentAPI),
			Ports: []corev1.ServicePort{{Name: APIPortName, Port: APIPort, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromString(APIPortName)}},
		},
	}
}

// disruptionBudget lets a voluntary disruption (a node drain) take one
// pod of a Deployment at a time.
func (r *renderer) disruptionBudget(name string, l map[string]string) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: r.meta(name, l),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: l},
		},
	}
}

func configPath() string { return path.Join(ConfigDir, ConfigKey) }

// container is the millrace container running the binary with args: the
// pipelines file mounted, the brokers and the Secret in its environment,
// the admin port with its probes, locked down.
func (r *renderer) container(args []string) corev1.Container {
	admin := intstr.FromString(AdminPortName)
	probe := func(path string, period, timeout, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: admin}},
			PeriodSeconds: period, TimeoutSeconds: timeout, FailureThreshold: failures,
		}
	}
	optional := r.secretOptional
	return corev1.Container{
		Name:  ContainerName,
		Image: r.opts.Image,
		Args:  args,
		Env:   []corev1.EnvVar{{Name: BrokersEnv, Value: r.brokers}},
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: SecretName}, Optional: &optional}}},
		Ports: []corev1.ContainerPort{{Name: AdminPortName, ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP}},
		// Liveness waits for the first answer (up to a minute), then
		// restarts a process that has not answered for a minute.
		StartupProbe:   probe("/healthz", 2, 2, 30),
		LivenessProbe:  probe("/healthz", 10, 5, 6),
		ReadinessProbe: probe("/readyz", 5, 2, 3),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "pipelines", MountPath: ConfigDir, ReadOnly: true},
			{Name: "tmp", MountPath: "/tmp"},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			RunAsNonRoot:             ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// deployment runs c in pods labelled l; replicas nil leaves them to
// Kubernetes (1) and the autoscaler.
func (r *renderer) deployment(name string, l map[string]string, replicas *int32, c corev1.Container) *appsv1.Deployment {
	grace := int64((r.opts.StopTimeout + graceMargin + time.Second - 1) / time.Second)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: r.meta(name, l),
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: l,
					Annotations: map[string]string{
						// /metrics wants the admin token: a scrape config
						// that reads these annotations must send it.
						"prometheus.io/scrape": "true",
						"prometheus.io/port":   strconv.Itoa(AdminPort),
						"prometheus.io/path":   "/metrics",
						ConfigHashAnnotation:   r.configHash,
					},
				},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{c},
					TerminationGracePeriodSeconds: &grace,
					// The pods never call the Kubernetes API, and no
					// Service's variables should land in their environment
					// (MILLRACE_API_PORT and the like, for millrace-api).
					AutomountServiceAccountToken: ptr(false),
					EnableServiceLinks:           ptr(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						RunAsUser:      ptr(int64(runAsUser)),
						RunAsGroup:     ptr(int64(runAsUser)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Volumes: []corev1.Volume{
						{Name: "pipelines", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName}}}},
						// A writable /tmp for the programs of exec filters;
						// the root filesystem is read-only.
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
				},
			},
		},
	}
}

// resources turns a stage's resources block into the container's.
func resources(p pipeline.ResourcesPlan) (corev1.ResourceRequirements, error) {
	var req corev1.ResourceRequirements
	for _, q := range []struct {
		list  *corev1.ResourceList
		where string
		name  corev1.ResourceName
		value string
	}{
		{&req.Requests, "requests", corev1.ResourceCPU, p.RequestsCPU},
		{&req.Requests, "requests", corev1.ResourceMemory, p.RequestsMemory},
		{&req.Limits, "limits", corev1.ResourceCPU, p.LimitsCPU},
		{&req.Limits, "limits", corev1.ResourceMemory, p.LimitsMemory},
	} {
		if q.value == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.value)
		if err != nil { // not reached: validation checks the quantities
			return req, fmt.Errorf("resources.%s.%s %q: %w", q.where, q.name, q.value, err)
		}
		if *q.list == nil {
			*q.list = corev1.ResourceList{}
		}
		(*q.list)[q.name] = v
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		r, hasR := req.Requests[name]
		l, hasL := req.Limits[name]
		if hasR && hasL && r.Cmp(l) > 0 {
			return req, fmt.Errorf("resources.requests.%s %s is more than resources.limits.%s %s: Kubernetes refuses a request above its limit",
				name, r.String(), name, l.String())
		}
	}
	return req, nil
}

func ptr[T any](v T) *T { return &v }
