package controller_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

// BenchmarkStatusLatency measures how long a Workflow's status change takes
// to reach its Backup's status: from the moment the Workflow is seen
// Succeeded to the moment its Backup is, both read straight from the API
// server every few milliseconds. Run with make bench-controller.
func BenchmarkStatusLatency(b *testing.B) {
	ns := newNamespace(b)
	ctx := context.Background()
	var latencies []time.Duration
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("latency-%d", i)
		stack.Driver.Set(name, compiler.StepVerify, argotest.Outcome{Hold: true})
		bk := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: backupSpec()}
		if err := stack.Client.Create(ctx, bk); err != nil {
			b.Fatal(err)
		}
		waitForPhase(b, ns, name, v1.PhaseRunning)
		stack.Driver.Set(name, compiler.StepVerify, argotest.Outcome{Outputs: argotest.StepOutputs(ns, name, compiler.StepVerify)})
		var wfDone, backupDone time.Time
		deadline := time.Now().Add(60 * time.Second)
		for backupDone.IsZero() && time.Now().Before(deadline) {
			var wf wfv1.Workflow
			if wfDone.IsZero() && stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &wf) == nil && wf.Status.Phase == wfv1.WorkflowSucceeded {
				wfDone = time.Now()
			}
			var got v1.Backup
			if !wfDone.IsZero() && stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &got) == nil && got.Status.Phase == v1.PhaseSucceeded {
				backupDone = time.Now()
			}
			time.Sleep(2 * time.Millisecond)
		}
		if backupDone.IsZero() {
			b.Fatalf("%s did not finish", name)
		}
		latencies = append(latencies, backupDone.Sub(wfDone))
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*95/100].Microseconds())/1000, "p95-ms")
}
