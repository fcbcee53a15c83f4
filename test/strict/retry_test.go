package strict_test

import (
	"fmt"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

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

// A pod whose service account does not exist fails the run after one
// attempt, and the Backup names the cause from the dump's pod node. The
// pre-hook before it runs as backflow's own hook account, which the
// controller provided.
func TestStrictMissingServiceAccountNamesIt(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	s := spec()
	s.ServiceAccountName = "nobody"
	createBackup(t, ns, "nosa", s)
	b, stages := finished(t, ns, "nosa")
	want := fmt.Sprintf(`serviceaccount %q not found`, s.ServiceAccountName)
	if b.Status.Phase != v1.PhaseFailed || !strings.HasPrefix(b.Status.Message, "step dump failed: ") || !strings.Contains(b.Status.Message, want) {
		t.Errorf("Backup %s %q, want Failed naming the dump and %s", b.Status.Phase, b.Status.Message, want)
	}
	if stages[compiler.StepPreHook] != "Succeeded" {
		t.Errorf("stages %v: the pre-hook runs as backflow-hook and should have succeeded", stages)
	}
	for name, n := range retryNodes(t, ns, "nosa") {
		if n != 1 {
			t.Errorf("%s: %d attempts of a pod the apiserver refuses, want 1", name, n)
		}
	}
}
