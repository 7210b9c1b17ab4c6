// Command apiserver benchmarks portal's API server against baselines
// measured in the same run (this machine is shared and noisy): start time,
// memory, kubectl apply of many services, create throughput and mutating
// latency. It starts `portal server` itself on free loopback ports with a
// temporary data dir and removes both when done. Run it through `make
// bench`, which puts it in a fresh network namespace.
//
// Upstream kube-apiserver is not built here (it would need k8s.io/kubernetes
// and its staging replaces in a separate tools module); its published figure
// for create throughput is printed as the reference instead.
package main

import (
	"github.com/portal-net/portal/internal/netutil"

	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/portal-net/portal/internal/storage"
	"go.uber.org/zap"
)

var (
	portalBin = flag.String("portal", "bin/portal", "portal binary")
	nApply    = flag.Int("apply", 1000, "services in the kubectl apply file")
	nCreate   = flag.Int("creates", 2000, "objects per throughput run")
	workers   = flag.Int("workers", 16, "concurrent workers for throughput")
	clients   = flag.Int("clients", 50, "concurrent clients for latency")
	perClient = flag.Int("ops", 40, "mutations per latency client")
)

type row struct{ metric, portal, baseline, goal string }

var rows []row

func add(metric, portal, baseline, goal string) {
	rows = append(rows, row{metric, portal, baseline, goal})
	fmt.Fprintf(os.Stderr, "  %s: %s (baseline %s)\n", metric, portal, baseline)
}

type server struct {
	dir              string
	port, etcd, peer int
	cmd              *exec.Cmd
	done             chan struct{}
	log              bytes.Buffer
}

func freePorts(n int) []int {
	p, err := netutil.FreeLoopbackPorts(n)
	must(err)
	return p
}

// start runs the server and returns the time from exec to the first 200
// on /readyz.
func (s *server) start() time.Duration {
	s.log.Reset()
	s.cmd = exec.Command(*portalBin, "server", "--data-dir", s.dir, "--bind-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(s.port), "--etcd-client-port", fmt.Sprint(s.etcd), "--etcd-peer-port", fmt.Sprint(s.peer),
		// Thousands of services need more than the default /24.
		"--service-cidr", "10.0.0.0/16")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness probe
	t0 := time.Now()
	must(s.cmd.Start())
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	for time.Since(t0) < time.Minute {
		select {
		case <-s.done:
			fail("server exited:\n%s", s.log.String())
		default:
		}
		if resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", s.port)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				d := time.Since(t0)
				for i := 0; i < 200; i++ { // the kubeconfig follows readiness
					if _, err := os.Stat(filepath.Join(s.dir, "kubeconfig")); err == nil {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				return d
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	fail("server not ready in a minute:\n%s", s.log.String())
	return 0
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *server) rssMB() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	must(err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

func (s *server) client() kubernetes.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(s.dir, "kubeconfig"))
	must(err)
	cfg.QPS, cfg.Burst = 100000, 100000
	// Protobuf, as Kubernetes' own controllers talk to the API.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return kubernetes.NewForConfigOrDie(cfg)
}

func (s *server) etcdClient() *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", s.etcd)}, DialTimeout: 5 * time.Second})
	must(err)
	return c
}

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "portal-bench-")
	must(err)
	defer os.RemoveAll(dir)
	p := freePorts(3)
	s := &server{dir: dir, port: p[0], etcd: p[1], peer: p[2]}
	defer s.stop()
	cleanupOnFail = func() { s.stop(); os.RemoveAll(dir) }

	fmt.Fprintln(os.Stderr, "start-up")
	cold := s.start()
	time.Sleep(2 * time.Second)
	idle := s.rssMB()
	s.stop()
	warm := s.start()
	etcdStart := etcdAloneStart()
	add("start → first 200 on /readyz (cold data dir)", ms(cold), ms(etcdStart)+" (embedded etcd alone)", "< 1 s")
	add("start → first 200 on /readyz (restart)", ms(warm), ms(etcdStart)+" (embedded etcd alone)", "< 1 s")
	add("idle RSS after start", fmt.Sprintf("%.0f MB", idle), "-", "< 150 MB")

	c := s.client()
	ctx := context.Background()

	fmt.Fprintln(os.Stderr, "kubectl apply")
	svcFile := filepath.Join(dir, "services.yaml")
	cmFile := filepath.Join(dir, "configmaps.yaml")
	writeManifests(svcFile, cmFile, *nApply)
	applySvc := kubectlApply(s, svcFile)
	applyCM := kubectlApply(s, cmFile)
	add(fmt.Sprintf("kubectl apply -f of %d services (wall)", *nApply), secs(applySvc), secs(applyCM)+fmt.Sprintf(" (%d configmaps, no allocation)", *nApply), "-")
	runtimeSettle()
	add(fmt.Sprintf("RSS with %d services", *nApply), fmt.Sprintf("%.0f MB", s.rssMB()), "-", "-")

	fmt.Fprintln(os.Stderr, "create throughput")
	svcRate := throughput(*nCreate, *workers, func(i int) error {
		_, err := c.CoreV1().Services("tp").Create(ctx, benchService(fmt.Sprintf("tp-%05d", i)), metav1.CreateOptions{})
		return err
	}, func() {
		_, _ = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tp"}}, metav1.CreateOptions{})
	})
	cmRate := throughput(*nCreate, *workers, func(i int) error {
		_, err := c.CoreV1().ConfigMaps("tp").Create(ctx, benchConfigMap(fmt.Sprintf("tp-%05d", i)), metav1.CreateOptions{})
		return err
	}, nil)
	ec := s.etcdClient()
	defer ec.Close()
	value := strings.Repeat("x", 900)
	etcdRate := throughput(*nCreate, *workers, func(i int) error {
		_, err := ec.Put(ctx, fmt.Sprintf("/bench/raw/%05d", i), value)
		return err
	}, nil)
	add(fmt.Sprintf("service creates/s, %d client-go workers", *workers), fmt.Sprintf("%.0f/s", svcRate),
		fmt.Sprintf("%.0f/s raw etcd puts (%.0f%%); upstream kube-apiserver 240-276/s", etcdRate, 100*svcRate/etcdRate), "≥ 480/s")
	add(fmt.Sprintf("configmap creates/s, %d client-go workers", *workers), fmt.Sprintf("%.0f/s", cmRate),
		fmt.Sprintf("%.0f/s raw etcd puts (%.0f%%)", etcdRate, 100*cmRate/etcdRate), "≥ 480/s")

	fmt.Fprintln(os.Stderr, "mutating latency")
	p50, p99 := latency(*clients, *perClient, func(cl, i int) error {
		name := fmt.Sprintf("lat-%02d", cl)
		if i == 0 {
			_, err := c.CoreV1().ConfigMaps("tp").Create(ctx, benchConfigMap(name), metav1.CreateOptions{})
			return err
		}
		cm := benchConfigMap(name)
		cm.Data["n"] = fmt.Sprint(i)
		_, err := c.CoreV1().ConfigMaps("tp").Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	e50, e99 := latency(*clients, *perClient, func(cl, i int) error {
		_, err := ec.Put(ctx, fmt.Sprintf("/bench/lat/%02d", cl), fmt.Sprint(i)+value)
		return err
	})
	add(fmt.Sprintf("mutating latency p50 / p99, %d clients", *clients), ms(p50)+" / "+ms(p99), ms(e50)+" / "+ms(e99)+" (raw etcd puts)", "p99 < 100 ms")

	fmt.Println()
	fmt.Printf("| %s | %s | %s | %s |\n", "metric", "portal", "baseline (same run)", "goal")
	fmt.Println("|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s |\n", r.metric, r.portal, r.baseline, r.goal)
	}
}

