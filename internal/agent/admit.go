package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/scheduler/fit"
)

// Reasons a pod is rejected at admission, as the kubelet gives them.
const (
	reasonNodePorts = "NodePorts"
	msgNodePorts    = "Predicate NodePorts failed: " + fit.ReasonHostPorts
)

// admit is the kubelet's admission of a pod about to start on this node:
// a pod placed here directly (spec.nodeName, past the scheduler) may ask
// for a host port an active pod of the node holds. It returns the reason
// and message of a rejection, or "" to admit.
func (a *Agent) admit(pod *corev1.Pod) (reason, message string) {
	others, err := a.pods.List(labels.Everything())
	if err != nil {
		return "", ""
	}
	for _, o := range others {
		if o.UID == pod.UID || o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed ||
			!fit.HostPortsConflict(pod, o) {
			continue
		}
		// Only pods this agent runs hold ports: ones it started.
		if _, err := a.rt.Status(context.Background(), o.UID); err == nil {
			return reasonNodePorts, msgNodePorts
		}
	}
	return "", ""
}

// reject fails a pod the node cannot run, as the kubelet does: phase
// Failed with the reason, "Pod was rejected: <message>" and a warning
// event. Its controller, if any, replaces it.
func (a *Agent) reject(ctx context.Context, pod *corev1.Pod, reason, message string) {
	a.event(pod, "", corev1.EventTypeWarning, reason, "%s", message)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID {
			return nil
		}
		cur.Status = corev1.PodStatus{
			Phase:    corev1.PodFailed,
			Reason:   reason,
			Message:  fmt.Sprintf("Pod was rejected: %s", message),
			QOSClass: cur.Status.QOSClass,
		}
		_, err = a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.ErrorS(err, "Rejecting pod", "pod", klog.KObj(pod), "reason", reason)
	}
}
