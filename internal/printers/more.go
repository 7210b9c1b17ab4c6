package printers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// This file holds the resources beyond the core set that portal also
// serves, so `kubectl get` shows their usual columns too.

// PodTemplateTable prints PodTemplates (upstream has no AGE column here).
func PodTemplateTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Containers", Type: "string", Description: containersColumn.Description},
		{Name: "Images", Type: "string", Description: imagesColumn.Description},
		{Name: "Pod Labels", Type: "string", Description: "The labels for the pod template."},
	}, RowOf(func(pt *corev1.PodTemplate, _ time.Time) ([]interface{}, error) {
		names, images := containerCells(pt.Template.Spec.Containers)
		return []interface{}{pt.Name, names, images, labels.FormatLabels(pt.Template.Labels)}, nil
	}))
}

// betaStorageClassAnnotation predates spec.storageClassName and still
// takes precedence over it.
const betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"

// accessModes abbreviates access modes in a fixed order, without repeats.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	has := map[corev1.PersistentVolumeAccessMode]bool{}
	for _, m := range modes {
		has[m] = true
	}
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{
		{corev1.ReadWriteOnce, "RWO"}, {corev1.ReadOnlyMany, "ROX"}, {corev1.ReadWriteMany, "RWX"}, {corev1.ReadWriteOncePod, "RWOP"},
	} {
		if has[m.mode] {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}

func strOrUnset(p *string) string {
	if p == nil {
		return unset
	}
	return *p
}

func volumeModeOrUnset(p *corev1.PersistentVolumeMode) string {
	if p == nil {
		return unset
	}
	return string(*p)
}

// PersistentVolumeClaimTable prints PersistentVolumeClaims.
func PersistentVolumeClaimTable() *TableConvertor {
	specDoc, statusDoc := corev1.PersistentVolumeClaimSpec{}.SwaggerDoc(), corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Status", Type: "string", Description: statusDoc["phase"]},
		{Name: "Volume", Type: "string", Description: specDoc["volumeName"]},
		{Name: "Capacity", Type: "string", Description: statusDoc["capacity"]},
		{Name: "Access Modes", Type: "string", Description: statusDoc["accessModes"]},
		{Name: "StorageClass", Type: "string", Description: "StorageClass of the pvc"},
		{Name: "VolumeAttributesClass", Type: "string", Description: "VolumeAttributesClass of the pvc"},
		ageColumn,
		{Name: "VolumeMode", Type: "string", Priority: 1, Description: specDoc["volumeMode"]},
	}, RowOf(func(pvc *corev1.PersistentVolumeClaim, now time.Time) ([]interface{}, error) {
		phase := string(pvc.Status.Phase)
		if pvc.DeletionTimestamp != nil {
			phase = "Terminating"
		}
		// Capacity and modes describe the bound volume, so only a bound
		// claim shows them.
		capacity, modes := "", ""
		if pvc.Spec.VolumeName != "" {
			q := pvc.Status.Capacity[corev1.ResourceStorage]
			capacity, modes = q.String(), accessModes(pvc.Status.AccessModes)
		}
		class, ok := pvc.Annotations[betaStorageClassAnnotation]
		if !ok && pvc.Spec.StorageClassName != nil {
			class = *pvc.Spec.StorageClassName
		}
		return []interface{}{
			pvc.Name, phase, pvc.Spec.VolumeName, capacity, modes, class, strOrUnset(pvc.Spec.VolumeAttributesClassName),
			since(pvc.CreationTimestamp, now), volumeModeOrUnset(pvc.Spec.VolumeMode),
		}, nil
	}))
}