// etcdAloneStart is the floor under portal's start: the same embedded
// etcd, started by portal's storage package on a fresh data dir.
func etcdAloneStart() time.Duration {
	dir, err := os.MkdirTemp("", "portal-bench-etcd-")
	must(err)
	defer os.RemoveAll(dir)
	p := freePorts(2)
	t0 := time.Now()
	b, err := storage.Start(context.Background(), storage.Config{DataDir: dir,
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", p[0]), PeerURL: fmt.Sprintf("http://127.0.0.1:%d", p[1]), Logger: zap.NewNop()})
	must(err)
	d := time.Since(t0)
	must(b.Close())
	return d
}

func runtimeSettle() { time.Sleep(2 * time.Second) }

func writeManifests(svcFile, cmFile string, n int) {
	var sb, cb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: bench-%04d\nspec:\n  selector:\n    app: bench-%04d\n  ports:\n  - port: 80\n    targetPort: 8080\n", i, i)
		fmt.Fprintf(&cb, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-%04d\ndata:\n  app: bench-%04d\n", i, i)
	}
	must(os.WriteFile(svcFile, []byte(sb.String()), 0o600))
	must(os.WriteFile(cmFile, []byte(cb.String()), 0o600))
}

func kubectlApply(s *server, file string) time.Duration {
	cmd := exec.Command(*portalBin, "kubectl", "apply", "-f", file)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(s.dir, "kubeconfig"))
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		fail("kubectl apply: %v\n%s", err, lastLines(string(out), 5))
	}
	return time.Since(t0)
}

func benchService(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": name},
		Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}
}

func benchConfigMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"app": name, "payload": strings.Repeat("y", 512)}}
}

// throughput runs n operations on w workers and returns operations/s.
func throughput(n, w int, op func(i int) error, setup func()) float64 {
	if setup != nil {
		setup()
	}
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	deadline := t0.Add(2 * time.Minute)
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if time.Now().After(deadline) {
					return
				}
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fail("throughput run: %v", firstErr)
	}
	return float64(n) / time.Since(t0).Seconds()
}

// latency runs ops sequential mutations on each of c concurrent clients
// and returns the p50 and p99 of all request latencies.
func latency(c, ops int, op func(client, i int) error) (time.Duration, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for k := 0; k < c; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				t0 := time.Now()
				if err := op(k, i); err != nil {
					fail("latency run: %v", err)
				}
				d := time.Since(t0)
				mu.Lock()
				all = append(all, d)
				mu.Unlock()
			}
		}(k)
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all[len(all)/2], all[len(all)*99/100]
}

func ms(d time.Duration) string   { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

var cleanupOnFail = func() {}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	cleanupOnFail()
	os.Exit(1)
}

func must(err error) {
	if err != nil {
		fail("%v", err)
	}
}
