package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portal-net/portal/internal/config"
)

func testConfig() config.Agent {
	c := config.DefaultAgent()
	c.NodeName, c.NodeIP, c.Zone, c.Region = "node-a", "192.0.2.7", "zone-1", "region-1"
	c.Labels = map[string]string{"team": "net"}
	c.PodCIDR = "10.42.3.0/24"
	return c
}

func TestDesiredNode(t *testing.T) {
	n := desiredNode(testConfig(), nodeInfo{})
	want := map[string]string{
		corev1.LabelHostname: "node-a", corev1.LabelTopologyZone: "zone-1", corev1.LabelTopologyRegion: "region-1",
		corev1.LabelOSStable: "linux", "team": "net",
	}
	for k, v := range want {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if n.Spec.PodCIDR != "10.42.3.0/24" || len(n.Spec.PodCIDRs) != 1 {
		t.Errorf("podCIDR %q %v", n.Spec.PodCIDR, n.Spec.PodCIDRs)
	}
}

func TestNodeStatus(t *testing.T) {
	c := testConfig()
	m := machine(c)
	t0 := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	old := []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: t0},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue, LastTransitionTime: t0},
	}
	now := metav1.Now()
	st := nodeStatus(c, m, old, now)
	if st.Addresses[0] != (corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.0.2.7"}) {
		t.Errorf("addresses %v", st.Addresses)
	}
	if st.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("kubelet port %d", st.DaemonEndpoints.KubeletEndpoint.Port)
	}
	if st.NodeInfo.KubeletVersion != KubeletVersion || st.NodeInfo.OperatingSystem != "linux" {
		t.Errorf("nodeInfo %+v", st.NodeInfo)
	}
	if q := st.Capacity[corev1.ResourcePods]; q.Value() != 110 {
		t.Errorf("pods capacity %v", q.String())
	}
	if q := st.Capacity[corev1.ResourceCPU]; q.Value() < 1 {
		t.Errorf("cpu capacity %v", q.String())
	}
	for _, cond := range st.Conditions {
		switch cond.Type {
		case corev1.NodeReady:
			if cond.Status != corev1.ConditionTrue || !cond.LastTransitionTime.Equal(&t0) || !cond.LastHeartbeatTime.Equal(&now) {
				t.Errorf("Ready kept its transition time and got a heartbeat: %+v", cond)
			}
		case corev1.NodeMemoryPressure:
			if cond.Status != corev1.ConditionFalse || !cond.LastTransitionTime.Equal(&now) {
				t.Errorf("MemoryPressure changed status, so its transition time moves: %+v", cond)
			}
		}
	}
}

func TestWithImageDefaults(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}}
	got := withImageDefaults([]string{"A=1"}, pod, "cluster.local")
	if len(got) != 3 || got[0] != "PATH="+DefaultPath || got[1] != "HOSTNAME=web-1" || got[2] != "A=1" {
		t.Errorf("defaults: %q", got)
	}
	got = withImageDefaults([]string{"PATH=/x", "HOSTNAME=h"}, pod, "cluster.local")
	if len(got) != 2 {
		t.Errorf("a container's own PATH and HOSTNAME win: %q", got)
	}
}

func TestWriteFilesAndHostPath(t *testing.T) {
	dir := t.TempDir()
	err := writeFiles(filepath.Join(dir, "v"), map[string][]byte{"a": []byte("1"), "sub/b": []byte("2")}, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "v", "sub", "b")); string(b) != "2" {
		t.Errorf("sub/b = %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "v", "a")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if err := writeFiles(dir, map[string][]byte{"../escape": nil}, 0o644); err == nil {
		t.Error("a path with .. must be refused")
	}
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	p := filepath.Join(dir, "made", "here")
	if _, err := prepareHostPath(&corev1.HostPathVolumeSource{Path: p, Type: &dirOrCreate}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Errorf("DirectoryOrCreate did not create %s", p)
	}
	file := corev1.HostPathFile
	if _, err := prepareHostPath(&corev1.HostPathVolumeSource{Path: p, Type: &file}); err == nil {
		t.Error("type File on a directory must fail")
	}
	if _, err := pick(map[string][]byte{"k": nil}, []corev1.KeyToPath{{Key: "missing", Path: "x"}}, "configmap"); err == nil {
		t.Error("an item with a missing key must fail")
	}
}
