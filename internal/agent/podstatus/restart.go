package podstatus

import v1 "k8s.io/api/core/v1"

// ShouldRestart reports whether a pod-level restartPolicy restarts a
// container that exited with exitCode.
func ShouldRestart(policy v1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case v1.RestartPolicyAlways:
		return true
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return false
	}
}

// ContainerShouldRestart reports whether container c of pod is restarted
// after exiting with exitCode:
//
//   - a sidecar (init container with restartPolicy Always) always is;
//   - a regular init container that succeeded is done; one that failed is
//     retried unless the effective policy is Never;
//   - otherwise the container's restartPolicyRules are tried in order (the
//     first rule matching the exit code decides), then its own restartPolicy,
//     then the pod's.
func ContainerShouldRestart(pod *v1.Pod, c *v1.Container, isInit bool, exitCode int32) bool {
	if isInit && isSidecar(c) {
		return true
	}
	if isInit && exitCode == 0 {
		return false
	}
	if c.RestartPolicy == nil {
		if isInit {
			return pod.Spec.RestartPolicy != v1.RestartPolicyNever
		}
		return ShouldRestart(pod.Spec.RestartPolicy, exitCode)
	}
	for _, rule := range c.RestartPolicyRules {
		if rule.ExitCodes == nil {
			continue
		}
		in := false
		for _, v := range rule.ExitCodes.Values {
			if v == exitCode {
				in = true
				break
			}
		}
		matched := (rule.ExitCodes.Operator == v1.ContainerRestartRuleOnExitCodesOpIn && in) ||
			(rule.ExitCodes.Operator == v1.ContainerRestartRuleOnExitCodesOpNotIn && !in)
		if matched {
			return rule.Action == v1.ContainerRestartRuleActionRestart
		}
	}
	return ShouldRestart(v1.RestartPolicy(*c.RestartPolicy), exitCode)
}

// isSidecar reports whether an init container keeps running alongside the
// regular containers.
func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}
