package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/version"
)

// KubeletVersion is the Kubernetes version the agent reports in
// nodeInfo.kubeletVersion: the API it implements.
const KubeletVersion = "v1.37.2"

// nodeInfo describes this machine as the Node status reports it.
type nodeInfo struct {
	capacity corev1.ResourceList
	info     corev1.NodeSystemInfo
}

func machine(c config.Agent) nodeInfo {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(c.MaxPods), resource.DecimalSI),
	}
	if n, ok := diskBytes(c.RootDir); ok {
		capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(n, resource.BinarySI)
	}
	return nodeInfo{capacity: capacity, info: corev1.NodeSystemInfo{
		MachineID:               readTrim("/etc/machine-id"),
		BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           readTrim("/proc/sys/kernel/osrelease"),
		OSImage:                 osImage(),
		ContainerRuntimeVersion: "portal://" + version.Version,
		KubeletVersion:          KubeletVersion,
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
	}}
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func osImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// desiredNode is the Node this agent registers.
func desiredNode(c config.Agent, m nodeInfo) *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:   c.NodeName,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
	if c.Zone != "" {
		labels[corev1.LabelTopologyZone] = c.Zone
	}
	if c.Region != "" {
		labels[corev1.LabelTopologyRegion] = c.Region
	}
	for k, v := range c.Labels {
		labels[k] = v
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.NodeName, Labels: labels}}
	if c.PodCIDR != "" {
		n.Spec.PodCIDR = c.PodCIDR
		n.Spec.PodCIDRs = []string{c.PodCIDR}
	}
	return n
}

// nodeStatus is the status the agent reports; old conditions keep their
// transition times while their status does not change.
func nodeStatus(c config.Agent, m nodeInfo, old []corev1.NodeCondition, now metav1.Time) corev1.NodeStatus {
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		nc := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, o := range old {
			if o.Type == t && o.Status == s {
				nc.LastTransitionTime = o.LastTransitionTime
			}
		}
		return nc
	}
	hostname, _ := os.Hostname()
	addrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: c.NodeIP}}
	if hostname != "" {
		addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: hostname})
	}
	return corev1.NodeStatus{
		Capacity:    m.capacity,
		Allocatable: m.capacity,
		Addresses:   addrs,
		NodeInfo:    m.info,
		Phase:       "",
		DaemonEndpoints: corev1.NodeDaemonEndpoints{
			KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(c.Port)},
		},
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "portal agent is posting ready status"),
		},
	}
}

// registerNode creates the Node or brings an existing one up to date
// (labels this agent owns, status), and returns it.
func registerNode(ctx context.Context, cs kubernetes.Interface, c config.Agent, m nodeInfo) (*corev1.Node, error) {
	want := desiredNode(c, m)
	var node *corev1.Node
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 5 * time.Second, Steps: 1 << 30},
		func(ctx context.Context) (bool, error) {
			n, err := cs.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
			if err == nil {
				node = n
				return true, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				klog.InfoS("Registering node failed; retrying", "node", c.NodeName, "err", err)
				return false, nil
			}
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur, err := cs.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
				if err != nil {
					return err
				}
				changed := false
				if cur.Labels == nil {
					cur.Labels = map[string]string{}
				}
				for k, v := range want.Labels {
					if cur.Labels[k] != v {
						cur.Labels[k] = v
						changed = true
					}
				}
				if want.Spec.PodCIDR != "" && cur.Spec.PodCIDR == "" {
					cur.Spec.PodCIDR, cur.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
					changed = true
				}
				if changed {
					cur, err = cs.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{})
					if err != nil {
						return err
					}
				}
				node = cur
				return nil
			})
			if err != nil {
				klog.InfoS("Updating node failed; retrying", "node", c.NodeName, "err", err)
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		return nil, err
	}
	if err := updateNodeStatus(ctx, cs, c, m); err != nil {
		return nil, err
	}
	klog.InfoS("Node registered", "node", c.NodeName, "ip", c.NodeIP)
	return node, nil
}

func updateNodeStatus(ctx context.Context, cs kubernetes.Interface, c config.Agent, m nodeInfo) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := cs.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status = nodeStatus(c, m, cur.Status.Conditions, metav1.Now())
		_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// heartbeat renews the node Lease every LeaseRenewInterval and the node
// status every NodeStatusUpdateFrequency until ctx ends. Failures (control
// plane down) are retried at the next tick; pods are not affected.
func heartbeat(ctx context.Context, cs kubernetes.Interface, c config.Agent, m nodeInfo, nodeUID func() string) {
	leaseT := time.NewTicker(c.LeaseRenewInterval)
	statusT := time.NewTicker(c.NodeStatusUpdateFrequency)
	defer leaseT.Stop()
	defer statusT.Stop()
	renew := func() {
		if err := renewLease(ctx, cs, c, nodeUID()); err != nil && ctx.Err() == nil {
			klog.V(2).InfoS("Renewing node lease failed", "node", c.NodeName, "err", err)
		}
	}
	renew()
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaseT.C:
			renew()
		case <-statusT.C:
			if err := updateNodeStatus(ctx, cs, c, m); err != nil && ctx.Err() == nil {
				klog.V(2).InfoS("Updating node status failed", "node", c.NodeName, "err", err)
			}
		}
	}
}

func renewLease(ctx context.Context, cs kubernetes.Interface, c config.Agent, nodeUID string) error {
	leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, c.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: c.NodeName, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(c.NodeName),
				LeaseDurationSeconds: ptr.To(int32(c.LeaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		if nodeUID != "" {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: c.NodeName, UID: types.UID(nodeUID)}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity = ptr.To(c.NodeName)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(c.LeaseDuration / time.Second))
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// nodeIP is the InternalIP of a Node, or nil.
func nodeIP(n *corev1.Node) net.IP {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return net.ParseIP(a.Address)
		}
	}
	return nil
}

func podCIDR(n *corev1.Node) (*net.IPNet, error) {
	if n.Spec.PodCIDR == "" {
		return nil, nil
	}
	_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("node %s: spec.podCIDR: %w", n.Name, err)
	}
	return cidr, nil
}
