package podstatus

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func running(name string, ready bool) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, Ready: ready, Started: ptr(true),
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}}
}

func exited(name string, code int32) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, Started: ptr(false),
		State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
}

// crashLooping is a container waiting to be restarted after exiting.
func crashLooping(name string, code int32) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, RestartCount: 1,
		State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
}

func initDone(name string) v1.ContainerStatus {
	s := exited(name, 0)
	s.Ready = true
	return s
}

func ptr[T any](v T) *T { return &v }

func newPod(policy v1.RestartPolicy, containers ...string) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Generation: 3},
		Spec:       v1.PodSpec{RestartPolicy: policy},
		Status:     v1.PodStatus{Phase: v1.PodPending},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: c, Image: "img-" + c})
	}
	return p
}

func withInit(p *v1.Pod, names ...string) *v1.Pod {
	for _, n := range names {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "img-" + n})
	}
	return p
}

func withSidecar(p *v1.Pod, name string) *v1.Pod {
	p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: name, RestartPolicy: ptr(v1.ContainerRestartPolicyAlways)})
	return p
}

func TestPhase(t *testing.T) {
	A, O, N := v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever
	tests := []struct {
		name     string
		pod      *v1.Pod
		init     []v1.ContainerStatus
		regular  []v1.ContainerStatus
		terminal bool
		want     v1.PodPhase
	}{
		{"no statuses yet", newPod(A, "a"), nil, nil, false, v1.PodPending},
		{"one running one not started", newPod(A, "a", "b"), nil, []v1.ContainerStatus{running("a", true)}, false, v1.PodPending},
		{"all running", newPod(A, "a", "b"), nil, []v1.ContainerStatus{running("a", true), running("b", false)}, false, v1.PodRunning},

		{"Always, exit 0", newPod(A, "a"), nil, []v1.ContainerStatus{exited("a", 0)}, false, v1.PodRunning},
		{"Always, exit 1", newPod(A, "a"), nil, []v1.ContainerStatus{exited("a", 1)}, false, v1.PodRunning},
		{"OnFailure, exit 0", newPod(O, "a"), nil, []v1.ContainerStatus{exited("a", 0)}, false, v1.PodSucceeded},
		{"OnFailure, exit 1", newPod(O, "a"), nil, []v1.ContainerStatus{exited("a", 1)}, false, v1.PodRunning},
		{"OnFailure, crash looping", newPod(O, "a"), nil, []v1.ContainerStatus{crashLooping("a", 2)}, false, v1.PodRunning},
		{"Never, exit 0", newPod(N, "a"), nil, []v1.ContainerStatus{exited("a", 0)}, false, v1.PodSucceeded},
		{"Never, exit 1", newPod(N, "a"), nil, []v1.ContainerStatus{exited("a", 1)}, false, v1.PodFailed},
		{"Never, one of two failed", newPod(N, "a", "b"), nil, []v1.ContainerStatus{exited("a", 0), exited("b", 137)}, false, v1.PodFailed},
		{"Never, one still running", newPod(N, "a", "b"), nil, []v1.ContainerStatus{exited("a", 1), running("b", true)}, false, v1.PodRunning},
		{"OnFailure, one of two failed", newPod(O, "a", "b"), nil, []v1.ContainerStatus{exited("a", 0), exited("b", 1)}, false, v1.PodRunning},

		{"terminal Always, all exit 0", newPod(A, "a"), nil, []v1.ContainerStatus{exited("a", 0)}, true, v1.PodSucceeded},
		{"terminal Always, exit 143", newPod(A, "a"), nil, []v1.ContainerStatus{exited("a", 143)}, true, v1.PodFailed},
		{"terminal, still running", newPod(A, "a"), nil, []v1.ContainerStatus{running("a", true)}, true, v1.PodRunning},

		{"init pending", withInit(newPod(A, "a"), "i1", "i2"), []v1.ContainerStatus{initDone("i1")}, nil, false, v1.PodPending},
		{"init running", withInit(newPod(A, "a"), "i1"), []v1.ContainerStatus{running("i1", false)}, nil, false, v1.PodPending},
		{"init done, regular running", withInit(newPod(A, "a"), "i1"), []v1.ContainerStatus{initDone("i1")}, []v1.ContainerStatus{running("a", true)}, false, v1.PodRunning},
		{"init failed, Never", withInit(newPod(N, "a"), "i1"), []v1.ContainerStatus{exited("i1", 1)}, nil, false, v1.PodFailed},
		{"init failed, OnFailure retries", withInit(newPod(O, "a"), "i1"), []v1.ContainerStatus{crashLooping("i1", 1)}, nil, false, v1.PodPending},
		{"init failed, Always retries", withInit(newPod(A, "a"), "i1"), []v1.ContainerStatus{exited("i1", 1)}, nil, false, v1.PodPending},

		{"sidecar not started", withSidecar(newPod(A, "a"), "side"), []v1.ContainerStatus{{Name: "side", Started: ptr(false), State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}, nil, false, v1.PodPending},
		{"sidecar started, app running", withSidecar(newPod(A, "a"), "side"), []v1.ContainerStatus{running("side", true)}, []v1.ContainerStatus{running("a", true)}, false, v1.PodRunning},
		{"Never: app done, sidecar still running", withSidecar(newPod(N, "a"), "side"), []v1.ContainerStatus{running("side", true)}, []v1.ContainerStatus{exited("a", 0)}, false, v1.PodRunning},
		{"Never: app done, sidecar stopped", withSidecar(newPod(N, "a"), "side"), []v1.ContainerStatus{exited("side", 137)}, []v1.ContainerStatus{exited("a", 0)}, false, v1.PodSucceeded},
		{"sidecar restarting after app ran", withSidecar(newPod(A, "a"), "side"),
			[]v1.ContainerStatus{{Name: "side", Started: ptr(false), State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}},
			[]v1.ContainerStatus{running("a", true)}, false, v1.PodRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(tt.pod, Inputs{InitStatuses: tt.init, ContainerStatuses: tt.regular, Terminal: tt.terminal, Now: t1})
			if got.Phase != tt.want {
				t.Fatalf("phase = %s, want %s", got.Phase, tt.want)
			}
		})
	}
}