// PersistentVolumeTable prints PersistentVolumes.
func PersistentVolumeTable() *TableConvertor {
	specDoc, statusDoc := corev1.PersistentVolumeSpec{}.SwaggerDoc(), corev1.PersistentVolumeStatus{}.SwaggerDoc()
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Capacity", Type: "string", Description: specDoc["capacity"]},
		{Name: "Access Modes", Type: "string", Description: specDoc["accessModes"]},
		{Name: "Reclaim Policy", Type: "string", Description: specDoc["persistentVolumeReclaimPolicy"]},
		{Name: "Status", Type: "string", Description: statusDoc["phase"]},
		{Name: "Claim", Type: "string", Description: specDoc["claimRef"]},
		{Name: "StorageClass", Type: "string", Description: "StorageClass of the pv"},
		{Name: "VolumeAttributesClass", Type: "string", Description: "VolumeAttributesClass of the pv"},
		{Name: "Reason", Type: "string", Description: statusDoc["reason"]},
		ageColumn,
		{Name: "VolumeMode", Type: "string", Priority: 1, Description: specDoc["volumeMode"]},
	}, RowOf(func(pv *corev1.PersistentVolume, now time.Time) ([]interface{}, error) {
		claim := ""
		if ref := pv.Spec.ClaimRef; ref != nil {
			claim = ref.Namespace + "/" + ref.Name
		}
		phase := string(pv.Status.Phase)
		if pv.DeletionTimestamp != nil {
			phase = "Terminating"
		}
		class, ok := pv.Annotations[betaStorageClassAnnotation]
		if !ok {
			class = pv.Spec.StorageClassName
		}
		capacity := pv.Spec.Capacity[corev1.ResourceStorage]
		return []interface{}{
			pv.Name, capacity.String(), accessModes(pv.Spec.AccessModes), string(pv.Spec.PersistentVolumeReclaimPolicy),
			phase, claim, class, strOrUnset(pv.Spec.VolumeAttributesClassName), pv.Status.Reason,
			since(pv.CreationTimestamp, now), volumeModeOrUnset(pv.Spec.VolumeMode),
		}, nil
	}))
}

// ResourceQuotaTable prints ResourceQuotas as "resource: used/hard" lists,
// split into requests and limits.* resources.
func ResourceQuotaTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Request", Type: "string", Description: "Request represents a minimum amount of cpu/memory that a container may consume."},
		{Name: "Limit", Type: "string", Description: "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."},
		ageColumn,
	}, RowOf(func(q *corev1.ResourceQuota, now time.Time) ([]interface{}, error) {
		names := make([]string, 0, len(q.Status.Hard))
		for n := range q.Status.Hard {
			names = append(names, string(n))
		}
		sort.Strings(names)
		var requests, limits []string
		for _, n := range names {
			used, hard := q.Status.Used[corev1.ResourceName(n)], q.Status.Hard[corev1.ResourceName(n)]
			entry := fmt.Sprintf("%s: %s/%s", n, used.String(), hard.String())
			if strings.HasPrefix(n, "limits.") {
				limits = append(limits, entry)
			} else {
				requests = append(requests, entry)
			}
		}
		return []interface{}{q.Name, strings.Join(requests, ", "), strings.Join(limits, ", "), since(q.CreationTimestamp, now)}, nil
	}))
}

// PodDisruptionBudgetTable prints policy/v1 PodDisruptionBudgets.
func PodDisruptionBudgetTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Min Available", Type: "string", Description: "The minimum number of pods that must be available."},
		{Name: "Max Unavailable", Type: "string", Description: "The maximum number of pods that may be unavailable."},
		{Name: "Allowed Disruptions", Type: "integer", Description: "Calculated number of pods that may be disrupted at this time."},
		ageColumn,
	}, RowOf(func(pdb *policyv1.PodDisruptionBudget, now time.Time) ([]interface{}, error) {
		minAvail, maxUnavail := "N/A", "N/A"
		if pdb.Spec.MinAvailable != nil {
			minAvail = pdb.Spec.MinAvailable.String()
		}
		if pdb.Spec.MaxUnavailable != nil {
			maxUnavail = pdb.Spec.MaxUnavailable.String()
		}
		return []interface{}{pdb.Name, minAvail, maxUnavail, int64(pdb.Status.DisruptionsAllowed), since(pdb.CreationTimestamp, now)}, nil
	}))
}

// defaultCPUUtilization is the target an autoscaling/v1 HPA gets when it
// names none.
const defaultCPUUtilization = 80

