package validation

import (
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	supportedRestartPolicies       = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	supportedDNSPolicies           = []corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}
	supportedPullPolicies          = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}
	supportedTerminationMsgPolicy  = []corev1.TerminationMessagePolicy{corev1.TerminationMessageFallbackToLogsOnError, corev1.TerminationMessageReadFile}
	supportedTolerationOperators   = []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}
	supportedTaintEffects          = []corev1.TaintEffect{corev1.TaintEffectNoExecute, corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule}
	podUpdateForbiddenFieldsDetail = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)

// ValidatePod validates a Pod on create.
func ValidatePod(pod *corev1.Pod) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&pod.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(errs, ValidatePodSpec(&pod.Spec, true, field.NewPath("spec"))...)
}

// ValidatePodTemplateSpec validates a workload's pod template. Templates may
// leave the image empty (something may fill it in before pods are made).
func ValidatePodTemplateSpec(t *corev1.PodTemplateSpec, fldPath *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabels(t.Labels, fldPath.Child("labels"))
	errs = append(errs, apimachineryvalidation.ValidateAnnotations(t.Annotations, fldPath.Child("annotations"))...)
	errs = append(errs, ValidatePodSpec(&t.Spec, false, fldPath.Child("spec"))...)
	if len(t.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(fldPath.Child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return errs
}

// ValidatePodSpec validates the parts of a pod spec every server-side
// consumer relies on. isPod is false for templates.
func ValidatePodSpec(spec *corev1.PodSpec, isPod bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	volNames := sets.New[string]()
	for i, v := range spec.Volumes {
		vPath := fldPath.Child("volumes").Index(i)
		if v.Name == "" {
			errs = append(errs, field.Required(vPath.Child("name"), ""))
		} else {
			errs = append(errs, validateDNS1123Label(v.Name, vPath.Child("name"))...)
			if volNames.Has(v.Name) {
				errs = append(errs, field.Duplicate(vPath.Child("name"), v.Name))
			}
			volNames.Insert(v.Name)
		}
		if n := countVolumeSources(&v.VolumeSource); n == 0 {
			errs = append(errs, field.Required(vPath, "must specify a volume type"))
		} else if n > 1 {
			errs = append(errs, field.Forbidden(vPath, "may not specify more than 1 volume type"))
		}
	}

	names := sets.New[string]()
	portNames := sets.New[string]()
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(fldPath.Child("containers"), ""))
	}
	for i := range spec.InitContainers {
		errs = append(errs, validateContainer(&spec.InitContainers[i], isPod, names, portNames, volNames, fldPath.Child("initContainers").Index(i))...)
	}
	for i := range spec.Containers {
		errs = append(errs, validateContainer(&spec.Containers[i], isPod, names, portNames, volNames, fldPath.Child("containers").Index(i))...)
	}

	if spec.RestartPolicy == "" {
		errs = append(errs, field.Required(fldPath.Child("restartPolicy"), ""))
	} else if !contains(supportedRestartPolicies, spec.RestartPolicy) {
		errs = append(errs, field.NotSupported(fldPath.Child("restartPolicy"), spec.RestartPolicy, supportedRestartPolicies))
	}
	if spec.DNSPolicy == "" {
		errs = append(errs, field.Required(fldPath.Child("dnsPolicy"), ""))
	} else if !contains(supportedDNSPolicies, spec.DNSPolicy) {
		errs = append(errs, field.NotSupported(fldPath.Child("dnsPolicy"), spec.DNSPolicy, supportedDNSPolicies))
	}
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, fldPath.Child("nodeSelector"))...)
	if spec.ServiceAccountName != "" {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(spec.ServiceAccountName, false) {
			errs = append(errs, field.Invalid(fldPath.Child("serviceAccountName"), spec.ServiceAccountName, msg))
		}
	}
	if spec.NodeName != "" {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(spec.NodeName, false) {
			errs = append(errs, field.Invalid(fldPath.Child("nodeName"), spec.NodeName, msg))
		}
	}
	if spec.ActiveDeadlineSeconds != nil {
		if v := *spec.ActiveDeadlineSeconds; v < 1 || v > math.MaxInt32 {
			errs = append(errs, field.Invalid(fldPath.Child("activeDeadlineSeconds"), v, utilvalidation.InclusiveRangeError(1, math.MaxInt32)))
		}
	}
	if spec.Hostname != "" {
		errs = append(errs, validateDNS1123Label(spec.Hostname, fldPath.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, validateDNS1123Label(spec.Subdomain, fldPath.Child("subdomain"))...)
	}
	errs = append(errs, validateTolerations(spec.Tolerations, fldPath.Child("tolerations"))...)
	return errs
}

