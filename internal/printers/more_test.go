package printers

import (
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var sevenMinutesOld = metav1.ObjectMeta{Name: "x", Namespace: "default", CreationTimestamp: ago(7 * time.Minute)}

func TestPodTemplateRows(t *testing.T) {
	assertColumns(t, PodTemplateTable(), []col{{"Name", 0}, {"Containers", 0}, {"Images", 0}, {"Pod Labels", 0}})
	pt := &corev1.PodTemplate{ObjectMeta: sevenMinutesOld, Template: template("a", "b")}
	pt.Template.Labels = map[string]string{"tier": "fe", "app": "web"}
	assertCells(t, cells(t, PodTemplateTable(), pt), []interface{}{"x", "a,b", "registry.example/a:1.0,registry.example/b:1.0", "app=web,tier=fe"})
}

func TestPersistentVolumeClaimRows(t *testing.T) {
	assertColumns(t, PersistentVolumeClaimTable(), []col{
		{"Name", 0}, {"Status", 0}, {"Volume", 0}, {"Capacity", 0}, {"Access Modes", 0}, {"StorageClass", 0},
		{"VolumeAttributesClass", 0}, {"Age", 0}, {"VolumeMode", 1},
	})
	fs := corev1.PersistentVolumeFilesystem
	bound := &corev1.PersistentVolumeClaim{
		ObjectMeta: sevenMinutesOld,
		Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-1", StorageClassName: ptrTo("standard"), VolumeMode: &fs,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")}},
	}
	assertCells(t, cells(t, PersistentVolumeClaimTable(), bound), []interface{}{
		"x", "Bound", "pv-1", "8Gi", "RWO,RWX", "standard", "<unset>", "7m", "Filesystem",
	})

	pending := bound.DeepCopy()
	pending.Spec.VolumeName = ""
	pending.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
	pending.Annotations = map[string]string{betaStorageClassAnnotation: "legacy"}
	pending.DeletionTimestamp = ptrTo(ago(time.Second))
	pending.Spec.VolumeMode = nil
	assertCells(t, cells(t, PersistentVolumeClaimTable(), pending), []interface{}{
		"x", "Terminating", "", "", "", "legacy", "<unset>", "7m", "<unset>",
	})
}

func TestPersistentVolumeRows(t *testing.T) {
	assertColumns(t, PersistentVolumeTable(), []col{
		{"Name", 0}, {"Capacity", 0}, {"Access Modes", 0}, {"Reclaim Policy", 0}, {"Status", 0}, {"Claim", 0},
		{"StorageClass", 0}, {"VolumeAttributesClass", 0}, {"Reason", 0}, {"Age", 0}, {"VolumeMode", 1},
	})
	pv := &corev1.PersistentVolume{
		ObjectMeta: sevenMinutesOld,
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadOnlyMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "db", Name: "data-0"},
			StorageClassName:              "fast",
			VolumeAttributesClassName:     ptrTo("gold"),
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeReleased, Reason: "Released"},
	}
	assertCells(t, cells(t, PersistentVolumeTable(), pv), []interface{}{
		"x", "10Gi", "ROX,RWOP", "Retain", "Released", "db/data-0", "fast", "gold", "Released", "7m", "<unset>",
	})
}

func TestResourceQuotaRows(t *testing.T) {
	assertColumns(t, ResourceQuotaTable(), []col{{"Name", 0}, {"Request", 0}, {"Limit", 0}, {"Age", 0}})
	q := &corev1.ResourceQuota{
		ObjectMeta: sevenMinutesOld,
		Status: corev1.ResourceQuotaStatus{
			Hard: corev1.ResourceList{"pods": resource.MustParse("10"), "requests.cpu": resource.MustParse("2"), "limits.memory": resource.MustParse("4Gi"), "limits.cpu": resource.MustParse("4")},
			Used: corev1.ResourceList{"pods": resource.MustParse("3"), "requests.cpu": resource.MustParse("500m"), "limits.cpu": resource.MustParse("1")},
		},
	}
	assertCells(t, cells(t, ResourceQuotaTable(), q), []interface{}{
		"x", "pods: 3/10, requests.cpu: 500m/2", "limits.cpu: 1/4, limits.memory: 0/4Gi", "7m",
	})
}

func TestPodDisruptionBudgetRows(t *testing.T) {
	assertColumns(t, PodDisruptionBudgetTable(), []col{{"Name", 0}, {"Min Available", 0}, {"Max Unavailable", 0}, {"Allowed Disruptions", 0}, {"Age", 0}})
	minAvail := intstr.FromString("50%")
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: sevenMinutesOld, Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvail}, Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}}
	assertCells(t, cells(t, PodDisruptionBudgetTable(), pdb), []interface{}{"x", "50%", "N/A", int64(1), "7m"})
}

