package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const (
	benchNamespace = metav1.NamespaceDefault
	benchLabel     = "portal-bench"
	benchSelector  = "app=" + benchLabel
	agnhostImage   = "registry.k8s.io/e2e-test-images/agnhost:2.53"
	netexecPort    = 8080
)

// benchPod is the pod every measurement runs: agnhost netexec with an
// HTTP readiness probe checked every second.
func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace, Labels: map[string]string{"app": benchLabel}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{
				Name:  "netexec",
				Image: agnhostImage,
				Args:  []string{"netexec", fmt.Sprintf("--http-port=%d", netexecPort)},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(netexecPort)}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
}

// createPod creates a benchmark pod and returns when the create call
// returned: the start of every latency below.
func (b *bench) createPod(ctx context.Context, name string) (time.Time, error) {
	if _, err := b.kc.CoreV1().Pods(benchNamespace).Create(ctx, benchPod(name), metav1.CreateOptions{}); err != nil {
		return time.Time{}, fmt.Errorf("create pod %s: %w", name, err)
	}
	return time.Now(), nil
}

// deletePod deletes a pod with its default grace period.
func (b *bench) deletePod(ctx context.Context, name string) error {
	err := b.kc.CoreV1().Pods(benchNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", name, err)
	}
	return nil
}

// deleteAll deletes every benchmark pod and waits until the API has none.
func (b *bench) deleteAll(ctx context.Context, limit time.Duration) error {
	if b.kc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	deleted := map[string]bool{}
	for {
		l, err := b.kc.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{LabelSelector: benchSelector})
		if err != nil {
			return fmt.Errorf("listing pods to delete: %w", err)
		}
		if len(l.Items) == 0 {
			return nil
		}
		for _, p := range l.Items {
			if !deleted[p.Name] {
				if err := b.deletePod(ctx, p.Name); err != nil {
					return err
				}
				deleted[p.Name] = true
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d pods still in the API after %s", len(l.Items), limit)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
