package controller_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
	"github.com/backflow-dev/backflow/test/tools"
)

// The Backup's status says how far its dump is, from the progress Argo's
// executor reports for the dump's node (through its WorkflowTaskResult, as
// from the dump's progress file), and 100% once the run succeeded.
func TestBackupStatusFollowsTheDumpsProgress(t *testing.T) {
	ns := newNamespace(t)
	stack.Driver.Set("slow", compiler.StepDump, argotest.Outcome{Hold: true})
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slow"}, Spec: backupSpec()}
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		reported wfv1.Progress
		text     string
		percent  int32
	}{{"250/1000", "dump 25% (250.0MiB of 1000.0MiB), ", 25}, {"600/1000", "dump 60% (600.0MiB of 1000.0MiB), ", 60}} {
		stack.ReportProgress(t, ns, "slow", compiler.StepDump, step.reported)
		argotest.WaitFor(t, "the Backup's progress "+string(step.reported), 30*time.Second, func() (bool, string) {
			b = getBackup(t, ns, "slow")
			sp := b.Status.StepProgress
			ok := strings.HasPrefix(b.Status.Progress, step.text) && strings.HasSuffix(b.Status.Progress, " left") &&
				sp != nil && sp.Step == compiler.StepDump && sp.Percent == step.percent && sp.EstimatedCompletion != nil &&
				sp.ExpectedBytes != nil && *sp.ExpectedBytes == 1000<<20
			return ok, fmt.Sprintf("%q %+v", b.Status.Progress, sp)
		})
	}
	// kubectl shows it in the Progress column of -o wide, as the CRD's
	// printer columns say.
	kubectl, err := tools.Binary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := stack.WriteKubeconfig(t.TempDir(), ns)
	if err != nil {
		t.Fatal(err)
	}
	table, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "get", "backups", "-o", "wide", "-n", ns).CombinedOutput()
	if err != nil || !strings.Contains(string(table), "PROGRESS") || !strings.Contains(string(table), b.Status.Progress) {
		t.Errorf("kubectl get backups -o wide: %v\n%s\nwant the progress %q", err, table, b.Status.Progress)
	}
	t.Logf("kubectl get backups -o wide:\n%s", table)
	if wf := stack.Workflow(t, ns, "slow"); wf.Status.Progress == "" || !strings.Contains(string(wf.Status.Progress), "/") {
		t.Errorf("the Workflow's own progress %q", wf.Status.Progress)
	}
	stack.Driver.Set("slow", compiler.StepDump, argotest.Outcome{Outputs: argotest.StepOutputs(ns, "slow", compiler.StepDump)})
	b = waitForPhase(t, ns, "slow", v1.PhaseSucceeded)
	if b.Status.Progress != "100%" || b.Status.StepProgress == nil || b.Status.StepProgress.Percent != 100 {
		t.Errorf("progress of the succeeded Backup %q %+v", b.Status.Progress, b.Status.StepProgress)
	}
}

// dumpArgument is an argument of the dump step in a CronWorkflow's spec.
func dumpArgument(cron *wfv1.CronWorkflow, name string) string {
	for _, tmpl := range cron.Spec.WorkflowSpec.Templates {
		if tmpl.DAG == nil {
			continue
		}
		for _, task := range tmpl.DAG.Tasks {
			if task.Name == compiler.StepDump {
				if p := task.Arguments.GetParameterByName(name); p != nil && p.Value != nil {
					return p.Value.String()
				}
			}
		}
	}
	return ""
}

// A schedule's dumps expect the raw size of its newest verified run: the
// controller writes it into the CronWorkflow once a run is verified, and
// the next run's dump gets it.
func TestScheduleDumpsExpectTheLastVerifiedRawSize(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "daily"}, Spec: v1.BackupScheduleSpec{
		Schedule: "0 3 * * *", Template: v1.BackupTemplate{Spec: backupSpec()},
	}}
	if err := stack.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	cron := func() *wfv1.CronWorkflow {
		var c wfv1.CronWorkflow
		if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "daily"}, &c); err != nil {
			return nil
		}
		return &c
	}
	argotest.WaitFor(t, "the CronWorkflow", 20*time.Second, func() (bool, string) {
		c := cron()
		return c != nil && dumpArgument(c, compiler.ParamExpectedSize) == "0", "no CronWorkflow with expected size 0"
	})
	trigger := func(token string) string {
		updateSchedule(t, s, func() {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[v1.AnnotationTrigger] = token
		})
		var run string
		argotest.WaitFor(t, "run "+token+" to be verified", 60*time.Second, func() (bool, string) {
			var list v1.BackupList
			_ = stack.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "daily"})
			var states []string
			for _, b := range list.Items {
				var wf wfv1.Workflow
				if stack.Client.Get(ctx, client.ObjectKeyFromObject(&b), &wf) == nil && wf.Annotations[v1.AnnotationTrigger] == token &&
					meta.IsStatusConditionTrue(b.Status.Conditions, v1.ConditionVerified) {
					run = b.Name
					return true, ""
				}
				states = append(states, b.Name+"="+string(b.Status.Phase))
			}
			return false, fmt.Sprint(states)
		})
		return run
	}
	first := trigger("1")
	argotest.WaitFor(t, "the CronWorkflow to expect the verified run's raw size", 20*time.Second, func() (bool, string) {
		c := cron()
		got := ""
		if c != nil {
			got = dumpArgument(c, compiler.ParamExpectedSize)
		}
		return got == "250000000", got
	})
	second := trigger("2")
	wf := stack.Workflow(t, ns, second)
	for _, task := range wf.Spec.Templates[0].DAG.Tasks {
		if task.Name == compiler.StepDump {
			if got := task.Arguments.GetParameterByName(compiler.ParamExpectedSize).Value.String(); got != "250000000" {
				t.Errorf("the dump of run %s after %s expects %s bytes, want the verified run's 250000000", second, first, got)
			}
		}
	}
}