func TestHorizontalPodAutoscalerRows(t *testing.T) {
	assertColumns(t, HorizontalPodAutoscalerTable(), []col{
		{"Name", 0}, {"Reference", 0}, {"Targets", 0}, {"MinPods", 0}, {"MaxPods", 0}, {"Replicas", 0}, {"Age", 0},
	})
	h := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: sevenMinutesOld,
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
			MinReplicas: ptrTo[int32](2), MaxReplicas: 10, TargetCPUUtilizationPercentage: ptrTo[int32](60)},
		Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, CurrentCPUUtilizationPercentage: ptrTo[int32](45)},
	}
	assertCells(t, cells(t, HorizontalPodAutoscalerTable(), h), []interface{}{"x", "Deployment/web", "cpu: 45%/60%", "2", int64(10), int64(3), "7m"})

	fresh := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: sevenMinutesOld, Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "StatefulSet", Name: "db"}, MaxReplicas: 3}}
	assertCells(t, cells(t, HorizontalPodAutoscalerTable(), fresh), []interface{}{"x", "StatefulSet/db", "cpu: <unknown>/80%", "<unset>", int64(3), int64(0), "7m"})
}

func TestIngressRows(t *testing.T) {
	assertColumns(t, IngressTable(), []col{{"Name", 0}, {"Class", 0}, {"Hosts", 0}, {"Address", 0}, {"Ports", 0}, {"Age", 0}})
	rules := func(hosts ...string) []networkingv1.IngressRule {
		var out []networkingv1.IngressRule
		for _, h := range hosts {
			out = append(out, networkingv1.IngressRule{Host: h})
		}
		return out
	}
	tests := []struct {
		name string
		ing  *networkingv1.Ingress
		want []interface{}
	}{
		{
			name: "class, tls and load balancer",
			ing: &networkingv1.Ingress{ObjectMeta: sevenMinutesOld,
				Spec: networkingv1.IngressSpec{IngressClassName: ptrTo("nginx"), Rules: rules("foo.example.com", "bar.example.com"), TLS: []networkingv1.IngressTLS{{Hosts: []string{"foo.example.com"}}}},
				Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{
					{IP: "203.0.113.9"}, {Hostname: "lb.example.com"},
				}}}},
			want: []interface{}{"x", "nginx", "foo.example.com,bar.example.com", "203.0.113.9,lb.example.com", "80, 443", "7m"},
		},
		{
			name: "no class, no host, not yet admitted",
			ing:  &networkingv1.Ingress{ObjectMeta: sevenMinutesOld, Spec: networkingv1.IngressSpec{Rules: rules("")}},
			want: []interface{}{"x", "<none>", "*", "", "80", "7m"},
		},
		{
			name: "more hosts than shown",
			ing:  &networkingv1.Ingress{ObjectMeta: sevenMinutesOld, Spec: networkingv1.IngressSpec{Rules: rules("a", "", "b", "c", "d")}},
			want: []interface{}{"x", "<none>", "a,b,c + 2 more...", "", "80", "7m"},
		},
		{
			name: "exactly three hosts",
			ing:  &networkingv1.Ingress{ObjectMeta: sevenMinutesOld, Spec: networkingv1.IngressSpec{Rules: rules("a", "b", "c")}},
			want: []interface{}{"x", "<none>", "a,b,c", "", "80", "7m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCells(t, cells(t, IngressTable(), tt.ing), tt.want)
		})
	}
}

func TestIngressClassAndNetworkPolicyRows(t *testing.T) {
	assertColumns(t, IngressClassTable(), []col{{"Name", 0}, {"Controller", 0}, {"Parameters", 0}, {"Age", 0}})
	ic := &networkingv1.IngressClass{ObjectMeta: sevenMinutesOld, Spec: networkingv1.IngressClassSpec{
		Controller: "k8s.io/ingress-nginx",
		Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptrTo("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"},
	}}
	assertCells(t, cells(t, IngressClassTable(), ic), []interface{}{"x", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "7m"})
	ic.Spec.Parameters = nil
	assertCells(t, cells(t, IngressClassTable(), ic), []interface{}{"x", "k8s.io/ingress-nginx", "<none>", "7m"})

	assertColumns(t, NetworkPolicyTable(), []col{{"Name", 0}, {"Pod-Selector", 0}, {"Age", 0}})
	np := &networkingv1.NetworkPolicy{ObjectMeta: sevenMinutesOld, Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}}}}
	assertCells(t, cells(t, NetworkPolicyTable(), np), []interface{}{"x", "role=db", "7m"})
	np.Spec.PodSelector = metav1.LabelSelector{}
	assertCells(t, cells(t, NetworkPolicyTable(), np), []interface{}{"x", "<none>", "7m"})
}
