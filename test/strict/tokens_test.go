package strict_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

// In Strict mode too, every step's pod runs without a token in its
// containers but Argo's wait container, as the resource's own account (a
// cloud identity), except the exec hook's, which runs as backflow-hook with
// its token: the resource's account, which the pod spec patch carries for
// the other steps, does not reach it.
func TestStrictOnlyTheExecHookHasAToken(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	const identity = "cloud-identity"
	if err := stack.Client.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: identity}}); err != nil {
		t.Fatal(err)
	}
	s := spec()
	s.ServiceAccountName = identity
	createBackup(t, ns, "tokens", s)
	steps := []string{compiler.StepPreHook, compiler.StepDump, compiler.StepVerify, compiler.StepPostHook, compiler.StepRotate}
	stack.InspectSteps(t, ns, "tokens", steps, func(step string, pod *corev1.Pod) {
		want, token := identity, false
		if step == compiler.StepPreHook { // the exec hook; the post-hook is a container hook
			want, token = compiler.HookServiceAccount, true
		}
		if pod.Spec.ServiceAccountName != want {
			t.Errorf("%s: pod runs as %q, want %q", step, pod.Spec.ServiceAccountName, want)
		}
		if automount := pod.Spec.AutomountServiceAccountToken; token == (automount != nil && !*automount) {
			t.Errorf("%s: automountServiceAccountToken %v", step, automount)
		}
		if got := argotest.MountsToken(pod, "main"); got != token {
			t.Errorf("%s: the main container mounts a token: %t, want %t", step, got, token)
		}
		if !argotest.MountsToken(pod, "wait") {
			t.Errorf("%s: Argo's wait container has no token to report the outputs with", step)
		}
	})
	if b, _ := finished(t, ns, "tokens"); b.Status.Phase != v1.PhaseSucceeded {
		t.Errorf("Backup %s: %s", b.Status.Phase, b.Status.Message)
	}
}