// HorizontalPodAutoscalerTable prints autoscaling/v1 HPAs; TARGETS reads
// "cpu: current%/target%".
func HorizontalPodAutoscalerTable() *TableConvertor {
	specDoc := autoscalingv1.HorizontalPodAutoscalerSpec{}.SwaggerDoc()
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Reference", Type: "string", Description: specDoc["scaleTargetRef"]},
		{Name: "Targets", Type: "string", Description: "The target and current values of the metrics the autoscaler scales on."},
		{Name: "MinPods", Type: "string", Description: specDoc["minReplicas"]},
		{Name: "MaxPods", Type: "string", Description: specDoc["maxReplicas"]},
		{Name: "Replicas", Type: "string", Description: autoscalingv1.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]},
		ageColumn,
	}, RowOf(func(h *autoscalingv1.HorizontalPodAutoscaler, now time.Time) ([]interface{}, error) {
		current := unknown
		if h.Status.CurrentCPUUtilizationPercentage != nil {
			current = fmt.Sprintf("%d%%", *h.Status.CurrentCPUUtilizationPercentage)
		}
		target := int32Or(h.Spec.TargetCPUUtilizationPercentage, defaultCPUUtilization)
		minPods := unset
		if h.Spec.MinReplicas != nil {
			minPods = fmt.Sprintf("%d", *h.Spec.MinReplicas)
		}
		return []interface{}{
			h.Name, h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name, fmt.Sprintf("cpu: %s/%d%%", current, target),
			minPods, int64(h.Spec.MaxReplicas), int64(h.Status.CurrentReplicas), since(h.CreationTimestamp, now),
		}, nil
	}))
}

// IngressTable prints networking/v1 Ingresses.
func IngressTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Class", Type: "string", Description: "The name of the IngressClass resource that should be used for additional configuration"},
		{Name: "Hosts", Type: "string", Description: "Hosts that incoming requests are matched against before the ingress rule"},
		{Name: "Address", Type: "string", Description: "Address is a list containing ingress points for the load-balancer"},
		{Name: "Ports", Type: "string", Description: "Ports of TLS configurations that open"},
		ageColumn,
	}, RowOf(func(ing *networkingv1.Ingress, now time.Time) ([]interface{}, error) {
		class := none
		if ing.Spec.IngressClassName != nil {
			class = *ing.Spec.IngressClassName
		}
		lb := corev1.LoadBalancerStatus{}
		for _, i := range ing.Status.LoadBalancer.Ingress {
			lb.Ingress = append(lb.Ingress, corev1.LoadBalancerIngress{IP: i.IP, Hostname: i.Hostname})
		}
		ports := "80"
		if len(ing.Spec.TLS) > 0 {
			ports = "80, 443"
		}
		return []interface{}{
			ing.Name, class, ingressHosts(ing.Spec.Rules), strings.Join(loadBalancerAddresses(lb), ","), ports, since(ing.CreationTimestamp, now),
		}, nil
	}))
}

// ingressHosts lists the first listCellMax named hosts ("*" when no rule
// names one). As upstream, "+ N more..." appears only when rules remain after
// the last shown host, and N counts rules beyond listCellMax, not hosts.
func ingressHosts(rules []networkingv1.IngressRule) string {
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == listCellMax {
			more = true
			break
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	s := strings.Join(hosts, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", s, len(rules)-listCellMax)
	}
	return s
}

// IngressClassTable prints networking/v1 IngressClasses.
func IngressClassTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Controller", Type: "string", Description: "Controller that is responsible for handling this class"},
		{Name: "Parameters", Type: "string", Description: "A reference to a resource with additional parameters"},
		ageColumn,
	}, RowOf(func(ic *networkingv1.IngressClass, now time.Time) ([]interface{}, error) {
		params := none
		if p := ic.Spec.Parameters; p != nil {
			params = p.Kind
			if p.APIGroup != nil {
				params += "." + *p.APIGroup
			}
			params += "/" + p.Name
		}
		return []interface{}{ic.Name, ic.Spec.Controller, params, since(ic.CreationTimestamp, now)}, nil
	}))
}

// NetworkPolicyTable prints networking/v1 NetworkPolicies.
func NetworkPolicyTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Pod-Selector", Type: "string", Description: networkingv1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]},
		ageColumn,
	}, RowOf(func(np *networkingv1.NetworkPolicy, now time.Time) ([]interface{}, error) {
		return []interface{}{np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), since(np.CreationTimestamp, now)}, nil
	}))
}