func TestPhaseContainerRestartRules(t *testing.T) {
	pod := newPod(v1.RestartPolicyNever, "a")
	pod.Spec.Containers[0].RestartPolicy = ptr(v1.ContainerRestartPolicyNever)
	pod.Spec.Containers[0].RestartPolicyRules = []v1.ContainerRestartRule{{
		Action:    v1.ContainerRestartRuleActionRestart,
		ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}},
	}}
	for code, want := range map[int32]v1.PodPhase{42: v1.PodRunning, 1: v1.PodFailed, 0: v1.PodSucceeded} {
		got := Compute(pod, Inputs{ContainerStatuses: []v1.ContainerStatus{exited("a", code)}, Now: t1})
		if got.Phase != want {
			t.Errorf("exit %d: phase %s, want %s", code, got.Phase, want)
		}
	}
}

func TestTerminalPhaseSticks(t *testing.T) {
	pod := newPod(v1.RestartPolicyAlways, "a")
	pod.Status.Phase = v1.PodFailed
	pod.Status.Reason, pod.Status.Message = "Evicted", "The node was low on resource: memory."
	got := Compute(pod, Inputs{ContainerStatuses: []v1.ContainerStatus{running("a", true)}, Now: t1})
	if got.Phase != v1.PodFailed || got.Reason != "Evicted" || got.Message != pod.Status.Message {
		t.Fatalf("got phase %s reason %q message %q; a failed pod must stay failed with its reason", got.Phase, got.Reason, got.Message)
	}

	pod.Status.Phase = v1.PodRunning
	got = Compute(pod, Inputs{ContainerStatuses: []v1.ContainerStatus{running("a", true)}, Now: t1})
	if got.Reason != "Evicted" {
		t.Fatalf("reason should pass through while the phase is unchanged, got %q", got.Reason)
	}
	pod.Status.Phase = v1.PodPending
	got = Compute(pod, Inputs{ContainerStatuses: []v1.ContainerStatus{running("a", true)}, Now: t1})
	if got.Reason != "" || got.Message != "" {
		t.Fatalf("reason should clear when the phase changes, got %q %q", got.Reason, got.Message)
	}
}

