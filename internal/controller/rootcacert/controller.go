// Package rootcacert publishes the cluster's CA certificate as the
// ConfigMap "kube-root-ca.crt" (key "ca.crt") in every namespace, as
// kube-controller-manager's root-ca-cert-publisher does: workloads that
// talk to the API server verify it with this bundle, and tools (the
// upstream e2e framework among them) wait for it in new namespaces. A
// deleted or edited ConfigMap is put back.
package rootcacert

import (
	"context"
	"errors"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/portal-net/portal/internal/controller/internal/runner"
)

// Name and Key are the ConfigMap and its key.
const (
	Name = "kube-root-ca.crt"
	Key  = "ca.crt"
	// descriptionAnnotation says what the ConfigMap is, as upstream does.
	descriptionAnnotation = "kubernetes.io/description"
	description           = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Controller keeps the ConfigMaps.
type Controller struct {
	client     kubernetes.Interface
	ca         string
	namespaces corelisters.NamespaceLister
	configMaps corelisters.ConfigMapLister
	loop       *runner.Loop
}

// New registers informer handlers on f; the caller starts f. caPEM is the
// bundle to publish.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, caPEM []byte) (*Controller, error) {
	if len(caPEM) == 0 {
		return nil, errors.New("root CA publisher: no CA certificate")
	}
	nsInf := f.Core().V1().Namespaces()
	cmInf := f.Core().V1().ConfigMaps()
	c := &Controller{client: client, ca: string(caPEM), namespaces: nsInf.Lister(), configMaps: cmInf.Lister()}
	c.loop = &runner.Loop{
		Name:   "root-ca-cert-publisher",
		Queue:  runner.NewQueue("root_ca_cert_publisher"),
		Synced: []cache.InformerSynced{nsInf.Informer().HasSynced, cmInf.Informer().HasSynced},
		Sync:   c.sync,
	}
	_, _ = nsInf.Informer().AddEventHandler(c.loop.NamespaceHandler())
	onCM := func(obj any) {
		if cm, ok := runner.Unwrap(obj).(*v1.ConfigMap); ok && cm.Name == Name {
			c.loop.Queue.Add(cm.Namespace)
		}
	}
	_, _ = cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { onCM(obj) },
		DeleteFunc: onCM,
	})
	return c, nil
}

// Run keeps the ConfigMaps until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

func (c *Controller) sync(ctx context.Context, ns string) error {
	if active, err := runner.ActiveNamespace(c.namespaces, ns); !active {
		return err
	}
	cm, err := c.configMaps.ConfigMaps(ns).Get(Name)
	switch {
	case apierrors.IsNotFound(err):
		_, err = c.client.CoreV1().ConfigMaps(ns).Create(ctx, &v1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: Name, Annotations: map[string]string{descriptionAnnotation: description}},
			Data:       map[string]string{Key: c.ca},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) {
			return nil // the cache catches up; or the namespace is terminating
		}
		return err
	case err != nil:
		return err
	}
	if len(cm.Data) == 1 && cm.Data[Key] == c.ca && len(cm.BinaryData) == 0 && cm.Annotations[descriptionAnnotation] == description {
		return nil
	}
	next := cm.DeepCopy()
	next.Data, next.BinaryData = map[string]string{Key: c.ca}, nil
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[descriptionAnnotation] = description
	_, err = c.client.CoreV1().ConfigMaps(ns).Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
