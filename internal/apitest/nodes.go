package apitest

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// FakeNodes plays the node agents of a cluster through the API, until the
// real agent exists: it registers Ready nodes, renews their Leases, reports
// pods bound to them Running and Ready (with an IP), and confirms the
// graceful deletion of their pods.
type FakeNodes struct {
	client kubernetes.Interface
	// ReadyAfter delays a bound pod's Ready report, so rollouts are observable.
	ReadyAfter time.Duration

	mu      sync.Mutex
	alive   map[string]bool
	nextIP  map[string]int
	nodeIdx map[string]int
}

// StartFakeNodes registers names as Ready nodes and plays their agents
// until ctx ends.
func StartFakeNodes(ctx context.Context, c kubernetes.Interface, readyAfter time.Duration, names ...string) (*FakeNodes, error) {
	f := &FakeNodes{client: c, ReadyAfter: readyAfter, alive: map[string]bool{}, nextIP: map[string]int{}, nodeIdx: map[string]int{}}
	for i, n := range names {
		f.alive[n] = true
		f.nodeIdx[n] = i + 1
		if err := f.register(ctx, n, i+1); err != nil {
			return nil, err
		}
	}
	// An informer rather than a bare watch: a watch the server closes on a
	// slow consumer would silently stop the fake agents.
	inf := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
	})).Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.observe(ctx, obj) },
		UpdateFunc: func(_, obj any) { f.observe(ctx, obj) },
	})
	if err != nil {
		return nil, err
	}
	go inf.Run(ctx.Done())
	go f.renew(ctx)
	return f, nil
}

// Stop makes node stop renewing its Lease and reporting its pods, as if
// its agent died.
func (f *FakeNodes) Stop(node string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alive[node] = false
}

func (f *FakeNodes) isAlive(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.alive[node]
}

func (f *FakeNodes) register(ctx context.Context, name string, idx int) error {
	now := metav1.Now()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
	}}}
	_, err := f.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	status := corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		// TEST-NET-1 addresses: only ever objects, never reachable.
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("192.0.2.%d", idx)}, {Type: corev1.NodeHostName, Address: name}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "fake node agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}},
	}
	// Controllers (pod CIDR allocation) may write the node meanwhile.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := f.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status = status
		_, err = f.client.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s status: %w", name, err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &metav1.MicroTime{Time: time.Now()}}}
	if _, err := f.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("node %s lease: %w", name, err)
	}
	return nil
}

func (f *FakeNodes) renew(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		var live []string
		for n, ok := range f.alive {
			if ok {
				live = append(live, n)
			}
		}
		f.mu.Unlock()
		for _, n := range live {
			l, err := f.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				continue
			}
			l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
			_, _ = f.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{})
		}
	}
}

func (f *FakeNodes) observe(ctx context.Context, obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if _, ours := f.nodeIdx[p.Spec.NodeName]; !ours || !f.isAlive(p.Spec.NodeName) {
		return
	}
	switch {
	case p.DeletionTimestamp != nil:
		go f.finishDelete(ctx, p)
	case p.Status.Phase == corev1.PodPending:
		go f.start(ctx, p)
	}
}

// finishDelete confirms a graceful deletion, as an agent does once the
// pod's containers have stopped.
func (f *FakeNodes) finishDelete(ctx context.Context, p *corev1.Pod) {
	_ = f.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &p.UID}})
}

// start reports p Running at once and Ready after ReadyAfter.
func (f *FakeNodes) start(ctx context.Context, p *corev1.Pod) {
	f.mu.Lock()
	f.nextIP[p.Spec.NodeName]++
	ip := fmt.Sprintf("10.42.%d.%d", f.nodeIdx[p.Spec.NodeName], f.nextIP[p.Spec.NodeName]%250+2)
	f.mu.Unlock()
	running := func(cur *corev1.Pod) bool {
		if cur.Status.Phase != corev1.PodPending {
			return false // someone (an earlier event of ours) got there first
		}
		now := metav1.Now()
		cur.Status.Phase = corev1.PodRunning
		cur.Status.PodIP, cur.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		cur.Status.StartTime = &now
		cur.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
		}
		cur.Status.ContainerStatuses = nil
		for _, c := range cur.Spec.Containers {
			cur.Status.ContainerStatuses = append(cur.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}, Started: ptr.To(true)})
		}
		return true
	}
	if !f.updatePodStatus(ctx, p, running) {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(f.ReadyAfter):
	}
	if !f.isAlive(p.Spec.NodeName) {
		return
	}
	f.updatePodStatus(ctx, p, func(cur *corev1.Pod) bool {
		if cur.Status.PodIP != ip || cur.DeletionTimestamp != nil {
			return false
		}
		now := metav1.Now()
		for j := range cur.Status.Conditions {
			if cur.Status.Conditions[j].Type == corev1.PodReady {
				cur.Status.Conditions[j] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}
			}
		}
		for j := range cur.Status.ContainerStatuses {
			cur.Status.ContainerStatuses[j].Ready = true
		}
		return true
	})
}

// updatePodStatus applies mutate to the current pod (same UID as p) and
// writes its status, retrying on conflicts; false when mutate declined or
// the pod is gone.
func (f *FakeNodes) updatePodStatus(ctx context.Context, p *corev1.Pod, mutate func(*corev1.Pod) bool) bool {
	wrote := false
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := f.client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil || cur.UID != p.UID || !mutate(cur) {
			return err
		}
		_, err = f.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		wrote = err == nil
		return err
	})
	return wrote
}