type condView struct {
	Status  v1.ConditionStatus
	Reason  string
	Message string
}

func conds(s v1.PodStatus) map[v1.PodConditionType]condView {
	m := map[v1.PodConditionType]condView{}
	for _, c := range s.Conditions {
		m[c.Type] = condView{c.Status, c.Reason, c.Message}
	}
	return m
}

func TestConditions(t *testing.T) {
	T, F := v1.ConditionTrue, v1.ConditionFalse
	tests := []struct {
		name    string
		pod     *v1.Pod
		in      Inputs
		want    map[v1.PodConditionType]condView
		wantLen int
	}{
		{
			name: "nothing started",
			pod:  withInit(newPod(v1.RestartPolicyAlways, "a", "b"), "i1"),
			in:   Inputs{},
			want: map[v1.PodConditionType]condView{
				v1.PodReadyToStartContainers: {F, "", ""},
				v1.PodInitialized:            {F, ReasonContainersNotInitialized, "containers with incomplete status: [i1]"},
				v1.ContainersReady:           {F, ReasonContainersNotReady, "containers with unready status: [a b]"},
				v1.PodReady:                  {F, ReasonContainersNotReady, "containers with unready status: [a b]"},
				v1.PodScheduled:              {T, "", ""},
			},
		},
		{
			name: "one of two ready",
			pod:  newPod(v1.RestartPolicyAlways, "a", "b"),
			in:   Inputs{SandboxReady: true, ContainerStatuses: []v1.ContainerStatus{running("b", false), running("a", true)}},
			want: map[v1.PodConditionType]condView{
				v1.PodReadyToStartContainers: {T, "", ""},
				v1.PodInitialized:            {T, "", ""},
				v1.ContainersReady:           {F, ReasonContainersNotReady, "containers with unready status: [b]"},
				v1.PodReady:                  {F, ReasonContainersNotReady, "containers with unready status: [b]"},
				v1.PodScheduled:              {T, "", ""},
			},
		},
		{
			name: "all ready, sidecar counts",
			pod:  withSidecar(withInit(newPod(v1.RestartPolicyAlways, "a"), "i1"), "side"),
			in: Inputs{SandboxReady: true, InitStatuses: []v1.ContainerStatus{initDone("i1"), running("side", true)},
				ContainerStatuses: []v1.ContainerStatus{running("a", true)}},
			want: map[v1.PodConditionType]condView{
				v1.PodReadyToStartContainers: {T, "", ""},
				v1.PodInitialized:            {T, "", ""},
				v1.ContainersReady:           {T, "", ""},
				v1.PodReady:                  {T, "", ""},
				v1.PodScheduled:              {T, "", ""},
			},
		},
		{
			name: "unready sidecar keeps pod unready",
			pod:  withSidecar(newPod(v1.RestartPolicyAlways, "a"), "side"),
			in:   Inputs{SandboxReady: true, InitStatuses: []v1.ContainerStatus{running("side", false)}, ContainerStatuses: []v1.ContainerStatus{running("a", true)}},
			want: map[v1.PodConditionType]condView{
				v1.PodReadyToStartContainers: {T, "", ""},
				v1.PodInitialized:            {T, "", ""},
				v1.ContainersReady:           {F, ReasonContainersNotReady, "containers with unready status: [side]"},
				v1.PodReady:                  {F, ReasonContainersNotReady, "containers with unready status: [side]"},
				v1.PodScheduled:              {T, "", ""},
			},
		},
		{
			name: "succeeded",
			pod:  withInit(newPod(v1.RestartPolicyNever, "a"), "i1"),
			in:   Inputs{SandboxReady: false, InitStatuses: []v1.ContainerStatus{initDone("i1")}, ContainerStatuses: []v1.ContainerStatus{exited("a", 0)}},
			want: map[v1.PodConditionType]condView{
				v1.PodReadyToStartContainers: {F, "", ""},
				v1.PodInitialized:            {T, ReasonPodCompleted, ""},
				v1.ContainersReady:           {F, ReasonPodCompleted, ""},
				v1.PodReady:                  {F, ReasonPodCompleted, ""},
				v1.PodScheduled:              {T, "", ""},
			},
		},
		{
			name: "failed",
			pod:  newPod(v1.RestartPolicyNever, "a"),
			in:   Inputs{ContainerStatuses: []v1.ContainerStatus{exited("a", 1)}},
			want: map[v1.PodConditionType]condView{
				v1.PodReadyToStartContainers: {F, "", ""},
				v1.PodInitialized:            {T, "", ""},
				v1.ContainersReady:           {F, ReasonPodFailed, ""},
				v1.PodReady:                  {F, ReasonPodFailed, ""},
				v1.PodScheduled:              {T, "", ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = t1
			got := Compute(tt.pod, tt.in)
			if c := conds(got); !reflect.DeepEqual(c, tt.want) {
				t.Fatalf("conditions\n got %+v\nwant %+v", c, tt.want)
			}
			if len(got.Conditions) != 5 {
				t.Fatalf("got %d conditions, want 5", len(got.Conditions))
			}
			for _, c := range got.Conditions {
				if c.ObservedGeneration != 3 || !c.LastTransitionTime.Time.Equal(t1) {
					t.Errorf("%s: observedGeneration %d, lastTransitionTime %v", c.Type, c.ObservedGeneration, c.LastTransitionTime)
				}
			}
		})
	}
}

func TestReadinessGates(t *testing.T) {
	pod := newPod(v1.RestartPolicyAlways, "a")
	pod.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}}
	in := Inputs{ContainerStatuses: []v1.ContainerStatus{running("a", true)}, Now: t1}

	got := conds(Compute(pod, in))[v1.PodReady]
	want := condView{v1.ConditionFalse, ReasonReadinessGatesNotReady,
		`corresponding condition of pod readiness gate "example.com/lb" does not exist., corresponding condition of pod readiness gate "example.com/dns" does not exist.`}
	if got != want {
		t.Fatalf("no gate conditions: got %+v want %+v", got, want)
	}

	pod.Status.Conditions = []v1.PodCondition{
		{Type: "example.com/lb", Status: v1.ConditionTrue},
		{Type: "example.com/dns", Status: v1.ConditionFalse},
	}
	got = conds(Compute(pod, in))[v1.PodReady]
	want = condView{v1.ConditionFalse, ReasonReadinessGatesNotReady, `the status of pod readiness gate "example.com/dns" is not "True", but False`}
	if got != want {
		t.Fatalf("one gate false: got %+v want %+v", got, want)
	}

	pod.Status.Conditions[1].Status = v1.ConditionTrue
	s := Compute(pod, in)
	if got := conds(s)[v1.PodReady]; got.Status != v1.ConditionTrue {
		t.Fatalf("all gates true: got %+v", got)
	}
	// Gate conditions belong to other controllers and are kept first.
	if s.Conditions[0].Type != "example.com/lb" || s.Conditions[1].Type != "example.com/dns" {
		t.Fatalf("foreign conditions not preserved: %+v", s.Conditions)
	}
}

