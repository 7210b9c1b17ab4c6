package replicaset

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	ktesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func template(app string) v1.PodTemplateSpec {
	return v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app, "tier": "web"}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "web", Image: "nginx"}}},
	}
}

func newRS(name string, replicas int32, mut ...func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Generation: 1},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template(name),
		},
	}
	for _, m := range mut {
		m(rs)
	}
	return rs
}

func newRC(name string, replicas int32) *v1.ReplicationController {
	t := template(name)
	return &v1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Generation: 1},
		Spec: v1.ReplicationControllerSpec{
			Replicas: ptr.To(replicas),
			Selector: map[string]string{"app": name},
			Template: &t,
		},
	}
}

// newPod returns a running, unready pod on node-a labelled for app, owned by
// owner when owner is not nil.
func newPod(name, app string, owner metav1.Object, mut ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", UID: types.UID("uid-" + name), ResourceVersion: "1",
			Labels:            map[string]string{"app": app, "tier": "web"},
			CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour)),
		},
		Spec:   v1.PodSpec{NodeName: "node-a", Containers: []v1.Container{{Name: "web", Image: "nginx"}}},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	if owner != nil {
		kind := "ReplicaSet"
		api := "apps/v1"
		if _, ok := owner.(*v1.ReplicationController); ok {
			kind, api = "ReplicationController", "v1"
		}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: api, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(), Controller: ptr.To(true)}}
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

func readyFor(d time.Duration) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-d))}}
	}
}

func phase(ph v1.PodPhase) func(*v1.Pod) { return func(p *v1.Pod) { p.Status.Phase = ph } }

func unscheduled(p *v1.Pod) { p.Spec.NodeName = "" }

func onNode(n string) func(*v1.Pod) { return func(p *v1.Pod) { p.Spec.NodeName = n } }

func createdAgo(d time.Duration) func(*v1.Pod) {
	return func(p *v1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(-d)) }
}

func restarted(n int32) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "web", RestartCount: n}} }
}

func deleting(p *v1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }

// harness runs one controller over a fake clientset whose informers are NOT
// started: the test fills the caches itself, so it decides exactly how stale
// they are, and calls sync directly.
type harness struct {
	t        *testing.T
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	recorder *record.FakeRecorder
	c        *Controller
}

type constructor func(kubernetesClient *fake.Clientset, f informers.SharedInformerFactory, r record.EventRecorder, o Options) *Controller

var (
	forRS constructor = func(c *fake.Clientset, f informers.SharedInformerFactory, r record.EventRecorder, o Options) *Controller {
		return New(c, f, r, o)
	}
	forRC constructor = func(c *fake.Clientset, f informers.SharedInformerFactory, r record.EventRecorder, o Options) *Controller {
		return NewReplicationController(c, f, r, o)
	}
)

func newHarness(t *testing.T, newFn constructor, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	var n atomic.Int64
	client.PrependReactor("create", "pods", func(a ktesting.Action) (bool, runtime.Object, error) {
		p := a.(ktesting.CreateAction).GetObject().(*v1.Pod)
		if p.Name == "" && p.GenerateName != "" {
			id := n.Add(1)
			p.Name = fmt.Sprintf("%s%05d", p.GenerateName, id)
			p.UID = types.UID(fmt.Sprintf("created-%d", id))
		}
		return false, nil, nil
	})
	f := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(1000)
	h := &harness{t: t, client: client, factory: f, recorder: rec,
		c: newFn(client, f, rec, Options{Clock: clocktesting.NewFakeClock(t0)})}
	for _, o := range objs {
		h.cache(o)
	}
	return h
}

// cache puts obj into the informer cache only (not the API).
func (h *harness) cache(obj runtime.Object) {
	h.t.Helper()
	var err error
	switch o := obj.(type) {
	case *v1.Pod:
		err = h.factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
	case *appsv1.ReplicaSet:
		err = h.factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
	case *v1.ReplicationController:
		err = h.factory.Core().V1().ReplicationControllers().Informer().GetIndexer().Add(o)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) sync(key string) error {
	h.t.Helper()
	return h.c.sync(context.Background(), key)
}

// apiPods returns the pods in the fake API, by name.
func (h *harness) apiPods() map[string]*v1.Pod {
	h.t.Helper()
	l, err := h.client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]*v1.Pod{}
	for i := range l.Items {
		out[l.Items[i].Name] = &l.Items[i]
	}
	return out
}

func (h *harness) verbs(verb, resource string) int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource && a.GetSubresource() == "" {
			n++
		}
	}
	return n
}

// events drains the recorder.
func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
