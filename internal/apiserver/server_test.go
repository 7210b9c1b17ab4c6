package apiserver_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/apiserver"
	"github.com/portal-net/portal/internal/apitest"
)

// testServer is a running API server with the clients the tests use.
type testServer struct {
	*apitest.Server
	client kubernetes.Interface
	cfg    *rest.Config
	dyn    dynamic.Interface
	url    string
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	s := apitest.Start(t)
	return &testServer{Server: s, client: s.Client, cfg: s.Config, dyn: dynamic.NewForConfigOrDie(s.Config), url: s.URL()}
}

// systemNamespaces exist in every cluster.
var systemNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

// insecureTLS is for anonymous probes of the health endpoints only.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec

func svc(name string, mutate ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func TestAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ts := startServer(t)
	ctx := context.Background()
	c := ts.client

	t.Run("health endpoints are public, resources are not", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}, Timeout: 5 * time.Second}
		for _, p := range []string{"/healthz", "/livez", "/readyz", "/version"} {
			resp, err := hc.Get(ts.url + p + "?verbose")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s anonymously: %d, want 200\n%s", p, resp.StatusCode, body)
			}
		}
		resp, err := hc.Get(ts.url + "/api/v1/secrets")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("anonymous list secrets: %d, want 403", resp.StatusCode)
		}
	})

	t.Run("bootstrap objects", func(t *testing.T) {
		k, err := c.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if k.Spec.ClusterIP != "10.0.0.1" || k.Spec.Ports[0].Port != 443 {
			t.Errorf("kubernetes service: %s %v", k.Spec.ClusterIP, k.Spec.Ports)
		}
		for _, ns := range systemNamespaces {
			if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
				t.Errorf("namespace %s: %v", ns, err)
			}
		}
		ip, err := c.NetworkingV1().IPAddresses().Get(ctx, "10.0.0.1", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("IPAddress of the kubernetes service: %v", err)
		}
		if ip.Spec.ParentRef == nil || ip.Spec.ParentRef.Name != "kubernetes" || ip.Spec.ParentRef.Resource != "services" {
			t.Errorf("parentRef %+v", ip.Spec.ParentRef)
		}
	})

	t.Run("protobuf clients see services, lists and watches", func(t *testing.T) {
		pc := rest.CopyConfig(ts.cfg)
		pc.ContentType = "application/vnd.kubernetes.protobuf"
		pc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		proto := kubernetes.NewForConfigOrDie(pc)
		w, err := proto.CoreV1().Services("default").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		created, err := proto.CoreV1().Services("default").Create(ctx, svc("proto"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if created.Spec.ClusterIP == "" || created.Spec.Ports[0].Protocol != corev1.ProtocolTCP {
			t.Errorf("created over protobuf: %+v", created.Spec)
		}
		list, err := proto.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) < 2 {
			t.Fatalf("list over protobuf: %v %d", err, len(list.Items))
		}
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-w.ResultChan():
				if s, ok := ev.Object.(*corev1.Service); ok && s.Name == "proto" {
					return
				}
			case <-deadline:
				t.Fatal("no watch event for the created service")
			}
		}
	})

	t.Run("watch-list streams initial events and a bookmark", func(t *testing.T) {
		w, err := c.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{
			SendInitialEvents:    ptr.To(true),
			AllowWatchBookmarks:  true,
			ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		seen := map[string]bool{}
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-w.ResultChan():
				switch ev.Type {
				case "ADDED":
					seen[ev.Object.(*corev1.Namespace).Name] = true
				case "BOOKMARK":
					m, _ := meta.Accessor(ev.Object)
					if m.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" {
						continue
					}
					for _, ns := range systemNamespaces {
						if !seen[ns] {
							t.Errorf("initial events lack namespace %s", ns)
						}
					}
					return
				}
			case <-deadline:
				t.Fatalf("no initial-events bookmark; saw %v", seen)
			}
		}
	})

	t.Run("topologyKeys are stored, served and warned about", func(t *testing.T) {
		gvr := schema.GroupVersionResource{Version: "v1", Resource: "services"}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "topo"},
			"spec": map[string]any{
				"selector":     map[string]any{"app": "x"},
				"ports":        []any{map[string]any{"port": int64(80)}},
				"topologyKeys": []any{"kubernetes.io/hostname", "*"},
			},
		}}
		got, err := ts.dyn.Resource(gvr).Namespace("default").Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"})
		if err != nil {
			t.Fatal(err)
		}
		keys, _, _ := unstructured.NestedStringSlice(got.Object, "spec", "topologyKeys")
		if strings.Join(keys, ",") != "kubernetes.io/hostname,*" {
			t.Errorf("topologyKeys = %v", keys)
		}
		// Over protobuf the keys survive too (field 16 of ServiceSpec).
		raw, err := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces/default/services/topo").
			SetHeader("Accept", "application/vnd.kubernetes.protobuf").DoRaw(ctx)
		if err != nil || !strings.Contains(string(raw), "kubernetes.io/hostname") {
			t.Errorf("protobuf body lacks topology keys: %v", err)
		}
		obj.SetName("topo-bad")
		_ = unstructured.SetNestedStringSlice(obj.Object, []string{"*", "kubernetes.io/hostname"}, "spec", "topologyKeys")
		_, err = ts.dyn.Resource(gvr).Namespace("default").Create(ctx, obj, metav1.CreateOptions{})
		assertInvalid(t, err, "spec.topologyKeys[0]")
	})

	t.Run("map-shaped ports is a decoding error naming spec.ports", func(t *testing.T) {
		body := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"sample-externalname"},"spec":{"type":"ClusterIP","ports":{"name":"hoge","protocol":"TCP","port":80,"targetPort":80}}}`
		err := c.CoreV1().RESTClient().Post().AbsPath("/api/v1/namespaces/default/services").
			SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(ctx).Error()
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "spec.ports") || strings.Contains(err.Error(), "ServiceSpec.ports") && !strings.Contains(err.Error(), "ServiceSpec.spec.ports") {
			t.Fatalf("got %v", err)
		}
		if _, err := c.CoreV1().Services("default").Get(ctx, "sample-externalname", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("stored anyway: %v", err)
		}
	})

	t.Run("update keeps allocated values and releases on type change", func(t *testing.T) {
		s, err := c.CoreV1().Services("default").Create(ctx, svc("np", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		port := s.Spec.Ports[0].NodePort
		// A re-applied manifest without clusterIP/nodePort keeps them.
		again := svc("np", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
		again.ResourceVersion = s.ResourceVersion
		u, err := c.CoreV1().Services("default").Update(ctx, again, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if u.Spec.ClusterIP != s.Spec.ClusterIP || u.Spec.Ports[0].NodePort != port {
			t.Fatalf("update lost allocations: %s/%d -> %s/%d", s.Spec.ClusterIP, port, u.Spec.ClusterIP, u.Spec.Ports[0].NodePort)
		}
		// NodePort -> ClusterIP gives the port back: another service can take it.
		u.Spec.Type = corev1.ServiceTypeClusterIP
		u.Spec.Ports[0].NodePort = 0
		u.Spec.ExternalTrafficPolicy = ""
		if _, err := c.CoreV1().Services("default").Update(ctx, u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		taker := svc("taker", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = port
		})
		if _, err := c.CoreV1().Services("default").Create(ctx, taker, metav1.CreateOptions{}); err != nil {
			t.Fatalf("released nodePort %d not reusable: %v", port, err)
		}
		// Deleting releases the ClusterIP.
		if err := c.CoreV1().Services("default").Delete(ctx, "np", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		reuse := svc("reuse", func(s *corev1.Service) { s.Spec.ClusterIP = u.Spec.ClusterIP })
		if _, err := waitCreate(ctx, c, reuse); err != nil {
			t.Fatalf("released clusterIP %s not reusable: %v", u.Spec.ClusterIP, err)
		}
	})

	t.Run("field selectors", func(t *testing.T) {
		list, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{FieldSelector: "spec.type=NodePort"})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			if s.Spec.Type != corev1.ServiceTypeNodePort {
				t.Errorf("field selector returned %s of type %s", s.Name, s.Spec.Type)
			}
		}
		if _, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{FieldSelector: "spec.bogus=x"}); !apierrors.IsBadRequest(err) {
			t.Errorf("unknown field label: %v, want 400", err)
		}
	})

	t.Run("pods: binding, log, graceful delete", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.28"}}}}
		p, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodPending || p.Spec.RestartPolicy != corev1.RestartPolicyAlways || p.Spec.DNSPolicy != corev1.DNSClusterFirst {
			t.Errorf("pod defaults: phase=%s restart=%s dns=%s", p.Status.Phase, p.Spec.RestartPolicy, p.Spec.DNSPolicy)
		}
		if tol := p.Spec.Tolerations; len(tol) != 2 || tol[0].Key != corev1.TaintNodeNotReady || tol[1].Key != corev1.TaintNodeUnreachable ||
			tol[1].TolerationSeconds == nil || *tol[1].TolerationSeconds != 300 {
			t.Errorf("pod tolerations %+v, want the default 300 s not-ready and unreachable ones", tol)
		}
		if p.Spec.Priority == nil || *p.Spec.Priority != 0 {
			t.Errorf("pod priority %v, want 0", p.Spec.Priority)
		}
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p1"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-a"}}
		if err := c.CoreV1().Pods("default").Bind(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.CoreV1().Pods("default").Bind(ctx, b, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("second bind: %v, want conflict", err)
		}
		list, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-a"})
		if err != nil || len(list.Items) != 1 {
			t.Fatalf("pods on node-a: %v %d", err, len(list.Items))
		}
		err = c.CoreV1().Pods("default").GetLogs("p1", &corev1.PodLogOptions{}).Do(ctx).Error()
		if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "node agent") {
			t.Errorf("logs: %v", err)
		}
		// Bound pods terminate gracefully: deletionTimestamp, still there.
		if err := c.CoreV1().Pods("default").Delete(ctx, "p1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		p, err = c.CoreV1().Pods("default").Get(ctx, "p1", metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 30 {
			t.Fatalf("graceful delete: %v %+v", err, p.ObjectMeta)
		}
	})

	t.Run("deployments: generation, status subresource, scale", func(t *testing.T) {
		labels := map[string]string{"app": "web"}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}}},
		}}
		d, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Generation != 1 || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || *d.Spec.RevisionHistoryLimit != 10 {
			t.Errorf("defaults: gen=%d %+v", d.Generation, d.Spec)
		}
		sc, err := c.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil || sc.Spec.Replicas != 1 || sc.Status.Selector != "app=web" {
			t.Fatalf("scale: %v %+v", err, sc)
		}
		sc.Spec.Replicas = 3
		if _, err := c.AppsV1().Deployments("default").UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		patch := []byte(`{"spec":{"replicas":4}}`)
		if _, err := c.AppsV1().Deployments("default").Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}, "scale"); err != nil {
			t.Fatalf("patch scale: %v", err)
		}
		d, _ = c.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if *d.Spec.Replicas != 4 || d.Generation != 3 {
			t.Errorf("after scaling: replicas=%d generation=%d", *d.Spec.Replicas, d.Generation)
		}
		// Status writes go through /status and leave spec alone.
		d.Status.Replicas, d.Spec.Replicas = 4, ptr.To[int32](9)
		d2, err := c.AppsV1().Deployments("default").UpdateStatus(ctx, d, metav1.UpdateOptions{})
		if err != nil || d2.Status.Replicas != 4 || *d2.Spec.Replicas != 4 {
			t.Fatalf("status update: %v", err)
		}
		// And the main endpoint ignores status.
		d2.Status.Replicas = 0
		d3, err := c.AppsV1().Deployments("default").Update(ctx, d2, metav1.UpdateOptions{})
		if err != nil || d3.Status.Replicas != 4 {
			t.Fatalf("main update changed status: %v", err)
		}
	})

	t.Run("namespace deletion is two-phase", func(t *testing.T) {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "temp"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.CoreV1().Namespaces().Delete(ctx, "temp", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ns, err := c.CoreV1().Namespaces().Get(ctx, "temp", metav1.GetOptions{})
		if err != nil || ns.Status.Phase != corev1.NamespaceTerminating {
			t.Fatalf("after delete: %v %+v", err, ns.Status)
		}
		ns.Spec.Finalizers = nil
		if _, err := c.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CoreV1().Namespaces().Get(ctx, "temp", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("finalized namespace still there: %v", err)
		}
		if err := c.CoreV1().Namespaces().Delete(ctx, "kube-system", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("delete kube-system: %v", err)
		}
	})

	t.Run("server-side apply of a service", func(t *testing.T) {
		manifest := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"ssa"},"spec":{"type":"NodePort","selector":{"app":"a"},"ports":[{"port":3000}]}}`
		for i := 0; i < 2; i++ {
			raw, err := c.CoreV1().RESTClient().Patch(types.ApplyPatchType).AbsPath("/api/v1/namespaces/default/services/ssa").
				Param("fieldManager", "test").Body([]byte(manifest)).DoRaw(ctx)
			if err != nil {
				t.Fatalf("apply %d: %v", i, err)
			}
			var s corev1.Service
			if err := json.Unmarshal(raw, &s); err != nil || s.Spec.Ports[0].NodePort == 0 {
				t.Fatalf("apply %d: %v %s", i, err, raw)
			}
		}
	})

	t.Run("tables for kubectl get", func(t *testing.T) {
		tbl := getTable(ctx, t, c, "/api/v1/namespaces/default/services")
		var names []string
		for _, col := range tbl.ColumnDefinitions {
			names = append(names, col.Name)
		}
		if got := strings.Join(names, ","); !strings.HasPrefix(got, "Name,Type,Cluster-IP,External-IP,Port(s),Age") {
			t.Errorf("columns %s", got)
		}
	})
}