func TestTransitionTimesPreserved(t *testing.T) {
	pod := newPod(v1.RestartPolicyAlways, "a")
	first := Compute(pod, Inputs{ContainerStatuses: []v1.ContainerStatus{running("a", false)}, SandboxReady: true, Now: t0})
	pod.Status = first

	// The container becomes ready a minute later: only the readiness
	// conditions transition.
	second := Compute(pod, Inputs{ContainerStatuses: []v1.ContainerStatus{running("a", true)}, SandboxReady: true, Now: t1})
	for _, c := range second.Conditions {
		want := t0
		if c.Type == v1.PodReady || c.Type == v1.ContainersReady {
			want = t1
		}
		if !c.LastTransitionTime.Time.Equal(want) {
			t.Errorf("%s (%s): lastTransitionTime %v, want %v", c.Type, c.Status, c.LastTransitionTime.Time, want)
		}
	}
	if !second.StartTime.Time.Equal(t0) {
		t.Errorf("startTime moved: %v", second.StartTime)
	}
}

func TestStatusFields(t *testing.T) {
	pod := withInit(newPod(v1.RestartPolicyAlways, "a", "b"), "i1")
	pod.Spec.Containers[0].Resources = v1.ResourceRequirements{
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("1Gi")},
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("1Gi")},
	}
	s := Compute(pod, Inputs{
		HostIP: "192.168.1.10", PodIPs: []string{"10.244.0.5", "fd00::5"}, StartTime: t0, Now: t1,
		InitStatuses:      []v1.ContainerStatus{initDone("i1")},
		ContainerStatuses: []v1.ContainerStatus{running("b", true), {Name: "stray"}},
	})
	if s.HostIP != "192.168.1.10" || !reflect.DeepEqual(s.HostIPs, []v1.HostIP{{IP: "192.168.1.10"}}) {
		t.Errorf("host IPs: %q %v", s.HostIP, s.HostIPs)
	}
	if s.PodIP != "10.244.0.5" || !reflect.DeepEqual(s.PodIPs, []v1.PodIP{{IP: "10.244.0.5"}, {IP: "fd00::5"}}) {
		t.Errorf("pod IPs: %q %v", s.PodIP, s.PodIPs)
	}
	if s.StartTime == nil || !s.StartTime.Time.Equal(t0) {
		t.Errorf("startTime %v, want %v", s.StartTime, t0)
	}
	if s.QOSClass != v1.PodQOSBurstable { // b has no resources
		t.Errorf("qos %s, want Burstable", s.QOSClass)
	}
	if s.ObservedGeneration != 3 {
		t.Errorf("observedGeneration %d", s.ObservedGeneration)
	}
	if len(s.ContainerStatuses) != 2 || s.ContainerStatuses[0].Name != "a" || s.ContainerStatuses[1].Name != "b" {
		t.Fatalf("container statuses not in spec order: %+v", s.ContainerStatuses)
	}
	a := s.ContainerStatuses[0]
	if a.Image != "img-a" || a.State.Waiting == nil || a.State.Waiting.Reason != ReasonPodInitializing {
		t.Errorf("missing container a should be waiting PodInitializing: %+v", a)
	}
	if s.Phase != v1.PodPending {
		t.Errorf("phase %s, want Pending while a is not started", s.Phase)
	}

	host := newPod(v1.RestartPolicyAlways, "a")
	host.Spec.HostNetwork = true
	host.Status.QOSClass = v1.PodQOSGuaranteed
	s = Compute(host, Inputs{HostIP: "192.168.1.10", Now: t1})
	if s.PodIP != "192.168.1.10" {
		t.Errorf("host network pod IP %q, want the host's", s.PodIP)
	}
	if s.QOSClass != v1.PodQOSGuaranteed {
		t.Errorf("qos not kept from old status: %s", s.QOSClass)
	}
	if s.StartTime == nil || !s.StartTime.Time.Equal(t1) {
		t.Errorf("startTime defaults to now, got %v", s.StartTime)
	}
	if w := s.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != ReasonContainerCreating {
		t.Errorf("want ContainerCreating, got %+v", s.ContainerStatuses[0].State)
	}
}

