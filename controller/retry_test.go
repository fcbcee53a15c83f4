package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

// attempts counts the attempts Argo made of a step of a Workflow: the
// children of its retry node.
func attempts(t *testing.T, ns, workflow, step string) int {
	t.Helper()
	for _, n := range stack.Workflow(t, ns, workflow).Status.Nodes {
		if n.DisplayName == step && n.Type == wfv1.NodeTypeRetry {
			return len(n.Children)
		}
	}
	t.Fatalf("Workflow %s has no retry node for step %s", workflow, step)
	return 0
}

// waitForEnd waits for a Backup to finish, however.
func waitForEnd(t *testing.T, ns, name string) *v1.Backup {
	t.Helper()
	var b *v1.Backup
	// Argo waits out the backoff (10 s) before it decides against a retry.
	argotest.WaitFor(t, "Backup "+name+" to finish", 90*time.Second, func() (bool, string) {
		b = getBackup(t, ns, name)
		return b.Status.Phase.IsFinished(), fmt.Sprintf("%s %q", b.Status.Phase, b.Status.Message)
	})
	return b
}

func createBackup(t *testing.T, ns, name string, spec v1.BackupSpec) {
	t.Helper()
	if err := stack.Client.Create(context.Background(), &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
}

// A step that says a retry may help (exit 75), or whose pod the kubelet
// evicted, is tried again and the run succeeds.
func TestTransientStepFailureIsRetried(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	for name, first := range map[string]argotest.Outcome{
		"tempfail": {Fail: true, ExitCode: compiler.ExitCodeRetry, Message: "storage unreachable: dial tcp 10.0.0.9:9000: connection refused"},
		"evicted":  {Fail: true, ExitCode: 137, Evicted: "The node was low on resource: memory."},
	} {
		first.Then = &argotest.Outcome{Outputs: argotest.StepOutputs(ns, name, compiler.StepDump)}
		stack.Driver.Set(name, compiler.StepDump, first)
		createBackup(t, ns, name, backupSpec())
	}
	for _, name := range []string{"tempfail", "evicted"} {
		b := waitForEnd(t, ns, name)
		if b.Status.Phase != v1.PhaseSucceeded {
			t.Errorf("%s: Backup %s %q, want Succeeded after a retry", name, b.Status.Phase, b.Status.Message)
		}
		if n := attempts(t, ns, name, compiler.StepDump); n != 2 {
			t.Errorf("%s: %d attempts of the dump, want 2", name, n)
		}
	}
}

// A step that fails on its own (exit 1) is not retried: the run fails after
// one attempt with what the step said.
func TestFailedStepIsNotRetried(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	stack.Driver.Set("exit1", compiler.StepDump, argotest.Outcome{Fail: true, Message: "pg_dump: error: relation \"orders\" does not exist"})
	createBackup(t, ns, "exit1", backupSpec())
	b := waitForEnd(t, ns, "exit1")
	if b.Status.Phase != v1.PhaseFailed || !strings.Contains(b.Status.Message, `relation "orders" does not exist`) {
		t.Errorf("Backup %s %q, want Failed naming what pg_dump said", b.Status.Phase, b.Status.Message)
	}
	if n := attempts(t, ns, "exit1", compiler.StepDump); n != 1 {
		t.Errorf("%d attempts of a dump that exited 1, want 1", n)
	}
}

// A pod whose service account does not exist is refused by the apiserver:
// no retry can fix that, so the step fails after one attempt, and the Backup
// says why, as Argo recorded it on the attempt. (backflow provides its own
// accounts; a resource's serviceAccountName is the user's.)
func TestMissingServiceAccountFailsAtOnceNamingIt(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	spec := withHooksAndRetention(backupSpec())
	spec.ServiceAccountName = "nobody"
	createBackup(t, ns, "nosa", spec)
	b := waitForEnd(t, ns, "nosa")
	want := fmt.Sprintf(`serviceaccount %q not found`, spec.ServiceAccountName)
	if b.Status.Phase != v1.PhaseFailed || !strings.HasPrefix(b.Status.Message, "step dump failed: ") || !strings.Contains(b.Status.Message, want) {
		t.Errorf("Backup %s %q, want Failed naming the dump and %s", b.Status.Phase, b.Status.Message, want)
	}
	if n := attempts(t, ns, "nosa", compiler.StepDump); n != 1 {
		t.Errorf("%d attempts of a pod the apiserver refuses, want 1", n)
	}
}

// Every step's pod carries a deadline: the step's default, or the spec's.
func TestStepPodsHaveDeadlines(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	spec := backupSpec()
	spec.StepDeadlineSeconds = &v1.BackupStepDeadlines{Verify: ptr(int32(900))}
	for _, step := range []string{compiler.StepDump, compiler.StepVerify} {
		stack.Driver.Set("deadlines", step, argotest.Outcome{Hold: true})
	}
	createBackup(t, ns, "deadlines", spec)
	for step, want := range map[string]int64{compiler.StepDump: 6 * 3600, compiler.StepVerify: 900} {
		argotest.WaitFor(t, "the "+step+" pod", 60*time.Second, func() (bool, string) {
			var pods corev1.PodList
			if err := stack.Client.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				if strings.HasPrefix(p.Annotations["workflows.argoproj.io/node-name"], "deadlines."+step) {
					got := p.Spec.ActiveDeadlineSeconds
					if got == nil || *got != want {
						t.Fatalf("pod of %s has activeDeadlineSeconds %v, want %d", step, got, want)
					}
					stack.Driver.Set("deadlines", step, argotest.Outcome{Outputs: argotest.StepOutputs(ns, "deadlines", step)})
					return true, ""
				}
			}
			return false, fmt.Sprint(len(pods.Items), " pods")
		})
	}
	waitForPhase(t, ns, "deadlines", v1.PhaseSucceeded)
}
