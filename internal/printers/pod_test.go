package printers

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodColumns(t *testing.T) {
	assertColumns(t, PodTable(), []col{
		{"Name", 0}, {"Ready", 0}, {"Status", 0}, {"Restarts", 0}, {"Age", 0},
		{"IP", 1}, {"Node", 1}, {"Nominated Node", 1}, {"Readiness Gates", 1},
	})
}

// podWith builds a pod named "p", 3 days old, with the given containers
// (names only) and status; mutate adjusts anything else.
func podWith(containers []string, status corev1.PodStatus, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", CreationTimestamp: ago(72 * time.Hour)},
		Status:     status,
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: c + ":1"})
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func running(name string, ready bool, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: ready, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Hour)}}}
}

func waiting(name, reason string, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, RestartCount: restarts, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func terminated(name, reason string, exitCode, signal int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exitCode, Signal: signal}}}
}

func withLastTermination(cs corev1.ContainerStatus, finished time.Duration) corev1.ContainerStatus {
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: ago(finished)}
	return cs
}

func cond(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: t, Status: s}
}

func withInit(names ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n})
		}
	}
}

func withSidecar(name string) func(*corev1.Pod) {
	always := corev1.ContainerRestartPolicyAlways
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: name, RestartPolicy: &always})
	}
}

func deleting(p *corev1.Pod) {
	ts := ago(5 * time.Second)
	p.DeletionTimestamp = &ts
}

func scheduled(p *corev1.Pod) {
	p.Spec.NodeName = "node-1"
	p.Status.PodIP = "10.244.1.7"
	p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.1.7"}, {IP: "fd00:10:244::7"}}
}

