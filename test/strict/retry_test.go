package strict_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

// retryNodes are the attempts of each retried template of a Workflow, by
// the retry node's display name.
func retryNodes(t *testing.T, ns, name string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range stack.Workflow(t, ns, name).Status.Nodes {
		if n.Type == wfv1.NodeTypeRetry {
			out[n.DisplayName] = len(n.Children)
		}
	}
	return out
}

// The run template's steps follow the same retry rules as the inline DAG:
// exit 75 is retried and the run succeeds.
func TestStrictTransientDumpFailureIsRetried(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	stack.Driver.Set("tempfail", compiler.StepDump, argotest.Outcome{Fail: true, ExitCode: compiler.ExitCodeRetry, Message: "storage unreachable",
		Then: &argotest.Outcome{Outputs: argotest.StepOutputs(ns, "tempfail", compiler.StepDump)}})
	createBackup(t, ns, "tempfail", spec())
	b, _ := finished(t, ns, "tempfail")
	if b.Status.Phase != v1.PhaseSucceeded {
		t.Errorf("Backup %s %q, want Succeeded after a retry", b.Status.Phase, b.Status.Message)
	}
	if n := retryNodes(t, ns, "tempfail")[compiler.StepDump]; n != 2 {
		t.Errorf("%d attempts of the dump, want 2", n)
	}
}

// Without the workflow ServiceAccount the run fails after one attempt of
// the pre-hook, and the Backup names the cause from the hook's pod node,
// two levels below the run template's pre-hook step.
func TestStrictMissingServiceAccountNamesIt(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: compiler.DefaultOptions().ServiceAccountName}}
	if err := stack.Client.Delete(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	createBackup(t, ns, "nosa", spec())
	b, _ := finished(t, ns, "nosa")
	want := fmt.Sprintf(`serviceaccount %q not found`, sa.Name)
	if b.Status.Phase != v1.PhaseFailed || !strings.HasPrefix(b.Status.Message, "step pre-hook failed: ") || !strings.Contains(b.Status.Message, want) {
		t.Errorf("Backup %s %q, want Failed naming the pre-hook and %s", b.Status.Phase, b.Status.Message, want)
	}
	for name, n := range retryNodes(t, ns, "nosa") {
		if n != 1 {
			t.Errorf("%s: %d attempts of a pod the apiserver refuses, want 1", name, n)
		}
	}
}
