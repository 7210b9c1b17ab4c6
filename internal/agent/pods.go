package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/agent/podenv"
	"github.com/portal-net/portal/internal/agent/podstatus"
	"github.com/portal-net/portal/internal/podruntime"
	"github.com/portal-net/portal/internal/scheduler/fit"
)

// syncPod drives one pod towards its spec: sandbox, init containers in
// order, then the containers (started, restarted with back-off, or
// restarted after a failed liveness probe), and reports the status. It
// returns true once a deleted pod is gone.
func (a *Agent) syncPod(ctx context.Context, w *podWorker, pod *corev1.Pod) (bool, error) {
	if pod.DeletionTimestamp != nil {
		return a.terminate(ctx, w, pod)
	}
	sb, err := a.rt.Status(ctx, pod.UID)
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if errors.Is(err, podruntime.ErrNotFound) {
		if terminal {
			return false, nil // finished before; nothing to run
		}
		// Pods asking for host ports are admitted one at a time, so two
		// of them can never both take the same port.
		if fit.HasHostPorts(pod) {
			a.admitMu.Lock()
			if reason, msg := a.admit(pod); reason != "" {
				a.admitMu.Unlock()
				a.reject(ctx, pod, reason, msg)
				return false, nil
			}
			sb, err = a.runSandbox(ctx, pod)
			a.admitMu.Unlock()
		} else {
			sb, err = a.runSandbox(ctx, pod)
		}
		if err != nil {
			a.event(pod, "", corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			a.updateStatus(ctx, w, pod, nil)
			return false, err
		}
	} else if err != nil {
		return false, err
	}
	if terminal {
		// A finished pod runs nothing and gives back its IP; its files
		// stay for kubectl logs until the pod is deleted.
		a.probes.RemovePod(pod.UID)
		if err := a.stopAll(ctx, w, pod, sb, 0); err != nil {
			return false, err
		}
		return false, a.rt.StopSandbox(ctx, pod.UID)
	}

	if initDone := a.syncInit(ctx, w, pod, sb); initDone {
		for i := range pod.Spec.Containers {
			a.syncContainer(ctx, w, pod, sb, &pod.Spec.Containers[i], false)
		}
	}
	if sb, err = a.rt.Status(ctx, pod.UID); err != nil {
		return false, err
	}
	a.updateStatus(ctx, w, pod, sb)
	return false, nil
}

func (a *Agent) runSandbox(ctx context.Context, pod *corev1.Pod) (*podruntime.SandboxStatus, error) {
	hostname, fqdn := podenv.Hostname(pod, a.cfg.ClusterDomain)
	resolv, err := podenv.ResolvConf(pod, podenv.DNSConfig{ClusterDNS: a.cfg.ClusterDNS, ClusterDomain: a.cfg.ClusterDomain, HostResolvConf: a.hostResolv})
	if err != nil {
		return nil, err
	}
	cfg := podruntime.SandboxConfig{
		UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name,
		Hostname: hostname, HostNetwork: pod.Spec.HostNetwork, HostIPC: pod.Spec.HostIPC, ResolvConf: resolv,
	}
	if pod.Spec.HostNetwork {
		nodeHosts, _ := os.ReadFile("/etc/hosts")
		cfg.Hosts = podenv.HostNetworkHosts(pod, nodeHosts)
	} else {
		cfg.HostsFor = func(ip net.IP) []byte {
			return podenv.Hosts(pod, []string{ip.String()}, hostname, fqdn)
		}
	}
	return a.rt.RunSandbox(ctx, cfg)
}

// podIPs is the pod's address: its own, or the node's for hostNetwork.
func (a *Agent) podIPs(pod *corev1.Pod, sb *podruntime.SandboxStatus) []string {
	if pod.Spec.HostNetwork {
		return []string{a.cfg.NodeIP}
	}
	if sb == nil || sb.IP == nil {
		return nil
	}
	return []string{sb.IP.String()}
}

func findStatus(sb *podruntime.SandboxStatus, name string) *podruntime.ContainerStatus {
	if sb == nil {
		return nil
	}
	for i := range sb.Containers {
		if sb.Containers[i].Name == name {
			return &sb.Containers[i]
		}
	}
	return nil
}

// syncInit runs init containers one after another; it reports whether
// all of them completed.
func (a *Agent) syncInit(ctx context.Context, w *podWorker, pod *corev1.Pod, sb *podruntime.SandboxStatus) bool {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		rs := findStatus(sb, c.Name)
		if rs != nil && rs.State == podruntime.StateExited && rs.ExitCode == 0 {
			continue
		}
		a.syncContainer(ctx, w, pod, sb, c, true)
		return false
	}
	return true
}