func TestPodRows(t *testing.T) {
	started := true
	tests := []struct {
		name string
		pod  *corev1.Pod
		// want holds READY, STATUS, RESTARTS; AGE is always 3d.
		want [3]string
		// wide holds IP, NODE, NOMINATED NODE, READINESS GATES when set.
		wide *[4]string
	}{
		{
			name: "running and ready",
			pod:  podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running("app", true, 0)}}, scheduled),
			want: [3]string{"1/1", "Running", "0"},
			wide: &[4]string{"10.244.1.7", "node-1", "<none>", "<none>"},
		},
		{
			name: "CrashLoopBackOff with last restart time",
			pod: podWith([]string{"app", "sidecar"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				withLastTermination(waiting("app", "CrashLoopBackOff", 5), 3*time.Minute),
				running("sidecar", true, 0),
			}}, scheduled),
			want: [3]string{"1/2", "CrashLoopBackOff", "5 (3m ago)"},
		},
		{
			name: "restarts without a known last termination show the bare count",
			pod:  podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running("app", true, 2)}}),
			want: [3]string{"1/1", "Running", "2"},
		},
		{
			name: "terminating",
			pod:  podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running("app", true, 0)}}, scheduled, deleting),
			want: [3]string{"1/1", "Terminating", "0"},
		},
		{
			name: "deleted pod that already finished keeps its final status",
			pod:  podWith([]string{"job"}, corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{terminated("job", "Completed", 0, 0)}}, deleting),
			want: [3]string{"0/1", "Completed", "0"},
		},
		{
			name: "deleted pod on a lost node is Unknown",
			pod:  podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"}, deleting),
			want: [3]string{"0/1", "Unknown", "0"},
		},
		{
			name: "pending and unscheduled with a nominated node",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending, NominatedNodeName: "node-2"}, func(p *corev1.Pod) {
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
			}),
			want: [3]string{"0/1", "Pending", "0"},
			wide: &[4]string{"<none>", "<none>", "node-2", "0/1"},
		},
		{
			name: "ContainerCreating",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{waiting("app", "ContainerCreating", 0)}}, func(p *corev1.Pod) {
				p.Spec.NodeName = "node-1"
			}),
			want: [3]string{"0/1", "ContainerCreating", "0"},
			wide: &[4]string{"<none>", "node-1", "<none>", "<none>"},
		},
		{
			name: "ErrImagePull",
			pod:  podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{waiting("app", "ErrImagePull", 0)}}),
			want: [3]string{"0/1", "ErrImagePull", "0"},
		},
		{
			name: "Completed",
			pod:  podWith([]string{"job"}, corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{terminated("job", "Completed", 0, 0)}}),
			want: [3]string{"0/1", "Completed", "0"},
		},
		{
			name: "Error",
			pod:  podWith([]string{"job"}, corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{terminated("job", "Error", 1, 0)}}),
			want: [3]string{"0/1", "Error", "0"},
		},
		{
			name: "terminated without reason shows the signal, else the exit code",
			pod: podWith([]string{"a", "b"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				terminated("a", "", 137, 9), terminated("b", "", 2, 0),
			}}),
			want: [3]string{"0/2", "Signal:9", "0"},
		},
		{
			name: "terminated without reason or signal",
			pod:  podWith([]string{"a"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{terminated("a", "", 2, 0)}}),
			want: [3]string{"0/1", "ExitCode:2", "0"},
		},
		{
			name: "one container completed while another still serves",
			pod: podWith([]string{"web", "migrate"}, corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionTrue)},
				ContainerStatuses: []corev1.ContainerStatus{running("web", true, 0), terminated("migrate", "Completed", 0, 0)}}),
			want: [3]string{"1/2", "Running", "0"},
		},
		{
			name: "one container completed, pod not ready",
			pod: podWith([]string{"web", "migrate"}, corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{cond(corev1.PodReady, corev1.ConditionFalse)},
				ContainerStatuses: []corev1.ContainerStatus{running("web", true, 0), terminated("migrate", "Completed", 0, 0)}}),
			want: [3]string{"1/2", "NotReady", "0"},
		},
		{
			name: "init container still running",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending,
				InitContainerStatuses: []corev1.ContainerStatus{running("init-db", false, 0)},
				ContainerStatuses:     []corev1.ContainerStatus{waiting("app", "PodInitializing", 0)}}, withInit("init-db")),
			want: [3]string{"0/1", "Init:0/1", "0"},
		},
		{
			name: "second init container pending after the first succeeded",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				terminated("a", "Completed", 0, 0), waiting("b", "PodInitializing", 0),
			}}, withInit("a", "b")),
			want: [3]string{"0/1", "Init:1/2", "0"},
		},
		{
			name: "init container crash looping counts its restarts",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				withLastTermination(waiting("init", "CrashLoopBackOff", 4), 90*time.Second),
			}}, withInit("init")),
			want: [3]string{"0/1", "Init:CrashLoopBackOff", "4 (90s ago)"},
		},
		{
			name: "init container failed with a reason, else signal, else exit code",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				terminated("init", "OOMKilled", 137, 0),
			}}, withInit("init")),
			want: [3]string{"0/1", "Init:OOMKilled", "0"},
		},
		{
			name: "init container failed with an exit code only",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				terminated("init", "", 3, 0),
			}}, withInit("init")),
			want: [3]string{"0/1", "Init:ExitCode:3", "0"},
		},
		{
			name: "init restarts stop counting once the pod runs",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{cond(corev1.PodInitialized, corev1.ConditionTrue)},
				InitContainerStatuses: []corev1.ContainerStatus{func() corev1.ContainerStatus {
					cs := terminated("init", "Completed", 0, 0)
					cs.RestartCount = 3
					return cs
				}()},
				ContainerStatuses: []corev1.ContainerStatus{running("app", true, 1)}}, withInit("init")),
			want: [3]string{"1/1", "Running", "1"},
		},
		{
			name: "sidecar counts towards ready and restarts",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{cond(corev1.PodInitialized, corev1.ConditionTrue)},
				InitContainerStatuses: []corev1.ContainerStatus{func() corev1.ContainerStatus {
					cs := withLastTermination(running("proxy", true, 2), 10*time.Minute)
					cs.Started = &started
					return cs
				}()},
				ContainerStatuses: []corev1.ContainerStatus{withLastTermination(running("app", true, 1), 20*time.Minute)}}, withSidecar("proxy")),
			want: [3]string{"2/2", "Running", "3 (10m ago)"},
		},
		{
			name: "scheduling gated",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated},
			}}),
			want: [3]string{"0/1", "SchedulingGated", "0"},
		},
		{
			name: "evicted uses status.reason",
			pod:  podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}),
			want: [3]string{"0/1", "Evicted", "0"},
		},
		{
			name: "readiness gates count the true conditions",
			pod: podWith([]string{"app"}, corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				cond("example.com/a", corev1.ConditionTrue), cond("example.com/b", corev1.ConditionFalse),
			}, ContainerStatuses: []corev1.ContainerStatus{running("app", true, 0)}}, scheduled, func(p *corev1.Pod) {
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/a"}, {ConditionType: "example.com/b"}}
			}),
			want: [3]string{"1/1", "Running", "0"},
			wide: &[4]string{"10.244.1.7", "node-1", "<none>", "1/2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cells(t, PodTable(), tt.pod)
			want := []interface{}{"p", tt.want[0], tt.want[1], tt.want[2], "3d"}
			if !reflect.DeepEqual(got[:5], want) {
				t.Errorf("cells mismatch\n got: %#v\nwant: %#v", got[:5], want)
			}
			if tt.wide != nil {
				wide := []interface{}{tt.wide[0], tt.wide[1], tt.wide[2], tt.wide[3]}
				if !reflect.DeepEqual(got[5:], wide) {
					t.Errorf("wide cells mismatch\n got: %#v\nwant: %#v", got[5:], wide)
				}
			}
		})
	}
}

func TestPodRowConditions(t *testing.T) {
	list := &corev1.PodList{Items: []corev1.Pod{
		*podWith([]string{"a"}, corev1.PodStatus{Phase: corev1.PodRunning}),
		*podWith([]string{"a"}, corev1.PodStatus{Phase: corev1.PodSucceeded}),
		*podWith([]string{"a"}, corev1.PodStatus{Phase: corev1.PodFailed}),
	}}
	table := convert(t, PodTable(), list, nil)
	if c := table.Rows[0].Conditions; c != nil {
		t.Errorf("running pod conditions = %v, want none", c)
	}
	for i, reason := range map[int]string{1: "Succeeded", 2: "Failed"} {
		c := table.Rows[i].Conditions
		if len(c) != 1 || c[0].Type != metav1.RowCompleted || c[0].Status != metav1.ConditionTrue || c[0].Reason != reason {
			t.Errorf("row %d conditions = %+v, want Completed/%s", i, c, reason)
		}
	}
}
