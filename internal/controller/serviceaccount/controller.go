// Package serviceaccount keeps a ServiceAccount named "default" in every
// namespace, as kube-controller-manager's serviceaccount controller does:
// pods without spec.serviceAccountName run as it, and tools (the upstream
// e2e framework among them) wait for it before using a new namespace. A
// deleted "default" account comes back; terminating namespaces are left
// alone.
package serviceaccount

import (
	"context"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/portal-net/portal/internal/controller/internal/runner"
)

// DefaultName is the account every namespace gets.
const DefaultName = "default"

// Controller creates the default ServiceAccount of each namespace.
type Controller struct {
	client     kubernetes.Interface
	namespaces corelisters.NamespaceLister
	accounts   corelisters.ServiceAccountLister
	loop       *runner.Loop
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory) *Controller {
	nsInf := f.Core().V1().Namespaces()
	saInf := f.Core().V1().ServiceAccounts()
	c := &Controller{client: client, namespaces: nsInf.Lister(), accounts: saInf.Lister()}
	c.loop = &runner.Loop{
		Name:   "serviceaccount",
		Queue:  runner.NewQueue("serviceaccount"),
		Synced: []cache.InformerSynced{nsInf.Informer().HasSynced, saInf.Informer().HasSynced},
		Sync:   c.sync,
	}
	_, _ = nsInf.Informer().AddEventHandler(c.loop.NamespaceHandler())
	_, _ = saInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if sa, ok := runner.Unwrap(obj).(*v1.ServiceAccount); ok && sa.Name == DefaultName {
				c.loop.Queue.Add(sa.Namespace)
			}
		},
	})
	return c
}

// Run keeps the accounts until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

func (c *Controller) sync(ctx context.Context, ns string) error {
	if active, err := runner.ActiveNamespace(c.namespaces, ns); !active {
		return err
	}
	if _, err := c.accounts.ServiceAccounts(ns).Get(DefaultName); err == nil {
		return nil
	}
	_, err := c.client.CoreV1().ServiceAccounts(ns).Create(ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DefaultName}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) {
		// Forbidden: the namespace started terminating meanwhile.
		return nil
	}
	return err
}
