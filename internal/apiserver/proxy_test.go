package apiserver_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// pods/proxy and services/proxy reach the pod (here a server on loopback
// standing in for a pod address) with the rest of the path.
func TestProxySubresources(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	ts := startServer(t)
	c := ts.client
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "web", Image: "nginx", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}}}}
	pod, err = c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIP, pod.Status.PodIPs = "127.0.0.1", []corev1.PodIP{{IP: "127.0.0.1"}}
	if _, err := c.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (string, error) {
		b, err := c.CoreV1().RESTClient().Get().AbsPath(path).Param("x", "1").DoRaw(ctx)
		return string(b), err
	}
	for _, name := range []string{"web:" + strconv.Itoa(port), "web:http", "http:web:" + strconv.Itoa(port)} {
		got, err := get("/api/v1/namespaces/default/pods/" + name + "/proxy/results/a")
		if err != nil || got != "GET /results/a?x=1" {
			t.Errorf("pods/%s/proxy: %q %v", name, got, err)
		}
	}
	if _, err := get("/api/v1/namespaces/default/pods/web:nope/proxy/"); err == nil {
		t.Error("an unknown port name was proxied")
	}

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(port))}}}}
	if _, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := get("/api/v1/namespaces/default/services/web:http/proxy/"); err == nil {
		t.Error("a service without endpoints was proxied")
	}
	// Endpoint selection is proxy.endpointsFor's test: Endpoints may not
	// hold a loopback address, and this test has no other to serve on.
}
