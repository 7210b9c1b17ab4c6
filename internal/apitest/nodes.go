package apitest

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
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
	n, err := f.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	n.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		// TEST-NET-1 addresses: only ever objects, never reachable.
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("192.0.2.%d", idx)}, {Type: corev1.NodeHostName, Address: name}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "fake node agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}},
	}
	if _, err := f.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
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
	now := metav1.Now()
	p = p.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
	}
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}, Started: ptr.To(true)})
	}
	p, err := f.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(f.ReadyAfter):
	}
	for i := 0; i < 5; i++ {
		if !f.isAlive(p.Spec.NodeName) {
			return
		}
		now = metav1.Now()
		for j := range p.Status.Conditions {
			if p.Status.Conditions[j].Type == corev1.PodReady {
				p.Status.Conditions[j] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}
			}
		}
		for j := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[j].Ready = true
		}
		_, err = f.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err == nil || !apierrors.IsConflict(err) {
			return
		}
		if p, err = f.client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
			return
		}
	}
}
