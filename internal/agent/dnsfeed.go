package agent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/portal-net/portal/internal/feed"
)

// reflectedSources feed the DNS records of `--dns-only`, where nothing
// else needs the objects: the records' own compact form is the process's
// one copy of the cluster. The sources run until ctx ends.
func reflectedSources(client kubernetes.Interface, pods bool) dnsSources {
	nameOnly := func(any) struct{} { return struct{}{} }
	svcs := client.CoreV1().Services(metav1.NamespaceAll)
	nss := client.CoreV1().Namespaces()
	src := dnsSources{
		services: feed.NewReflected(feed.ListWatch(client, svcs.List, svcs.Watch), &corev1.Service{}, nameOnly,
			func(n feed.Name, _ struct{}) any {
				return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name}}
			}),
		slices: feed.EndpointSlices(client),
		namespaces: feed.NewReflected(feed.ListWatch(client, nss.List, nss.Watch), &corev1.Namespace{}, nameOnly,
			func(n feed.Name, _ struct{}) any {
				return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}
			}),
	}
	if pods {
		ps := client.CoreV1().Pods(metav1.NamespaceAll)
		src.pods = feed.NewReflected(feed.ListWatch(client, ps.List, ps.Watch), &corev1.Pod{}, nameOnly,
			func(n feed.Name, _ struct{}) any {
				return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name}}
			})
	}
	return src
}

// start starts the sources that are reflectors (after every subscription).
func (s dnsSources) start(ctx context.Context) {
	for _, src := range []feed.Source{s.services, s.slices, s.namespaces, s.pods} {
		if st, ok := src.(interface{ Start(context.Context) }); ok {
			st.Start(ctx)
		}
	}
}
