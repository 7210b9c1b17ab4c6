package podstatus

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestShouldRestart(t *testing.T) {
	tests := []struct {
		policy v1.RestartPolicy
		code   int32
		want   bool
	}{
		{v1.RestartPolicyAlways, 0, true},
		{v1.RestartPolicyAlways, 1, true},
		{v1.RestartPolicyOnFailure, 0, false},
		{v1.RestartPolicyOnFailure, 137, true},
		{v1.RestartPolicyNever, 0, false},
		{v1.RestartPolicyNever, 1, false},
	}
	for _, tt := range tests {
		if got := ShouldRestart(tt.policy, tt.code); got != tt.want {
			t.Errorf("ShouldRestart(%s, %d) = %v, want %v", tt.policy, tt.code, got, tt.want)
		}
	}
}

func TestContainerShouldRestart(t *testing.T) {
	always, never := ptr(v1.ContainerRestartPolicyAlways), ptr(v1.ContainerRestartPolicyNever)
	rules := []v1.ContainerRestartRule{
		{Action: v1.ContainerRestartRuleActionRestart, ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42, 43}}},
	}
	notIn := []v1.ContainerRestartRule{
		{Action: v1.ContainerRestartRuleActionRestart, ExitCodes: &v1.ContainerRestartRuleOnExitCodes{Operator: v1.ContainerRestartRuleOnExitCodesOpNotIn, Values: []int32{0}}},
	}
	tests := []struct {
		name   string
		policy v1.RestartPolicy
		c      v1.Container
		isInit bool
		code   int32
		want   bool
	}{
		{"sidecar exit 0 under Never", v1.RestartPolicyNever, v1.Container{RestartPolicy: always}, true, 0, true},
		{"init success is done", v1.RestartPolicyAlways, v1.Container{}, true, 0, false},
		{"init failure, Always", v1.RestartPolicyAlways, v1.Container{}, true, 1, true},
		{"init failure, OnFailure", v1.RestartPolicyOnFailure, v1.Container{}, true, 1, true},
		{"init failure, Never", v1.RestartPolicyNever, v1.Container{}, true, 1, false},
		{"pod policy", v1.RestartPolicyOnFailure, v1.Container{}, false, 1, true},
		{"container Never overrides pod Always", v1.RestartPolicyAlways, v1.Container{RestartPolicy: never}, false, 1, false},
		{"rule In matches", v1.RestartPolicyNever, v1.Container{RestartPolicy: never, RestartPolicyRules: rules}, false, 43, true},
		{"rule In misses, falls to policy", v1.RestartPolicyNever, v1.Container{RestartPolicy: never, RestartPolicyRules: rules}, false, 1, false},
		{"rule NotIn", v1.RestartPolicyNever, v1.Container{RestartPolicy: never, RestartPolicyRules: notIn}, false, 2, true},
		{"rule NotIn excluded code", v1.RestartPolicyNever, v1.Container{RestartPolicy: never, RestartPolicyRules: notIn}, false, 0, false},
	}
	for _, tt := range tests {
		pod := &v1.Pod{Spec: v1.PodSpec{RestartPolicy: tt.policy}}
		if got := ContainerShouldRestart(pod, &tt.c, tt.isInit, tt.code); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
