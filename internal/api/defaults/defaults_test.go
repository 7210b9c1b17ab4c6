package defaults

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func svc(mutate func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
	mutate(s)
	return s
}

func TestServiceDefaults(t *testing.T) {
	cluster := ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
	single := ptr.To(corev1.IPFamilyPolicySingleStack)
	v4 := []corev1.IPFamily{corev1.IPv4Protocol}
	cases := []struct {
		name string
		in   *corev1.Service
		want corev1.ServiceSpec
	}{
		{"ClusterIP", svc(func(*corev1.Service) {}), corev1.ServiceSpec{
			Selector:              map[string]string{"app": "web"},
			Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
			Type:                  corev1.ServiceTypeClusterIP,
			SessionAffinity:       corev1.ServiceAffinityNone,
			InternalTrafficPolicy: cluster,
			IPFamilyPolicy:        single,
			IPFamilies:            v4,
		}},
		{"LoadBalancer with clusterIP", svc(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ClusterIP = "10.0.0.10"
			s.Spec.Ports[0].TargetPort = intstr.FromString("http")
		}), corev1.ServiceSpec{
			Selector:                      map[string]string{"app": "web"},
			Ports:                         []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
			Type:                          corev1.ServiceTypeLoadBalancer,
			ClusterIP:                     "10.0.0.10",
			ClusterIPs:                    []string{"10.0.0.10"},
			SessionAffinity:               corev1.ServiceAffinityNone,
			ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyCluster,
			InternalTrafficPolicy:         cluster,
			AllocateLoadBalancerNodePorts: ptr.To(true),
			IPFamilyPolicy:                single,
			IPFamilies:                    v4,
		}},
		{"NodePort ClientIP affinity", svc(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{}}
		}), corev1.ServiceSpec{
			Selector:              map[string]string{"app": "web"},
			Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
			Type:                  corev1.ServiceTypeNodePort,
			SessionAffinity:       corev1.ServiceAffinityClientIP,
			SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(10800))}},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			InternalTrafficPolicy: cluster,
			IPFamilyPolicy:        single,
			IPFamilies:            v4,
		}},
		{"ExternalName", svc(func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.Ports = nil
		}), corev1.ServiceSpec{
			Selector:        map[string]string{"app": "web"},
			Type:            corev1.ServiceTypeExternalName,
			ExternalName:    "db.example.com",
			SessionAffinity: corev1.ServiceAffinityNone,
		}},
		{"headless selectorless asks for dual stack", svc(func(s *corev1.Service) {
			s.Spec.ClusterIP = corev1.ClusterIPNone
			s.Spec.Selector = nil
			s.Spec.Ports = nil
		}), corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeClusterIP,
			ClusterIP:             "None",
			ClusterIPs:            []string{"None"},
			SessionAffinity:       corev1.ServiceAffinityNone,
			InternalTrafficPolicy: cluster,
			IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicyRequireDualStack),
			IPFamilies:            v4,
		}},
		{"ClusterIP with externalIPs gets externalTrafficPolicy", svc(func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{"192.0.2.1"}
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{} // dropped for None
		}), corev1.ServiceSpec{
			Selector:              map[string]string{"app": "web"},
			Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
			Type:                  corev1.ServiceTypeClusterIP,
			ExternalIPs:           []string{"192.0.2.1"},
			SessionAffinity:       corev1.ServiceAffinityNone,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			InternalTrafficPolicy: cluster,
			IPFamilyPolicy:        single,
			IPFamilies:            v4,
		}},
		{"IPv6 clusterIP infers family", svc(func(s *corev1.Service) { s.Spec.ClusterIP = "fd00::10" }), corev1.ServiceSpec{
			Selector:              map[string]string{"app": "web"},
			Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
			Type:                  corev1.ServiceTypeClusterIP,
			ClusterIP:             "fd00::10",
			ClusterIPs:            []string{"fd00::10"},
			SessionAffinity:       corev1.ServiceAffinityNone,
			InternalTrafficPolicy: cluster,
			IPFamilyPolicy:        single,
			IPFamilies:            []corev1.IPFamily{corev1.IPv6Protocol},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Service(tc.in)
			if !apiequality.Semantic.DeepEqual(tc.in.Spec, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", tc.in.Spec, tc.want)
			}
			again := tc.in.DeepCopy()
			Service(again)
			if !apiequality.Semantic.DeepEqual(again, tc.in) {
				t.Fatal("not idempotent")
			}
		})
	}
}

