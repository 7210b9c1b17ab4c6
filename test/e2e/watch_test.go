package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

func TestWatchSeesCreateUpdateDelete(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// kubectl get svc -w, read line by line.
	cmd := exec.CommandContext(ctx, *portalBin, "kubectl", "get", "svc", "-w", "--output-watch-events")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	// A client-go informer at the same time.
	c := s.client()
	events := make(chan string, 100)
	f := informers.NewSharedInformerFactory(c, 0)
	inf := f.Core().V1().Services().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if obj.(*corev1.Service).Name == "watched" {
				events <- "add"
			}
		},
		UpdateFunc: func(_, obj any) {
			if obj.(*corev1.Service).Name == "watched" {
				events <- "update"
			}
		},
		DeleteFunc: func(obj any) {
			if svc, ok := obj.(*corev1.Service); ok && svc.Name == "watched" {
				events <- "delete"
			}
		},
	})
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	waitLine(t, lines, "kubernetes") // the initial list is printed first

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "watched"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}}}
	created, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "ADDED", "watched")
	waitEvent(t, events, "add")

	created.Labels = map[string]string{"changed": "yes"}
	if _, err := c.CoreV1().Services("default").Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "MODIFIED", "watched")
	waitEvent(t, events, "update")

	if err := c.CoreV1().Services("default").Delete(ctx, "watched", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "DELETED", "watched")
	waitEvent(t, events, "delete")
}

func waitLine(t *testing.T, lines <-chan string, words ...string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl get -w ended before a line with %v", words)
			}
			all := true
			for _, w := range words {
				all = all && strings.Contains(l, w)
			}
			if all {
				return
			}
		case <-timeout:
			t.Fatalf("no line with %v from kubectl get -w", words)
		}
	}
}

func waitEvent(t *testing.T, events <-chan string, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-events:
			if e == want {
				return
			}
		case <-timeout:
			t.Fatalf("informer saw no %s", want)
		}
	}
}
