package registry

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/portal-net/portal/internal/api/core"
)

// FieldSets says, per kind, which fields a field selector may use and how to
// read them from an object. metadata.name and metadata.namespace are added
// for every kind. The same table feeds the scheme's field-label conversion
// (which rejects unknown labels with 400, as Kubernetes does) and the
// storage predicates.
var FieldSets = map[schema.GroupVersionKind]func(obj runtime.Object) fields.Set{
	corev1.SchemeGroupVersion.WithKind("Pod"): func(obj runtime.Object) fields.Set {
		p := obj.(*corev1.Pod)
		podIP := ""
		if len(p.Status.PodIPs) > 0 {
			podIP = p.Status.PodIPs[0].IP
		}
		return fields.Set{
			"spec.nodeName":            p.Spec.NodeName,
			"spec.restartPolicy":       string(p.Spec.RestartPolicy),
			"spec.schedulerName":       p.Spec.SchedulerName,
			"spec.serviceAccountName":  p.Spec.ServiceAccountName,
			"spec.hostNetwork":         strconv.FormatBool(p.Spec.HostNetwork),
			"status.phase":             string(p.Status.Phase),
			"status.podIP":             podIP,
			"status.nominatedNodeName": p.Status.NominatedNodeName,
		}
	},
	corev1.SchemeGroupVersion.WithKind("Service"): func(obj runtime.Object) fields.Set {
		s := obj.(*core.Service)
		return fields.Set{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
	},
	corev1.SchemeGroupVersion.WithKind("Node"): func(obj runtime.Object) fields.Set {
		n := obj.(*corev1.Node)
		return fields.Set{"spec.unschedulable": strconv.FormatBool(n.Spec.Unschedulable)}
	},
	corev1.SchemeGroupVersion.WithKind("Namespace"): func(obj runtime.Object) fields.Set {
		return fields.Set{"status.phase": string(obj.(*corev1.Namespace).Status.Phase)}
	},
	corev1.SchemeGroupVersion.WithKind("Secret"): func(obj runtime.Object) fields.Set {
		return fields.Set{"type": string(obj.(*corev1.Secret).Type)}
	},
	corev1.SchemeGroupVersion.WithKind("ReplicationController"): func(obj runtime.Object) fields.Set {
		return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*corev1.ReplicationController).Status.Replicas))}
	},
	appsv1.SchemeGroupVersion.WithKind("ReplicaSet"): func(obj runtime.Object) fields.Set {
		return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*appsv1.ReplicaSet).Status.Replicas))}
	},
	corev1.SchemeGroupVersion.WithKind("Event"): func(obj runtime.Object) fields.Set {
		e := obj.(*corev1.Event)
		return fields.Set{
			"involvedObject.kind":            e.InvolvedObject.Kind,
			"involvedObject.namespace":       e.InvolvedObject.Namespace,
			"involvedObject.name":            e.InvolvedObject.Name,
			"involvedObject.uid":             string(e.InvolvedObject.UID),
			"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
			"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
			"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
			"reason":                         e.Reason,
			"reportingComponent":             e.ReportingController,
			"source":                         e.Source.Component,
			"type":                           e.Type,
		}
	},
}

// AddFieldLabelConversions registers, for every kind in FieldSets, which field
// selector labels it accepts.
func AddFieldLabelConversions(s *runtime.Scheme) error {
	for gvk, set := range FieldSets {
		supported := set(zeroObject(s, gvk))
		if err := s.AddFieldLabelConversionFunc(gvk, func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "metadata.namespace":
				return label, value, nil
			}
			if _, ok := supported[label]; ok {
				return label, value, nil
			}
			return "", "", fmt.Errorf("field label not supported: %s", label)
		}); err != nil {
			return err
		}
	}
	return nil
}

func zeroObject(s *runtime.Scheme, gvk schema.GroupVersionKind) runtime.Object {
	obj, err := s.New(gvk)
	if err != nil {
		panic(fmt.Sprintf("field selectors for unknown kind %s: %v", gvk, err))
	}
	return obj
}

// attrs returns the labels and selectable fields of obj of kind gvk.
func attrs(gvk schema.GroupVersionKind, namespaced bool) func(obj runtime.Object) (labels.Set, fields.Set, error) {
	extra := FieldSets[gvk]
	return func(obj runtime.Object) (labels.Set, fields.Set, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil, err
		}
		set := fields.Set{}
		if extra != nil {
			set = extra(obj)
		}
		set["metadata.name"] = m.GetName()
		if namespaced {
			set["metadata.namespace"] = m.GetNamespace()
		}
		return labels.Set(m.GetLabels()), set, nil
	}
}