func validateContainer(c *corev1.Container, isPod bool, names, portNames, volNames sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(fldPath.Child("name"), ""))
	} else {
		errs = append(errs, validateDNS1123Label(c.Name, fldPath.Child("name"))...)
		if names.Has(c.Name) {
			errs = append(errs, field.Duplicate(fldPath.Child("name"), c.Name))
		}
		names.Insert(c.Name)
	}
	if isPod && c.Image == "" {
		errs = append(errs, field.Required(fldPath.Child("image"), ""))
	}
	if c.ImagePullPolicy == "" {
		errs = append(errs, field.Required(fldPath.Child("imagePullPolicy"), ""))
	} else if !contains(supportedPullPolicies, c.ImagePullPolicy) {
		errs = append(errs, field.NotSupported(fldPath.Child("imagePullPolicy"), c.ImagePullPolicy, supportedPullPolicies))
	}
	if c.TerminationMessagePolicy == "" {
		errs = append(errs, field.Required(fldPath.Child("terminationMessagePolicy"), ""))
	} else if !contains(supportedTerminationMsgPolicy, c.TerminationMessagePolicy) {
		errs = append(errs, field.NotSupported(fldPath.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, supportedTerminationMsgPolicy))
	}
	for i, p := range c.Ports {
		pPath := fldPath.Child("ports").Index(i)
		if p.Name != "" {
			for _, msg := range utilvalidation.IsValidPortName(p.Name) {
				errs = append(errs, field.Invalid(pPath.Child("name"), p.Name, msg))
			}
			if portNames.Has(p.Name) {
				errs = append(errs, field.Duplicate(pPath.Child("name"), p.Name))
			}
			portNames.Insert(p.Name)
		}
		if p.ContainerPort == 0 {
			errs = append(errs, field.Required(pPath.Child("containerPort"), ""))
		} else {
			errs = append(errs, validatePortNum(p.ContainerPort, pPath.Child("containerPort"))...)
		}
		if p.HostPort != 0 {
			errs = append(errs, validatePortNum(p.HostPort, pPath.Child("hostPort"))...)
		}
		errs = append(errs, validateProtocol(p.Protocol, pPath.Child("protocol"))...)
	}
	for i, e := range c.Env {
		ePath := fldPath.Child("env").Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(ePath.Child("name"), ""))
		}
		if e.Value != "" && e.ValueFrom != nil {
			errs = append(errs, field.Invalid(ePath.Child("valueFrom"), "", "may not be specified when `value` is not empty"))
		}
	}
	for i, m := range c.VolumeMounts {
		mPath := fldPath.Child("volumeMounts").Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mPath.Child("name"), ""))
		} else if !volNames.Has(m.Name) {
			errs = append(errs, field.NotFound(mPath.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(mPath.Child("mountPath"), ""))
		}
	}
	errs = append(errs, validateProbe(c.LivenessProbe, fldPath.Child("livenessProbe"))...)
	errs = append(errs, validateProbe(c.ReadinessProbe, fldPath.Child("readinessProbe"))...)
	errs = append(errs, validateProbe(c.StartupProbe, fldPath.Child("startupProbe"))...)
	return errs
}

