package deployment

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

var deploymentGK = schema.GroupKind{Group: "apps", Kind: "Deployment"}

// env is a real API server with the controller running against it. The
// test itself plays the ReplicaSet controller.
type env struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
	events *eventLog
}

type eventLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *eventLog) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}

// waitTimeout bounds one step of a rollout against the test API server.
const waitTimeout = 20 * time.Second

func startEnv(t *testing.T) *env {
	t.Helper()
	s := apitest.Start(t)
	rec := record.NewFakeRecorder(1000)
	log := &eventLog{}
	f := informers.NewSharedInformerFactory(s.Client, 0)
	c := New(s.Client, f, rec, Options{})
	ctx := ctltest.Run(t, f, func(ctx context.Context) { c.Run(ctx, 2) }, func(ctx context.Context) { log.collect(ctx, rec.Events) })
	return &env{t: t, ctx: ctx, client: s.Client, events: log}
}

// collect appends events until ctx ends.
func (l *eventLog) collect(ctx context.Context, events <-chan string) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-events:
			l.mu.Lock()
			l.msgs = append(l.msgs, m)
			l.mu.Unlock()
		}
	}
}

func newDeployment(name string, replicas int32, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func (e *env) create(d *appsv1.Deployment) *appsv1.Deployment {
	e.t.Helper()
	got, err := e.client.AppsV1().Deployments(d.Namespace).Create(e.ctx, d, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

func (e *env) get(name string) *appsv1.Deployment {
	e.t.Helper()
	d, err := e.client.AppsV1().Deployments("default").Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// update applies mutate to the stored Deployment, retrying conflicts with
// the controller's status writes.
func (e *env) update(name string, mutate func(*appsv1.Deployment)) *appsv1.Deployment {
	e.t.Helper()
	for i := 0; i < 20; i++ {
		d := e.get(name)
		mutate(d)
		got, err := e.client.AppsV1().Deployments("default").Update(e.ctx, d, metav1.UpdateOptions{})
		if err == nil {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("could not update deployment %s", name)
	return nil
}

// replicaSets lists the ReplicaSets controlled by Deployment name, oldest
// first.
func (e *env) replicaSets(name string) []*appsv1.ReplicaSet {
	e.t.Helper()
	list, err := e.client.AppsV1().ReplicaSets("default").List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*appsv1.ReplicaSet
	for i := range list.Items {
		rs := &list.Items[i]
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" && ref.Name == name {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return revision(out[i]) < revision(out[j]) })
	return out
}

func (e *env) rsByName(name string) *appsv1.ReplicaSet {
	e.t.Helper()
	rs, err := e.client.AppsV1().ReplicaSets("default").Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

// setRSStatus plays the ReplicaSet controller: it reports spec.replicas
// pods of which `available` are ready and available.
func (e *env) setRSStatus(rs *appsv1.ReplicaSet, podCount, available int32) {
	e.t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		err := e.trySetRSStatus(rs, podCount, available)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			e.t.Fatalf("status of %s: %v", rs.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
		rs = e.rsByName(rs.Name)
	}
	e.t.Fatalf("could not set status of %s", rs.Name)
}

// trySetRSStatus is setRSStatus for callers that retry: it fails with a
// conflict when the controller resized rs meanwhile.
func (e *env) trySetRSStatus(rs *appsv1.ReplicaSet, podCount, available int32) error {
	rs = rs.DeepCopy()
	rs.Status = appsv1.ReplicaSetStatus{
		Replicas: podCount, FullyLabeledReplicas: podCount, ReadyReplicas: available, AvailableReplicas: available,
		ObservedGeneration: rs.Generation, TerminatingReplicas: ptr.To[int32](0),
	}
	_, err := e.client.AppsV1().ReplicaSets("default").UpdateStatus(e.ctx, rs, metav1.UpdateOptions{})
	return err
}

// settle makes every ReplicaSet of the Deployment fully available at its
// current size.
func (e *env) settle(name string) {
	e.t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		var err error
		for _, rs := range e.replicaSets(name) {
			if err = e.trySetRSStatus(rs, replicas(rs), replicas(rs)); err != nil {
				break
			}
		}
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			e.t.Fatal(err)
		}
		// The controller wrote the ReplicaSet meanwhile; read it again.
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("could not settle ReplicaSets of %s", name)
}

// kubectlStatus is what `kubectl rollout status` prints for the stored
// Deployment, using kubectl's own status viewer.
func (e *env) kubectlStatus(name string) (string, bool) {
	e.t.Helper()
	viewer, err := polymorphichelpers.StatusViewerFor(deploymentGK)
	if err != nil {
		e.t.Fatal(err)
	}
	d := e.get(name)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		e.t.Fatal(err)
	}
	msg, done, err := viewer.Status(&unstructured.Unstructured{Object: u}, 0)
	if err != nil {
		return err.Error(), false
	}
	return msg, done
}

// waitRolledOut waits until kubectl would report success.
func (e *env) waitRolledOut(name string) {
	e.t.Helper()
	ctltest.Eventually(e.t, waitTimeout, name+" rolled out", func() (bool, string) {
		msg, done := e.kubectlStatus(name)
		return done && strings.Contains(msg, "successfully rolled out"), msg
	})
}

func rsSummary(rss []*appsv1.ReplicaSet) string {
	var parts []string
	for _, rs := range rss {
		parts = append(parts, fmt.Sprintf("%s rev=%s spec=%d avail=%d", rs.Name, rs.Annotations[RevisionAnnotation], replicas(rs), rs.Status.AvailableReplicas))
	}
	return strings.Join(parts, "; ")
}