func TestServiceDualStackCluster(t *testing.T) {
	fams := []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
	s := svc(func(s *corev1.Service) { s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyPreferDualStack) })
	ServiceForFamilies(s, fams)
	if got := s.Spec.IPFamilies; len(got) != 2 || got[0] != corev1.IPv6Protocol || got[1] != corev1.IPv4Protocol {
		t.Fatalf("families %v", got)
	}
}

func TestServiceLoadBalancerStatusIPMode(t *testing.T) {
	s := svc(func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "146.148.47.155"}, {Hostname: "lb.example.com"}}
	})
	Service(s)
	ing := s.Status.LoadBalancer.Ingress
	if ing[0].IPMode == nil || *ing[0].IPMode != corev1.LoadBalancerIPModeVIP || ing[1].IPMode != nil {
		t.Fatalf("ipMode defaults wrong: %+v", ing)
	}
}

func TestEndpointsAndSliceDefaults(t *testing.T) {
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}, {Port: 53, Protocol: corev1.ProtocolUDP}}}}}
	Endpoints(ep)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP || ep.Subsets[0].Ports[1].Protocol != corev1.ProtocolUDP {
		t.Fatalf("endpoints ports: %+v", ep.Subsets[0].Ports)
	}
	es := &discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{Port: ptr.To(int32(80))}}}
	EndpointSlice(es)
	if p := es.Ports[0]; p.Name == nil || *p.Name != "" || p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP {
		t.Fatalf("slice ports: %+v", es.Ports)
	}
	sec := &corev1.Secret{}
	Secret(sec)
	if sec.Type != corev1.SecretTypeOpaque {
		t.Fatalf("secret type %q", sec.Type)
	}
}

func TestPullPolicy(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"busybox":                          corev1.PullAlways,
		"busybox:latest":                   corev1.PullAlways,
		"busybox:1.28":                     corev1.PullIfNotPresent,
		"registry:5000/busybox":            corev1.PullAlways,
		"registry:5000/busybox:1.0":        corev1.PullIfNotPresent,
		"busybox@sha256:" + sixtyFourHex(): corev1.PullIfNotPresent,
	} {
		if got := PullPolicyForImage(image); got != want {
			t.Errorf("%s: got %s want %s", image, got, want)
		}
	}
}

func sixtyFourHex() string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

func TestPodDefaults(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		HostNetwork: true,
		Containers: []corev1.Container{{
			Name: "app", Image: "nginx",
			Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}},
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 5},
			Resources:      corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
		}},
		Volumes: []corev1.Volume{{Name: "scratch"}, {Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}},
	}}
	Pod(pod)
	DefaultTolerations(pod)
	DefaultPriority(pod)
	s := pod.Spec
	c := s.Containers[0]
	checks := map[string]bool{
		"restartPolicy":      s.RestartPolicy == corev1.RestartPolicyAlways,
		"dnsPolicy":          s.DNSPolicy == corev1.DNSClusterFirst,
		"grace":              *s.TerminationGracePeriodSeconds == 30,
		"scheduler":          s.SchedulerName == "default-scheduler",
		"securityContext":    s.SecurityContext != nil,
		"serviceLinks":       *s.EnableServiceLinks,
		"pullPolicy":         c.ImagePullPolicy == corev1.PullAlways,
		"termPath":           c.TerminationMessagePath == "/dev/termination-log",
		"termPolicy":         c.TerminationMessagePolicy == corev1.TerminationMessageReadFile,
		"portProtocol":       c.Ports[0].Protocol == corev1.ProtocolTCP,
		"hostPort":           c.Ports[0].HostPort == 8080,
		"probe":              c.LivenessProbe.PeriodSeconds == 10 && c.LivenessProbe.TimeoutSeconds == 1 && c.LivenessProbe.SuccessThreshold == 1 && c.LivenessProbe.FailureThreshold == 3,
		"probeKeepsExplicit": c.ReadinessProbe.PeriodSeconds == 5,
		"httpGet":            c.LivenessProbe.HTTPGet.Scheme == corev1.URISchemeHTTP && c.LivenessProbe.HTTPGet.Path == "/",
		"requestsFromLimits": c.Resources.Requests.Cpu().String() == "1",
		"emptyDir":           s.Volumes[0].EmptyDir != nil,
		"configMapMode":      *s.Volumes[1].ConfigMap.DefaultMode == 0644,
		"tolerations":        len(s.Tolerations) == 2 && *s.Tolerations[0].TolerationSeconds == 300 && s.Tolerations[0].Key == corev1.TaintNodeNotReady && s.Tolerations[1].Key == corev1.TaintNodeUnreachable,
		"priority":           *s.Priority == 0 && *s.PreemptionPolicy == corev1.PreemptLowerPriority,
		"tolerationEffect":   s.Tolerations[0].Effect == corev1.TaintEffectNoExecute && s.Tolerations[0].Operator == corev1.TolerationOpExists,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("%s not defaulted as expected: %+v", name, s)
		}
	}
	again := pod.DeepCopy()
	Pod(again)
	DefaultTolerations(again)
	DefaultPriority(again)
	if !apiequality.Semantic.DeepEqual(again, pod) {
		t.Fatal("pod defaulting not idempotent")
	}
}