func waitCreate(ctx context.Context, c kubernetes.Interface, s *corev1.Service) (*corev1.Service, error) {
	var last error
	for i := 0; i < 50; i++ {
		out, err := c.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{})
		if err == nil {
			return out, nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return nil, last
}

func assertInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) || !apierrors.IsInvalid(err) {
		t.Fatalf("want 422, got %v", err)
	}
	for _, cause := range se.ErrStatus.Details.Causes {
		if cause.Field == field {
			return
		}
	}
	t.Fatalf("no cause for %s in %v", field, se.ErrStatus.Details.Causes)
}

func TestRestartKeepsStateAndBootstraps(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	cfg := apitest.Config(t)
	var ip string
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		srv, err := apiserver.New(ctx, cfg)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		select {
		case <-srv.Ready():
		case err := <-done:
			cancel()
			t.Fatalf("round %d: server stopped: %v", round, err)
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatalf("round %d: not ready (restart must bootstrap again)", round)
		}
		c := kubernetes.NewForConfigOrDie(srv.LoopbackConfig())
		if round == 0 {
			s, err := c.CoreV1().Services("default").Create(ctx, svc("keep"), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ip = s.Spec.ClusterIP
		} else {
			s, err := c.CoreV1().Services("default").Get(ctx, "keep", metav1.GetOptions{})
			if err != nil || s.Spec.ClusterIP != ip {
				t.Fatalf("after restart: %v %v", err, s)
			}
		}
		cancel()
		<-done
	}
}
