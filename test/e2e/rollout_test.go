package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
)

// startNodes registers fake Ready nodes on s whose agents (played by this
// test process through the API) run every pod bound to them, until the test
// ends. The real node agent replaces them in a later issue.
func startNodes(t *testing.T, s *server, names ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := apitest.StartFakeNodes(ctx, s.client(), 200*time.Millisecond, names...); err != nil {
		t.Fatal(err)
	}
}

// Seed 001's deployment, then the rollout commands a user runs on it.
func TestSeed001DeploymentAndRollout(t *testing.T) {
	s := startServer(t)
	startNodes(t, s, "node-1", "node-2", "node-3")
	s.mustKubectl("create", "-f", seed("001-services.yaml"))
	if out := s.mustKubectl("apply", "-f", seed("001-deployment.yaml")); !strings.Contains(out, "deployment.apps/example-app-deployment created") {
		t.Errorf("apply: %s", out)
	}
	status := func() {
		t.Helper()
		out := s.mustKubectl("rollout", "status", "deployment/example-app-deployment", "--timeout=60s")
		if !strings.Contains(out, `deployment "example-app-deployment" successfully rolled out`) {
			t.Fatalf("rollout status: %s", out)
		}
	}
	status()

	// NAME READY STATUS RESTARTS AGE, as the seed shows.
	po := s.mustKubectl("get", "po")
	name := regexp.MustCompile(`^example-app-deployment-\d+-[a-z0-9]{5}$`)
	rows := 0
	for _, l := range strings.Split(strings.TrimSpace(po), "\n")[1:] {
		f := fields(l)
		if len(f) != 5 || !name.MatchString(f[0]) || f[1] != "1/1" || f[2] != "Running" || f[3] != "0" {
			t.Errorf("pod row %q", l)
		}
		rows++
	}
	if rows != 3 || strings.Join(fields(strings.Split(po, "\n")[0]), " ") != "NAME READY STATUS RESTARTS AGE" {
		t.Errorf("kubectl get po:\n%s", po)
	}
	deploy := s.mustKubectl("get", "deploy")
	if d := row(deploy, "example-app-deployment"); len(d) != 5 || d[1] != "3/3" || d[2] != "3" || d[3] != "3" {
		t.Errorf("kubectl get deploy:\n%s", deploy)
	}
	waitFor(t, 10*time.Second, "3 endpoints on port 3000", func() bool {
		ep, _, _ := s.kubectl("get", "ep", "example-app", "-o", "jsonpath={range .subsets[*].addresses[*]}{.ip}{\" \"}{end}{.subsets[0].ports[0].port}")
		return len(strings.Fields(ep)) == 4 && strings.HasSuffix(ep, " 3000")
	})

	s.mustKubectl("set", "image", "deployment/example-app-deployment", "example=example/example:v2")
	status()
	history := s.mustKubectl("rollout", "history", "deployment/example-app-deployment")
	for _, rev := range []string{"1", "2"} {
		if row(history, rev) == nil {
			t.Errorf("rollout history lacks revision %s:\n%s", rev, history)
		}
	}
	if rs := s.mustKubectl("get", "rs"); strings.Count(rs, "example-app-deployment-") != 2 {
		t.Errorf("kubectl get rs after one update:\n%s", rs)
	}
	if out := s.mustKubectl("rollout", "undo", "deployment/example-app-deployment"); !strings.Contains(out, "rolled back") {
		t.Errorf("rollout undo: %s", out)
	}
	status()
	images := s.mustKubectl("get", "po", "-o", "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}")
	if strings.Count(images, "example/example:v1.0-SNAPSHOT") != 3 || strings.Contains(images, "v2") {
		t.Errorf("after undo the pods run:\n%s", images)
	}

	if out := s.mustKubectl("rollout", "pause", "deployment/example-app-deployment"); !strings.Contains(out, "paused") {
		t.Errorf("rollout pause: %s", out)
	}
	s.mustKubectl("set", "image", "deployment/example-app-deployment", "example=example/example:v3")
	time.Sleep(time.Second)
	if images := s.mustKubectl("get", "po", "-o", "jsonpath={.items[*].spec.containers[0].image}"); strings.Contains(images, "v3") {
		t.Errorf("a paused deployment rolled: %s", images)
	}
	if out := s.mustKubectl("rollout", "resume", "deployment/example-app-deployment"); !strings.Contains(out, "resumed") {
		t.Errorf("rollout resume: %s", out)
	}
	status()
	if out := s.mustKubectl("rollout", "restart", "deployment/example-app-deployment"); !strings.Contains(out, "restarted") {
		t.Errorf("rollout restart: %s", out)
	}
	status()

	s.mustKubectl("delete", "deployment", "example-app-deployment")
	waitFor(t, 30*time.Second, "pods and replica sets collected", func() bool {
		po, _, _ := s.kubectl("get", "po,rs", "-o", "name")
		return strings.TrimSpace(po) == ""
	})
}

const statefulAndDaemon = `apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  clusterIP: None
  selector:
    app: nginx
  ports:
  - port: 80
    name: web
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
          name: web
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      containers:
      - name: agent
        image: busybox
        command: ["sleep", "3600"]
`

func TestStatefulSetAndDaemonSetWithKubectl(t *testing.T) {
	s := startServer(t)
	startNodes(t, s, "node-1", "node-2", "node-3")
	if _, errOut, err := s.kubectlIn(statefulAndDaemon, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s", err, errOut)
	}
	if out := s.mustKubectl("rollout", "status", "statefulset/web", "--timeout=60s"); !strings.Contains(out, "roll out complete") {
		t.Errorf("rollout status sts: %s", out)
	}
	if out := s.mustKubectl("rollout", "status", "daemonset/agent", "--timeout=60s"); !strings.Contains(out, `daemon set "agent" successfully rolled out`) {
		t.Errorf("rollout status ds: %s", out)
	}
	// web-0 and web-1 with the hostname and subdomain DNS needs.
	names := s.mustKubectl("get", "po", "-l", "app=nginx", "-o", `jsonpath={range .items[*]}{.metadata.name}/{.spec.hostname}.{.spec.subdomain} {end}`)
	if strings.TrimSpace(names) != "web-0/web-0.nginx web-1/web-1.nginx" {
		t.Errorf("statefulset pods: %q", names)
	}
	if sts := row(s.mustKubectl("get", "sts"), "web"); len(sts) < 2 || sts[1] != "2/2" {
		t.Errorf("kubectl get sts: %v", sts)
	}
	ds := row(s.mustKubectl("get", "ds"), "agent")
	// NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE
	if len(ds) < 6 || ds[1] != "3" || ds[2] != "3" || ds[3] != "3" || ds[4] != "3" || ds[5] != "3" {
		t.Errorf("kubectl get ds: %v", ds)
	}
	nodes := s.mustKubectl("get", "po", "-l", "app=agent", "-o", `jsonpath={range .items[*]}{.spec.nodeName} {end}`)
	if f := strings.Fields(nodes); len(f) != 3 || f[0] == f[1] || f[1] == f[2] || f[0] == f[2] {
		t.Errorf("daemon pods on nodes %q, want one on each", nodes)
	}
	// Headless service: endpoints carry the pods' hostnames.
	waitFor(t, 10*time.Second, "headless endpoints with hostnames", func() bool {
		h, _, _ := s.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=nginx", "-o", `jsonpath={.items[*].endpoints[*].hostname}`)
		return strings.Contains(h, "web-0") && strings.Contains(h, "web-1")
	})
}