// syncContainer starts a container that never ran, restarts one that
// exited (policy and back-off permitting) or failed its liveness probe.
func (a *Agent) syncContainer(ctx context.Context, w *podWorker, pod *corev1.Pod, sb *podruntime.SandboxStatus, c *corev1.Container, isInit bool) {
	rs := findStatus(sb, c.Name)
	w.mu.Lock()
	kind, unhealthy := w.unhealthy[c.Name]
	delete(w.unhealthy, c.Name)
	w.mu.Unlock()
	switch {
	case rs == nil:
		a.startContainer(ctx, w, pod, sb, c, 0)
	case rs.State == podruntime.StateRunning:
		a.ensureProbing(w, pod, sb, c, rs)
		if !unhealthy {
			return
		}
		a.event(pod, c.Name, corev1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", c.Name, strings.ToLower(kind.String()))
		a.probes.ContainerStopped(pod.UID, c.Name)
		if err := a.rt.StopContainer(ctx, pod.UID, c.Name, gracePeriod(pod)); err != nil {
			klog.ErrorS(err, "Stopping unhealthy container", "pod", klog.KObj(pod), "container", c.Name)
			return
		}
		st, err := a.rt.Status(ctx, pod.UID)
		if err != nil {
			return
		}
		if rs = findStatus(st, c.Name); rs == nil || rs.State != podruntime.StateExited {
			return
		}
		fallthrough
	default: // exited
		a.probes.ContainerStopped(pod.UID, c.Name)
		if !podstatus.ContainerShouldRestart(pod, c, isInit, int32(rs.ExitCode)) {
			return
		}
		key := string(pod.UID) + "/" + c.Name
		now := time.Now()
		if in, left := a.back.InBackoff(key, now); in {
			msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", a.currentDelay(key, now, left), c.Name, pod.Name, pod.Namespace, pod.UID)
			if a.setWaiting(w, c.Name, "CrashLoopBackOff", msg) {
				a.event(pod, c.Name, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
			}
			w.kickAfter(left + 10*time.Millisecond)
			return
		}
		a.back.Next(key, now)
		w.mu.Lock()
		w.lastTerm[c.Name] = terminatedState(pod, c.Name, rs)
		w.mu.Unlock()
		a.startContainer(ctx, w, pod, sb, c, rs.Attempt+1)
	}
}

// currentDelay is the back-off delay in force (kubelet prints it).
func (a *Agent) currentDelay(key string, now time.Time, left time.Duration) time.Duration {
	d := a.cfg.CrashBackoffInitial
	for d < left && d < a.cfg.CrashBackoffMax {
		d *= 2
	}
	return d
}

// setWaiting records a container's waiting state; it reports whether the
// reason changed (so events are not repeated every sync).
func (a *Agent) setWaiting(w *podWorker, name, reason, msg string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.waiting[name]
	w.waiting[name] = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	return old == nil || old.Reason != reason || old.Message != msg && reason != "CrashLoopBackOff"
}

func (a *Agent) startContainer(ctx context.Context, w *podWorker, pod *corev1.Pod, sb *podruntime.SandboxStatus, c *corev1.Container, attempt int) {
	cfg, err := a.containerConfig(ctx, pod, sb, c, attempt)
	if err != nil {
		if a.setWaiting(w, c.Name, "CreateContainerConfigError", err.Error()) {
			a.event(pod, c.Name, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		}
		return
	}
	if attempt == 0 {
		a.event(pod, c.Name, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
	}
	err = a.rt.StartContainer(ctx, pod.UID, cfg)
	var ie *podruntime.ImageError
	switch {
	case errors.As(err, &ie):
		if a.setWaiting(w, c.Name, ie.Reason, ie.Message) {
			a.event(pod, c.Name, corev1.EventTypeWarning, "Failed", "Error: %s: %s", ie.Reason, ie.Message)
		}
		return
	case err != nil:
		if a.setWaiting(w, c.Name, "RunContainerError", err.Error()) {
			a.event(pod, c.Name, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		}
		return
	}
	w.mu.Lock()
	delete(w.waiting, c.Name)
	w.mu.Unlock()
	a.event(pod, c.Name, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	a.event(pod, c.Name, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	ips := a.podIPs(pod, sb)
	ip := ""
	if len(ips) > 0 {
		ip = ips[0]
	}
	w.mu.Lock()
	w.probed[c.Name] = attempt
	w.mu.Unlock()
	a.probes.ContainerStarted(pod, c.Name, ip, time.Now())
}

// ensureProbing tells the prober about a running container it has not
// seen (after an agent restart).
func (a *Agent) ensureProbing(w *podWorker, pod *corev1.Pod, sb *podruntime.SandboxStatus, c *corev1.Container, rs *podruntime.ContainerStatus) {
	w.mu.Lock()
	att, ok := w.probed[c.Name]
	if ok && att == rs.Attempt {
		w.mu.Unlock()
		return
	}
	w.probed[c.Name] = rs.Attempt
	w.mu.Unlock()
	ip := ""
	if ips := a.podIPs(pod, sb); len(ips) > 0 {
		ip = ips[0]
	}
	ready, started := reportedProbeResults(pod, c.Name, rs.StartedAt)
	a.probes.ContainerAdopted(pod, c.Name, ip, rs.StartedAt, ready, started)
}

// reportedProbeResults is what the pod's status last said about this run
// of the container (the one that started at startedAt): an agent restart
// keeps a ready container ready instead of taking it out of its services
// until the next probe.
func reportedProbeResults(pod *corev1.Pod, name string, startedAt time.Time) (ready, started bool) {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != name || cs.State.Running == nil {
			continue
		}
		// The API keeps whole seconds.
		if d := cs.State.Running.StartedAt.Sub(startedAt); d <= -time.Second || d >= time.Second {
			return false, false
		}
		return cs.Ready, cs.Started != nil && *cs.Started
	}
	return false, false
}

// containerConfig resolves what the runtime needs: environment (service
// links, downward API, config maps, secrets), command, mounts, limits.
func (a *Agent) containerConfig(ctx context.Context, pod *corev1.Pod, sb *podruntime.SandboxStatus, c *corev1.Container, attempt int) (podruntime.ContainerConfig, error) {
	all, err := a.services.List(everything)
	if err != nil {
		return podruntime.ContainerConfig{}, err
	}
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	svcEnv := podenv.ServiceEnv(podenv.Services(all, pod.Namespace, links))
	ips := a.podIPs(pod, sb)
	ip := ""
	if len(ips) > 0 {
		ip = ips[0]
	}
	env, err := podenv.ContainerEnv(pod, c, svcEnv, apiSources{ctx: ctx, a: a}, ip, a.cfg.NodeIP, ips, a.mach.capacity)
	if err != nil {
		return podruntime.ContainerConfig{}, err
	}
	env = withImageDefaults(env, pod, a.cfg.ClusterDomain)
	cmd, args := podenv.ExpandCommand(c.Command, c.Args, env)
	mounts, err := a.mounts(ctx, pod, c)
	if err != nil {
		return podruntime.ContainerConfig{}, err
	}
	cfg := podruntime.ContainerConfig{
		Name: c.Name, Image: c.Image, Command: cmd, Args: args, Env: env,
		WorkingDir: c.WorkingDir, Mounts: mounts, Attempt: attempt, Stdin: c.Stdin, TTY: c.TTY,
		SharePID: pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace,
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		cfg.MemoryLimitBytes = q.Value()
	}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		cfg.CPULimitMillis = q.MilliValue()
	}
	return cfg, nil
}

// DefaultPath is the PATH of a container whose spec sets none, as the
// usual images (and so container runtimes) provide it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// withImageDefaults puts the variables an image and runtime provide
// (PATH, HOSTNAME) before the container's own, unless it sets them.
func withImageDefaults(env []string, pod *corev1.Pod, domain string) []string {
	has := func(k string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	}
	var out []string
	if !has("PATH") {
		out = append(out, "PATH="+DefaultPath)
	}
	if !has("HOSTNAME") {
		h, _ := podenv.Hostname(pod, domain)
		out = append(out, "HOSTNAME="+h)
	}
	return append(out, env...)
}

// apiSources reads config maps and secrets for env vars straight from
// the API (few, small reads per container start; no cache to go stale).
type apiSources struct {
	ctx context.Context
	a   *Agent
}

func (s apiSources) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	cm, err := s.a.client.CoreV1().ConfigMaps(ns).Get(s.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(corev1.Resource("configmap"), name)
	}
	return cm, err
}

func (s apiSources) Secret(ns, name string) (*corev1.Secret, error) {
	sec, err := s.a.client.CoreV1().Secrets(ns).Get(s.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(corev1.Resource("secret"), name)
	}
	return sec, err
}

func gracePeriod(pod *corev1.Pod) time.Duration {
	if pod.DeletionGracePeriodSeconds != nil {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// terminate runs preStop hooks, stops every container within the grace
// period, reports the final status, removes the sandbox and confirms the
// deletion to the API server (grace 0, only for this pod's UID).
func (a *Agent) terminate(ctx context.Context, w *podWorker, pod *corev1.Pod) (bool, error) {
	a.probes.UpdatePod(pod)
	sb, err := a.rt.Status(ctx, pod.UID)
	if err != nil && !errors.Is(err, podruntime.ErrNotFound) {
		return false, err
	}
	if sb != nil {
		if err := a.stopAll(ctx, w, pod, sb, gracePeriod(pod)); err != nil {
			return false, err
		}
		if sb, err = a.rt.Status(ctx, pod.UID); err == nil {
			a.updateStatus(ctx, w, pod, sb)
		}
	}
	a.probes.RemovePod(pod.UID)
	if err := a.rt.RemoveSandbox(ctx, pod.UID); err != nil {
		return false, err
	}
	_ = os.RemoveAll(a.volumeDir(pod.UID))
	err = a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: ptr.To(pod.UID)},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return false, err
	}
	a.back.Reset(string(pod.UID))
	return true, nil
}

// stopAll stops the pod's running containers in parallel, each after its
// preStop hook, all within grace.
func (a *Agent) stopAll(ctx context.Context, w *podWorker, pod *corev1.Pod, sb *podruntime.SandboxStatus, grace time.Duration) error {
	deadline := time.Now().Add(grace)
	var wg sync.WaitGroup
	errs := make(chan error, len(sb.Containers))
	for _, cs := range sb.Containers {
		if cs.State != podruntime.StateRunning {
			continue
		}
		c := podenv.FindContainer(pod, cs.Name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.event(pod, cs.Name, corev1.EventTypeNormal, "Killing", "Stopping container %s", cs.Name)
			if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 {
				hctx, cancel := context.WithDeadline(ctx, deadline)
				if err := a.runHook(hctx, pod, c, sb, c.Lifecycle.PreStop); err != nil {
					a.event(pod, cs.Name, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
				}
				cancel()
			}
			a.probes.ContainerStopped(pod.UID, cs.Name)
			left := time.Until(deadline)
			if left < 0 {
				left = 0
			}
			if err := a.rt.StopContainer(ctx, pod.UID, cs.Name, left); err != nil {
				errs <- fmt.Errorf("stop container %s: %w", cs.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// cleanup removes what is left of a pod that is gone from the API.
func (a *Agent) cleanup(ctx context.Context, w *podWorker) {
	a.probes.RemovePod(w.uid)
	if err := a.rt.RemoveSandbox(ctx, w.uid); err != nil {
		klog.ErrorS(err, "Removing the sandbox of a deleted pod", "pod", klog.KRef(w.namespace, w.name))
	}
	_ = os.RemoveAll(a.volumeDir(w.uid))
	a.back.Reset(string(w.uid))
}

func containerID(uid types.UID, name string, attempt int) string {
	return fmt.Sprintf("portal://%s-%s-%d", uid, name, attempt)
}

func terminatedState(pod *corev1.Pod, name string, rs *podruntime.ContainerStatus) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{
		ExitCode:    int32(rs.ExitCode),
		Reason:      rs.Reason,
		StartedAt:   metav1.NewTime(rs.StartedAt),
		FinishedAt:  metav1.NewTime(rs.FinishedAt),
		ContainerID: containerID(pod.UID, name, rs.Attempt),
	}
	if t.Reason == "" {
		t.Reason = "Error"
		if rs.ExitCode == 0 {
			t.Reason = "Completed"
		}
	}
	return t
}

// containerStatuses builds the v1 statuses of containers from the
// runtime, the agent's own records and the prober.
func (a *Agent) containerStatuses(w *podWorker, pod *corev1.Pod, sb *podruntime.SandboxStatus, cs []corev1.Container, old []corev1.ContainerStatus, isInit bool) []corev1.ContainerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]corev1.ContainerStatus, 0, len(cs))
	for _, c := range cs {
		s := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "portal://" + c.Image, Started: ptr.To(false)}
		var prev *corev1.ContainerStatus
		for i := range old {
			if old[i].Name == c.Name {
				prev = &old[i]
			}
		}
		if lt := w.lastTerm[c.Name]; lt != nil {
			s.LastTerminationState.Terminated = lt
		} else if prev != nil {
			s.LastTerminationState = prev.LastTerminationState
		}
		rs := findStatus(sb, c.Name)
		waiting := w.waiting[c.Name]
		switch {
		case rs == nil:
			if prev != nil {
				s.RestartCount = prev.RestartCount
			}
			if waiting != nil {
				s.State.Waiting = waiting
			} else {
				s.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
				if isInit {
					s.State.Waiting.Reason = "PodInitializing"
				}
			}
		case rs.State == podruntime.StateRunning:
			s.RestartCount = int32(rs.Attempt)
			s.ContainerID = containerID(pod.UID, c.Name, rs.Attempt)
			s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(rs.StartedAt)}
			s.Ready = a.probes.Ready(pod.UID, c.Name)
			s.Started = ptr.To(a.probes.Started(pod.UID, c.Name))
		default:
			s.RestartCount = int32(rs.Attempt)
			s.ContainerID = containerID(pod.UID, c.Name, rs.Attempt)
			term := terminatedState(pod, c.Name, rs)
			if waiting != nil && waiting.Reason == "CrashLoopBackOff" {
				s.State.Waiting = waiting
				s.LastTerminationState = corev1.ContainerState{Terminated: term}
			} else {
				s.State.Terminated = term
			}
			s.Ready = isInit && rs.ExitCode == 0
		}
		out = append(out, s)
	}
	return out
}

// updateStatus computes the pod status and writes it when it changed.
func (a *Agent) updateStatus(ctx context.Context, w *podWorker, pod *corev1.Pod, sb *podruntime.SandboxStatus) {
	in := podstatus.Inputs{
		HostIP:            a.cfg.NodeIP,
		PodIPs:            a.podIPs(pod, sb),
		InitStatuses:      a.containerStatuses(w, pod, sb, pod.Spec.InitContainers, pod.Status.InitContainerStatuses, true),
		ContainerStatuses: a.containerStatuses(w, pod, sb, pod.Spec.Containers, pod.Status.ContainerStatuses, false),
		SandboxReady:      sb != nil,
		Now:               time.Now(),
		Terminal:          pod.DeletionTimestamp != nil,
	}
	if sb != nil {
		in.StartTime = sb.CreatedAt
	}
	status := podstatus.Compute(pod, in)
	if apiequality.Semantic.DeepEqual(status, pod.Status) {
		return
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := pod.DeepCopy()
		cur.Status = status
		_, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			fresh, gerr := a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			if fresh.UID != pod.UID {
				return nil
			}
			pod = fresh
			status = podstatus.Compute(fresh, in)
		}
		return err
	})
	if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
		klog.ErrorS(err, "Updating pod status", "pod", klog.KObj(pod))
		w.kickAfter(time.Second)
	}
}

func (a *Agent) volumeDir(uid types.UID) string {
	return filepath.Join(a.cfg.RootDir, "volumes", string(uid))
}