func validateProbe(p *corev1.Probe, fldPath *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	if p.Exec != nil {
		n++
	}
	if p.HTTPGet != nil {
		n++
		errs = append(errs, validatePortNumOrName(p.HTTPGet.Port, fldPath.Child("httpGet", "port"))...)
		if s := p.HTTPGet.Scheme; s != corev1.URISchemeHTTP && s != corev1.URISchemeHTTPS {
			errs = append(errs, field.NotSupported(fldPath.Child("httpGet", "scheme"), s, []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}))
		}
	}
	if p.TCPSocket != nil {
		n++
		errs = append(errs, validatePortNumOrName(p.TCPSocket.Port, fldPath.Child("tcpSocket", "port"))...)
	}
	if p.GRPC != nil {
		n++
		errs = append(errs, validatePortNum(p.GRPC.Port, fldPath.Child("grpc", "port"))...)
	}
	if n == 0 {
		errs = append(errs, field.Required(fldPath, "must specify a handler type"))
	} else if n > 1 {
		errs = append(errs, field.Forbidden(fldPath, "may not specify more than 1 handler type"))
	}
	errs = append(errs, validateNonnegative(int64(p.InitialDelaySeconds), fldPath.Child("initialDelaySeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.TimeoutSeconds), fldPath.Child("timeoutSeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.PeriodSeconds), fldPath.Child("periodSeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.SuccessThreshold), fldPath.Child("successThreshold"))...)
	errs = append(errs, validateNonnegative(int64(p.FailureThreshold), fldPath.Child("failureThreshold"))...)
	return errs
}

func validateTolerations(tols []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tols {
		tPath := fldPath.Index(i)
		if t.Key != "" {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, tPath.Child("key"))...)
		}
		if t.Key == "" && t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(tPath.Child("operator"), t.Operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(tPath.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			errs = append(errs, validateLabelValue(t.Value, tPath.Child("value"))...)
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(tPath.Child("operator"), t.Value, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(tPath.Child("operator"), t.Operator, supportedTolerationOperators))
		}
		if t.Effect != "" && !contains(supportedTaintEffects, t.Effect) {
			errs = append(errs, field.NotSupported(tPath.Child("effect"), t.Effect, supportedTaintEffects))
		}
	}
	return errs
}

// ValidatePodUpdate allows only the spec changes upstream allows: container
// images, a shorter (or first) activeDeadlineSeconds, added tolerations, and
// a negative grace period fixed to 1.
func ValidatePodUpdate(newPod, oldPod *corev1.Pod) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newPod.ObjectMeta, &oldPod.ObjectMeta, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	errs = append(errs, ValidatePodSpec(&newPod.Spec, true, specPath)...)

	if o, n := oldPod.Spec.ActiveDeadlineSeconds, newPod.Spec.ActiveDeadlineSeconds; o != nil && (n == nil || *n > *o) {
		errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), n, "must be less than or equal to previous value"))
	}
	for i, t := range oldPod.Spec.Tolerations {
		if !tolerationPresent(newPod.Spec.Tolerations, t) {
			errs = append(errs, field.Forbidden(specPath.Child("tolerations"), fmt.Sprintf("existing toleration can not be modified except its tolerationSeconds: tolerations[%d]", i)))
			break
		}
	}

	// Compare with every mutable field copied over from the new spec.
	masked := *oldPod.Spec.DeepCopy()
	if len(masked.Containers) == len(newPod.Spec.Containers) {
		for i := range masked.Containers {
			masked.Containers[i].Image = newPod.Spec.Containers[i].Image
		}
	}
	if len(masked.InitContainers) == len(newPod.Spec.InitContainers) {
		for i := range masked.InitContainers {
			masked.InitContainers[i].Image = newPod.Spec.InitContainers[i].Image
		}
	}
	masked.ActiveDeadlineSeconds = newPod.Spec.ActiveDeadlineSeconds
	masked.Tolerations = newPod.Spec.Tolerations
	if g := oldPod.Spec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		if n := newPod.Spec.TerminationGracePeriodSeconds; n != nil && *n == 1 {
			masked.TerminationGracePeriodSeconds = n
		}
	}
	// Scheduling gates may only be removed; the scheduler needs that.
	if len(newPod.Spec.SchedulingGates) <= len(masked.SchedulingGates) {
		masked.SchedulingGates = newPod.Spec.SchedulingGates
	}
	// The scheduler binds by setting nodeName once.
	if oldPod.Spec.NodeName == "" {
		masked.NodeName = newPod.Spec.NodeName
	}
	if !apiequality.Semantic.DeepEqual(masked, newPod.Spec) {
		errs = append(errs, field.Forbidden(specPath, podUpdateForbiddenFieldsDetail))
	}
	return errs
}

func tolerationPresent(tols []corev1.Toleration, want corev1.Toleration) bool {
	for _, t := range tols {
		// tolerationSeconds may be changed on an existing toleration.
		if t.Key == want.Key && t.Operator == want.Operator && t.Value == want.Value && t.Effect == want.Effect {
			return true
		}
	}
	return false
}

func countVolumeSources(s *corev1.VolumeSource) int {
	n := 0
	for _, set := range []bool{
		s.HostPath != nil, s.EmptyDir != nil, s.GCEPersistentDisk != nil, s.AWSElasticBlockStore != nil,
		s.GitRepo != nil, s.Secret != nil, s.NFS != nil, s.ISCSI != nil, s.Glusterfs != nil,
		s.PersistentVolumeClaim != nil, s.RBD != nil, s.FlexVolume != nil, s.Cinder != nil, s.CephFS != nil,
		s.Flocker != nil, s.DownwardAPI != nil, s.FC != nil, s.AzureFile != nil, s.ConfigMap != nil,
		s.VsphereVolume != nil, s.Quobyte != nil, s.AzureDisk != nil, s.PhotonPersistentDisk != nil,
		s.Projected != nil, s.PortworxVolume != nil, s.ScaleIO != nil, s.StorageOS != nil, s.CSI != nil,
		s.Ephemeral != nil, s.Image != nil,
	} {
		if set {
			n++
		}
	}
	return n
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
