package controller_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/test/argotest"
)

// Argo's workflow-controller accepts the compiled Workflow and creates every
// step's pod without a service-account token in its containers but Argo's
// own (the wait container gets the executor's, from the token Secret the
// controller provided), except the exec hook's, which runs as backflow-hook
// with its token: the apiserver's ServiceAccount admission mounts it.
func TestOnlyTheExecHookHasAToken(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createBackup(t, ns, "tokens", withHooksAndRetention(backupSpec()))
	steps := []string{compiler.StepPreHook, compiler.StepDump, compiler.StepVerify, compiler.StepPostHook, compiler.StepRotate}
	stack.InspectSteps(t, ns, "tokens", steps, func(step string, pod *corev1.Pod) {
		checkTokens(t, step, pod, compiler.ExecutorServiceAccount)
	})
	if b := waitForPhase(t, ns, "tokens", v1.PhaseSucceeded); len(b.Status.Stages) != len(steps) {
		t.Errorf("stages %+v, want %d", b.Status.Stages, len(steps))
	}
}

// checkTokens checks who a step's pod runs as and which of its containers
// hold a token: account is the one of every step but the exec hook.
func checkTokens(t *testing.T, step string, pod *corev1.Pod, account string) {
	t.Helper()
	hook := step == compiler.StepPreHook || step == compiler.StepPostHook
	want, wantToken := account, false
	if hook {
		want, wantToken = compiler.HookServiceAccount, true
	}
	if pod.Spec.ServiceAccountName != want {
		t.Errorf("%s: pod runs as %q, want %q", step, pod.Spec.ServiceAccountName, want)
	}
	if automount := pod.Spec.AutomountServiceAccountToken; wantToken == (automount != nil && !*automount) {
		t.Errorf("%s: automountServiceAccountToken %v", step, automount)
	}
	if got := argotest.MountsToken(pod, "main"); got != wantToken {
		t.Errorf("%s: the main container mounts a token: %t, want %t (%+v)", step, got, wantToken, pod.Spec.Containers)
	}
	if !argotest.MountsToken(pod, "wait") {
		t.Errorf("%s: Argo's wait container has no token to report the outputs with", step)
	}
	if !hook {
		var secrets []string
		for _, v := range pod.Spec.Volumes {
			if v.Secret != nil {
				secrets = append(secrets, v.Secret.SecretName)
			}
			if v.Projected != nil {
				t.Errorf("%s: the pod has a projected volume %s (a Kubernetes-mounted token?)", step, v.Name)
			}
		}
		found := false
		for _, s := range secrets {
			found = found || s == namespace.TokenSecret
		}
		if !found {
			t.Errorf("%s: no volume of the executor's token Secret %s (Secret volumes %v)", step, namespace.TokenSecret, secrets)
		}
	}
}
