package validation

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/api/defaults"
)

func check(t *testing.T, errs field.ErrorList, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n got  %q\n want %q\nfull: %v", got, want, errs.ToAggregate())
	}
}

func basePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", ResourceVersion: "1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "nginx:1.27",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

func TestValidatePod(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"valid", func(*corev1.Pod) {}, nil},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil }, want(req + " spec.containers")},
		{"container name invalid", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "App_1" }, want(inv + " spec.containers[0].name")},
		{"duplicate container names", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "app", Image: "busybox"})
		}, want(dup + " spec.containers[1].name")},
		{"init and app share a name", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "app", Image: "busybox"}}
		}, want(dup + " spec.containers[0].name")},
		{"no image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, want(req + " spec.containers[0].image")},
		{"container port 0", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 },
			want(req + " spec.containers[0].ports[0].containerPort")},
		{"container port 70000", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 },
			want(inv + " spec.containers[0].ports[0].containerPort")},
		{"port name too long", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Name = "much-too-long-name" },
			want(inv + " spec.containers[0].ports[0].name")},
		{"restartPolicy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, want(nsup + " spec.restartPolicy")},
		{"hostname", func(p *corev1.Pod) { p.Spec.Hostname = "Busy_1" }, want(inv + " spec.hostname")},
		{"subdomain", func(p *corev1.Pod) { p.Spec.Subdomain = "a.b" }, want(inv + " spec.subdomain")},
		{"activeDeadlineSeconds 0", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To(int64(0)) },
			want(inv + " spec.activeDeadlineSeconds")},
		{"toleration value with Exists", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"}}
		}, want(inv + " spec.tolerations[0].operator")},
		{"unknown volume mount", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, want(field.ErrorTypeNotFound.String() + " spec.containers[0].volumeMounts[0].name")},
		{"probe without handler", func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe = &corev1.Probe{} },
			want(req + " spec.containers[0].livenessProbe")},
		{"name", func(p *corev1.Pod) { p.Name = "Web" }, want(inv + " metadata.name")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := basePod()
			tc.mutate(p)
			defaults.Pod(p)
			errs := ValidatePod(p)
			check(t, errs, errKeys(errs), tc.want)
		})
	}
}

func TestValidatePodUpdate(t *testing.T) {
	old := basePod()
	defaults.Pod(old)
	cases := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"image change allowed", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"add toleration allowed", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}, nil},
		{"binding allowed", func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }, nil},
		{"restartPolicy change forbidden", func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }, want(forb + " spec")},
		{"ports change forbidden", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9090 }, want(forb + " spec")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := old.DeepCopy()
			tc.mutate(p)
			errs := ValidatePodUpdate(p, old)
			check(t, errs, errKeys(errs), tc.want)
		})
	}
}

func tpl() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
}

