//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

const nsProgress = "e2e-progress"

// slowStreamMiB is how much the slow command writes, a MiB every half
// second: long enough for Argo's executor to report the dump's progress
// several times (every 5 s, compiler.ProgressReportInterval).
const slowStreamMiB = 60

// The dump's progress has an end: a schedule's second run expects the raw
// size of its first, verified run, and while it runs Argo's Workflow shows
// the dump node's progress advancing against that total (in MiB), and the
// Backup's status says how far it is.
func TestDumpProgressHasAnEnd(t *testing.T) {
	t.Parallel()
	ns := nsProgress
	ctx := context.Background()
	st.Namespace(t, ns, bucket)
	st.Apply(t, ns, st.StorageManifest(ns, bucket)+fmt.Sprintf(`
---
apiVersion: backflow.dev/v1alpha1
kind: BackupSchedule
metadata: {name: slow}
spec:
  schedule: "0 3 * * *"
  template:
    spec:
      source:
        command:
          image: %s
          command: [sh, -c, 'for i in $(seq 1 %d); do head -c 1048576 /dev/urandom; sleep 0.5; done']
      storage: {name: minio}
      compression: {algorithm: none}
`, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"], slowStreamMiB))

	// run starts a run of the schedule now and returns its name.
	run := func(token string) string {
		st.Kubectl(t, "", "annotate", "--overwrite", "backupschedule", "slow", "-n", ns, v1.AnnotationTrigger+"="+token)
		name := ""
		for deadline := time.Now().Add(time.Minute); name == ""; time.Sleep(time.Second) {
			if time.Now().After(deadline) {
				t.Fatalf("run %s did not start", token)
			}
			var wfs wfv1.WorkflowList
			if err := st.Kube.List(ctx, &wfs, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "slow"}); err != nil {
				t.Fatal(err)
			}
			for _, wf := range wfs.Items {
				if wf.Annotations[v1.AnnotationTrigger] == token {
					name = wf.Name
				}
			}
		}
		return name
	}
	waitVerified := func(name string) *v1.Backup {
		b := &v1.Backup{}
		b.Namespace, b.Name = ns, name
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
			if err := st.Kube.Get(ctx, client.ObjectKeyFromObject(b), b); err == nil &&
				b.Status.Phase.IsFinished() && (b.Status.Phase == v1.PhaseFailed || meta.IsStatusConditionTrue(b.Status.Conditions, v1.ConditionVerified)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Backup %s not verified: %+v\n%s", name, b.Status, st.WorkflowLogs(b))
			}
		}
		if b.Status.Phase != v1.PhaseSucceeded {
			t.Fatalf("Backup %s %s: %s\n%s", name, b.Status.Phase, b.Status.Message, st.WorkflowLogs(b))
		}
		return b
	}

	first := waitVerified(run("1"))
	if first.Status.RawSize == nil || *first.Status.RawSize != slowStreamMiB<<20 {
		t.Fatalf("first run's raw size %v, want %d", first.Status.RawSize, slowStreamMiB<<20)
	}
	// The CronWorkflow expects the first run's raw size once it is verified.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		var cron wfv1.CronWorkflow
		if err := st.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "slow"}, &cron); err != nil {
			t.Fatal(err)
		}
		if dumpExpects(&cron.Spec.WorkflowSpec) == fmt.Sprint(*first.Status.RawSize) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CronWorkflow's dump expects %q, want %d", dumpExpects(&cron.Spec.WorkflowSpec), *first.Status.RawSize)
		}
	}

	second := run("2")
	var seen []wfv1.Progress
	var statuses []string
	wide := ""
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		var wf wfv1.Workflow
		if err := st.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: second}, &wf); err != nil {
			t.Fatal(err)
		}
		dump, ok := dumpPod(&wf)
		if ok && dump.Fulfilled() {
			break
		}
		if ok && (len(seen) == 0 || seen[len(seen)-1] != dump.Progress) {
			seen = append(seen, dump.Progress)
			var b v1.Backup
			if err := st.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: second}, &b); err == nil && b.Status.Progress != "" {
				statuses = append(statuses, b.Status.Progress)
				if dump.Progress.N() > 0 {
					wide = st.Kubectl(t, "", "get", "backups", "-o", "wide", "-n", ns)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dump of %s still runs after 3 minutes; progress seen %v", second, seen)
		}
	}
	t.Logf("the dump node's progress while it ran: %v", seen)
	t.Logf("the Backup's status.progress meanwhile: %q", statuses)
	t.Logf("kubectl get backups -o wide during the dump:\n%s", wide)
	var advancing []wfv1.Progress
	for _, p := range seen {
		if p.IsValid() && p.M() == slowStreamMiB && p.N() > 0 && p.N() < p.M() {
			advancing = append(advancing, p)
		}
	}
	if len(advancing) < 2 {
		t.Fatalf("the running dump reported %v; want at least two readings N/%d with 0 < N < %d", seen, slowStreamMiB, slowStreamMiB)
	}
	for i := 1; i < len(advancing); i++ {
		if advancing[i].N() <= advancing[i-1].N() {
			t.Errorf("the dump's progress went from %s to %s", advancing[i-1], advancing[i])
		}
	}
	found := false
	for _, s := range statuses {
		found = found || (strings.HasPrefix(s, "dump ") && strings.Contains(s, fmt.Sprintf("of %d.0MiB", slowStreamMiB)) && strings.HasSuffix(s, " left"))
	}
	if !found {
		t.Errorf("no status.progress of the running dump with its total and the time left: %q", statuses)
	}
	if !strings.Contains(wide, "PROGRESS") || !strings.Contains(wide, "% (") {
		t.Errorf("kubectl get backups -o wide shows no progress:\n%s", wide)
	}
	done := waitVerified(second)
	if done.Status.Progress != "100%" {
		t.Errorf("the finished run's progress %q, want 100%%", done.Status.Progress)
	}
}

// dumpPod is the node of the dump's newest attempt.
func dumpPod(wf *wfv1.Workflow) (wfv1.NodeStatus, bool) {
	var newest wfv1.NodeStatus
	found := false
	for _, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePod && strings.HasPrefix(n.DisplayName, "dump") && (!found || n.StartedAt.After(newest.StartedAt.Time)) {
			newest, found = n, true
		}
	}
	return newest, found
}

// dumpExpects is the expected-size argument of the dump task of an inline
// Workflow spec.
func dumpExpects(ws *wfv1.WorkflowSpec) string {
	for _, tmpl := range ws.Templates {
		if tmpl.DAG == nil {
			continue
		}
		for _, task := range tmpl.DAG.Tasks {
			if task.Name == "dump" {
				if p := task.Arguments.GetParameterByName("expected-size"); p != nil && p.Value != nil {
					return p.Value.String()
				}
			}
		}
	}
	return ""
}