func TestQOSClass(t *testing.T) {
	rl := func(cpu, mem string) v1.ResourceList {
		l := v1.ResourceList{}
		if cpu != "" {
			l[v1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[v1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	pod := func(cs ...v1.ResourceRequirements) *v1.Pod {
		p := &v1.Pod{}
		for _, r := range cs {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Resources: r})
		}
		return p
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		want v1.PodQOSClass
	}{
		{"none", pod(v1.ResourceRequirements{}), v1.PodQOSBestEffort},
		{"requests only", pod(v1.ResourceRequirements{Requests: rl("100m", "")}), v1.PodQOSBurstable},
		{"equal limits and requests", pod(v1.ResourceRequirements{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")}), v1.PodQOSGuaranteed},
		{"requests below limits", pod(v1.ResourceRequirements{Requests: rl("500m", "1Gi"), Limits: rl("1", "1Gi")}), v1.PodQOSBurstable},
		{"cpu limit only", pod(v1.ResourceRequirements{Requests: rl("1", ""), Limits: rl("1", "")}), v1.PodQOSBurstable},
		{"one container without", pod(v1.ResourceRequirements{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")}, v1.ResourceRequirements{}), v1.PodQOSBurstable},
	}
	for _, tt := range tests {
		if got := QOSClass(tt.pod); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}