func TestValidateWorkloads(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "web", Namespace: "default"}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	other := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}
	deploy := func(m func(*appsv1.Deployment)) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: sel, Template: tpl()}}
		m(d)
		defaults.Deployment(d)
		return d
	}
	cases := []struct {
		name string
		errs func() ([]string, error)
		want []string
	}{
		{"deployment valid", func() ([]string, error) {
			e := ValidateDeployment(deploy(func(*appsv1.Deployment) {}))
			return errKeys(e), e.ToAggregate()
		}, nil},
		{"deployment no selector", func() ([]string, error) {
			e := ValidateDeployment(deploy(func(d *appsv1.Deployment) { d.Spec.Selector = nil }))
			return errKeys(e), e.ToAggregate()
		}, want(req + " spec.selector")},
		{"deployment selector mismatch", func() ([]string, error) {
			e := ValidateDeployment(deploy(func(d *appsv1.Deployment) { d.Spec.Selector = other }))
			return errKeys(e), e.ToAggregate()
		}, want(inv + " spec.template.metadata.labels")},
		{"deployment negative replicas", func() ([]string, error) {
			e := ValidateDeployment(deploy(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(int32(-1)) }))
			return errKeys(e), e.ToAggregate()
		}, want(inv + " spec.replicas")},
		{"deployment both zero", func() ([]string, error) {
			e := ValidateDeployment(deploy(func(d *appsv1.Deployment) {
				zero := intstr.FromInt32(0)
				d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &zero, MaxUnavailable: &zero}
			}))
			return errKeys(e), e.ToAggregate()
		}, want(inv + " spec.strategy.rollingUpdate.maxUnavailable")},
		{"deployment recreate with rollingUpdate", func() ([]string, error) {
			e := ValidateDeployment(deploy(func(d *appsv1.Deployment) {
				d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
			}))
			return errKeys(e), e.ToAggregate()
		}, want(forb + " spec.strategy.rollingUpdate")},
		{"deployment restartPolicy Never", func() ([]string, error) {
			e := ValidateDeployment(deploy(func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever }))
			return errKeys(e), e.ToAggregate()
		}, want(nsup + " spec.template.spec.restartPolicy")},
		{"replicaset valid", func() ([]string, error) {
			rs := &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tpl()}}
			defaults.ReplicaSet(rs)
			e := ValidateReplicaSet(rs)
			return errKeys(e), e.ToAggregate()
		}, nil},
		{"replicaset empty selector", func() ([]string, error) {
			rs := &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{}, Template: tpl()}}
			defaults.ReplicaSet(rs)
			e := ValidateReplicaSet(rs)
			return errKeys(e), e.ToAggregate()
		}, want(inv + " spec.selector")},
		{"rc valid with defaulted selector", func() ([]string, error) {
			t := tpl()
			rc := &corev1.ReplicationController{ObjectMeta: meta, Spec: corev1.ReplicationControllerSpec{Template: &t}}
			defaults.ReplicationController(rc)
			e := ValidateReplicationController(rc)
			return errKeys(e), e.ToAggregate()
		}, nil},
		{"rc no template", func() ([]string, error) {
			rc := &corev1.ReplicationController{ObjectMeta: meta, Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"a": "b"}}}
			defaults.ReplicationController(rc)
			e := ValidateReplicationController(rc)
			return errKeys(e), e.ToAggregate()
		}, want(req + " spec.template")},
		{"statefulset valid", func() ([]string, error) {
			ss := &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tpl(), ServiceName: "web"}}
			defaults.StatefulSet(ss)
			e := ValidateStatefulSet(ss)
			return errKeys(e), e.ToAggregate()
		}, nil},
		{"statefulset mounting its volumeClaimTemplate", func() ([]string, error) {
			t := tpl()
			t.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "www", MountPath: "/usr/share/nginx/html"}}
			ss := &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: t, ServiceName: "web",
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "www"}}}}}
			defaults.StatefulSet(ss)
			e := ValidateStatefulSet(ss)
			return errKeys(e), e.ToAggregate()
		}, nil},
		{"statefulset mounting an unknown volume", func() ([]string, error) {
			t := tpl()
			t.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/data"}}
			ss := &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: t, ServiceName: "web"}}
			defaults.StatefulSet(ss)
			e := ValidateStatefulSet(ss)
			return errKeys(e), e.ToAggregate()
		}, want("Not found spec.template.spec.containers[0].volumeMounts[0].name")},
		{"statefulset bad policy", func() ([]string, error) {
			ss := &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tpl(), PodManagementPolicy: "Random"}}
			defaults.StatefulSet(ss)
			e := ValidateStatefulSet(ss)
			return errKeys(e), e.ToAggregate()
		}, want(inv + " spec.podManagementPolicy")},
		{"daemonset valid", func() ([]string, error) {
			ds := &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tpl()}}
			defaults.DaemonSet(ds)
			e := ValidateDaemonSet(ds)
			return errKeys(e), e.ToAggregate()
		}, nil},
		{"daemonset bad strategy", func() ([]string, error) {
			ds := &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tpl(),
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: "Blue"}}}
			defaults.DaemonSet(ds)
			e := ValidateDaemonSet(ds)
			return errKeys(e), e.ToAggregate()
		}, want(nsup + " spec.updateStrategy.type")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, agg := tc.errs()
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n got  %q\n want %q\nfull: %v", got, tc.want, agg)
			}
		})
	}
}

func TestValidateStatefulSetUpdateForbidsOtherFields(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	old := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "1"},
		Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tpl(), ServiceName: "web"}}
	defaults.StatefulSet(old)
	nw := old.DeepCopy()
	nw.Spec.Replicas = ptr.To(int32(3))
	if errs := ValidateStatefulSetUpdate(nw, old); len(errs) != 0 {
		t.Fatalf("scaling must be allowed: %v", errs.ToAggregate())
	}
	nw.Spec.ServiceName = "other"
	if got := errKeys(ValidateStatefulSetUpdate(nw, old)); strings.Join(got, ",") != forb+" spec" {
		t.Fatalf("got %q", got)
	}
}

func TestValidateMiscObjects(t *testing.T) {
	cases := []struct {
		name string
		got  []string
		want []string
	}{
		{"namespace ok", errKeys(ValidateNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}})), nil},
		{"namespace bad name", errKeys(ValidateNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "Prod.1"}})), want(inv + " metadata.name")},
		{"node ok", errKeys(ValidateNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}}})), nil},
		{"node bad podCIDR", errKeys(ValidateNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.0.1/24"}}})), want(inv + " spec.podCIDRs[0]")},
		{"node two IPv4 podCIDRs", errKeys(ValidateNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Spec: corev1.NodeSpec{PodCIDRs: []string{"10.244.0.0/24", "10.244.1.0/24"}}})), want(inv + " spec.podCIDRs")},
		{"configmap bad key", errKeys(ValidateConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "d"},
			Data: map[string]string{"bad/key": "v"}})), want(inv + " data[bad/key]")},
		{"secret tls missing key", errKeys(ValidateSecret(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "d"},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("x")}})), want(req + " data[tls.key]")},
		{"secret opaque ok", errKeys(ValidateSecret(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "d"},
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("x")}})), nil},
	}
	for _, tc := range cases {
		if strings.Join(tc.got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got  %q\n want %q", tc.name, tc.got, tc.want)
		}
	}
}