func TestDefaultTolerationsRespectsExisting(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}}
	DefaultTolerations(pod)
	if len(pod.Spec.Tolerations) != 1 {
		t.Fatalf("tolerate-everything pod got %v", pod.Spec.Tolerations)
	}
}

func template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
}

func TestWorkloadDefaults(t *testing.T) {
	tpl := template()
	rc := &corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{Template: &tpl}}
	ReplicationController(rc)
	if *rc.Spec.Replicas != 1 || rc.Spec.Selector["app"] != "web" || rc.Labels["app"] != "web" ||
		rc.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways || rc.Spec.Template.Spec.EnableServiceLinks != nil {
		t.Fatalf("rc: %+v", rc)
	}

	rs := &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: template()}}
	ReplicaSet(rs)
	if *rs.Spec.Replicas != 1 || rs.Spec.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Fatalf("rs: %+v", rs.Spec)
	}

	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: template()}}
	Deployment(d)
	ru := d.Spec.Strategy.RollingUpdate
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		ru.MaxSurge.String() != "25%" || ru.MaxUnavailable.String() != "25%" ||
		*d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Fatalf("deployment: %+v", d.Spec)
	}
	rec := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	Deployment(rec)
	if rec.Spec.Strategy.RollingUpdate != nil {
		t.Fatal("Recreate must not get rollingUpdate")
	}

	ss := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Template: template()}}
	StatefulSet(ss)
	p := ss.Spec.PersistentVolumeClaimRetentionPolicy
	if *ss.Spec.Replicas != 1 || ss.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement ||
		ss.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType || *ss.Spec.UpdateStrategy.RollingUpdate.Partition != 0 ||
		*ss.Spec.RevisionHistoryLimit != 10 || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType ||
		p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Fatalf("statefulset: %+v", ss.Spec)
	}

	ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: template()}}
	DaemonSet(ds)
	dru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || dru.MaxUnavailable.IntValue() != 1 ||
		dru.MaxSurge.IntValue() != 0 || *ds.Spec.RevisionHistoryLimit != 10 {
		t.Fatalf("daemonset: %+v", ds.Spec)
	}

	for name, pair := range map[string][2]any{
		"rc": {rc, func(o any) { ReplicationController(o.(*corev1.ReplicationController)) }},
		"d":  {d, func(o any) { Deployment(o.(*appsv1.Deployment)) }},
		"ss": {ss, func(o any) { StatefulSet(o.(*appsv1.StatefulSet)) }},
		"ds": {ds, func(o any) { DaemonSet(o.(*appsv1.DaemonSet)) }},
	} {
		before := deepCopy(pair[0])
		pair[1].(func(any))(pair[0])
		if !apiequality.Semantic.DeepEqual(before, pair[0]) {
			t.Errorf("%s defaulting not idempotent", name)
		}
	}
}

func deepCopy(o any) any {
	switch v := o.(type) {
	case *corev1.ReplicationController:
		return v.DeepCopy()
	case *appsv1.Deployment:
		return v.DeepCopy()
	case *appsv1.StatefulSet:
		return v.DeepCopy()
	case *appsv1.DaemonSet:
		return v.DeepCopy()
	}
	panic("unexpected type")
}

func TestDefaultServiceAccount(t *testing.T) {
	for _, tc := range []struct {
		name, given, deprecated, want string
		mirror                        bool
	}{
		{"none named", "", "", "default", false},
		{"named", "builder", "", "builder", false},
		{"only the deprecated alias", "", "old", "old", false},
		{"mirror pod", "", "", "", true},
	} {
		p := &corev1.Pod{Spec: corev1.PodSpec{ServiceAccountName: tc.given, DeprecatedServiceAccount: tc.deprecated}}
		if tc.mirror {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
		}
		DefaultServiceAccount(p)
		if p.Spec.ServiceAccountName != tc.want || (!tc.mirror && p.Spec.DeprecatedServiceAccount != tc.want) {
			t.Errorf("%s: serviceAccountName %q serviceAccount %q, want %q", tc.name, p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount, tc.want)
		}
	}
}
