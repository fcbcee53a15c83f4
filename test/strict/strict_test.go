// Package strict_test runs the controller with template referencing Strict
// against a real Argo workflow-controller configured with
// workflowRestrictions.templateReferencing: Strict, which refuses any
// Workflow that does not name its template or sets more than Argo allows
// beside the reference.
package strict_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
	"github.com/backflow-dev/backflow/test/servers"
)

var (
	stack *argotest.Stack
	minio *servers.MinIO
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	// The tests mostly wait for Argo's requeues, not for the CPU: run them
	// all at once.
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == fmt.Sprint(runtime.GOMAXPROCS(0)) {
		_ = f.Value.Set("8")
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if minio, err = servers.StartMinIO(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer minio.Stop()
	if stack, err = argotest.Start(argotest.WithTemplateReferencing("Strict")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stack.Stop()
	stack.Driver.DefaultOutputs = argotest.StepOutputs
	opts := compilerOptions()
	// All of them, the stage templates too, which a Strict cluster must not
	// have (TestStrictArgoRunsAnyTemplateOfAReferencedTemplate shows why).
	if err := stack.InstallCompiledTemplates(opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop, err := stack.StartManager(controller.Options{Compiler: opts, Workflows: argotest.Workflows(), MetricsAddr: "0", ProbeAddr: "0", StorageCheckInterval: time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stop()
	if code != 0 {
		logs := stack.Logs("workflow-controller")
		fmt.Fprintln(os.Stderr, "--- workflow-controller log (tail) ---\n"+logs[max(0, len(logs)-4000):])
	}
	return code
}

// compilerOptions are the controller's: Strict, with busybox, which the
// tests' commands and hooks run, as the one allowed user image.
func compilerOptions() compiler.Options {
	opts := argotest.CompilerOptions()
	opts.TemplateReferencing = compiler.TemplateReferencingStrict
	opts.AllowedImages = []string{allowedImage}
	return opts
}

const allowedImage = "busybox"

func ptr[T any](v T) *T { return &v }

// spec is a command backup with an exec pre-hook that must succeed, a
// container post-hook whose failure is tolerated, and retention.
func spec() v1.BackupSpec {
	return v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "minio"}},
		Hooks: &v1.Hooks{
			Pre:  &v1.Hook{Exec: &v1.ExecHook{PodName: "app", Command: []string{"freeze"}}, OnError: v1.HookErrorFail},
			Post: &v1.Hook{Container: &v1.ContainerHook{Image: "busybox", Command: []string{"thaw"}}, OnError: v1.HookErrorContinue},
		},
		Retention: &v1.Retention{KeepLast: ptr(int32(3))},
		Pod:       &v1.PodOverrides{NodeSelector: map[string]string{"type": "kwok"}},
	}
}

func createBackup(t *testing.T, ns, name string, s v1.BackupSpec) {
	t.Helper()
	if err := stack.Client.Create(context.Background(), &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: s}); err != nil {
		t.Fatal(err)
	}
}

// finished waits for a Backup to end and returns it with its stage phases.
func finished(t *testing.T, ns, name string) (*v1.Backup, map[string]string) {
	t.Helper()
	var b v1.Backup
	argotest.WaitFor(t, "Backup "+name+" to finish", 60*time.Second, func() (bool, string) {
		if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &b); err != nil {
			return false, err.Error()
		}
		return b.Status.Phase.IsFinished(), fmt.Sprintf("%s %q %+v", b.Status.Phase, b.Status.Message, b.Status.Stages)
	})
	stages := map[string]string{}
	for _, s := range b.Status.Stages {
		stages[s.Name] = s.Phase
	}
	return &b, stages
}

func TestStrictBackupRunsEveryStep(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	createBackup(t, ns, "nightly", spec())
	b, stages := finished(t, ns, "nightly")
	if b.Status.Phase != v1.PhaseSucceeded {
		t.Fatalf("Backup %s: %s", b.Status.Phase, b.Status.Message)
	}
	want := map[string]string{"pre-hook": "Succeeded", "dump": "Succeeded", "verify": "Succeeded", "post-hook": "Succeeded", "rotate": "Succeeded"}
	if fmt.Sprint(stages) != fmt.Sprint(want) {
		t.Errorf("stages %v, want %v", stages, want)
	}
	if b.Status.Checksum != argotest.StepOutputs(ns, "nightly", "dump")[compiler.OutputChecksum] || b.Status.Size == nil || *b.Status.Size != 43200000 {
		t.Errorf("outputs did not reach the status: %+v", b.Status)
	}
	if !meta.IsStatusConditionTrue(b.Status.Conditions, v1.ConditionVerified) {
		t.Errorf("conditions %+v", b.Status.Conditions)
	}
	wf := stack.Workflow(t, ns, "nightly")
	if wf.Spec.WorkflowTemplateRef == nil || wf.Spec.WorkflowTemplateRef.Name != compiler.TemplateBackupRun || len(wf.Spec.Templates) > 0 {
		t.Errorf("the Workflow does not only reference its template: %+v", wf.Spec)
	}
	// The pods carry the Backup's pod overrides through the step patches.
	var pods []string
	for _, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePod {
			pods = append(pods, n.DisplayName)
		}
	}
	if len(pods) != 5 {
		t.Errorf("pods %v, want one per step", pods)
	}
}

// Without hooks, retention or verify the run template skips those steps,
// and they do not appear in the status.
func TestStrictBackupSkipsStepsTheSpecLacks(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	s := spec()
	s.Hooks, s.Retention, s.Verify = nil, nil, &v1.VerifySpec{Checksum: ptr(false)}
	createBackup(t, ns, "bare", s)
	b, stages := finished(t, ns, "bare")
	if b.Status.Phase != v1.PhaseSucceeded || fmt.Sprint(stages) != fmt.Sprint(map[string]string{"dump": "Succeeded"}) {
		t.Errorf("Backup %s, stages %v", b.Status.Phase, stages)
	}
}

// A failed dump: the post-hook still runs, rotate does not, and the run
// fails naming the dump.
func TestStrictFailingDump(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	stack.Driver.Set("broken", compiler.StepDump, argotest.Outcome{Fail: true, Message: "exit code 3"})
	createBackup(t, ns, "broken", spec())
	b, stages := finished(t, ns, "broken")
	if b.Status.Phase != v1.PhaseFailed || !strings.Contains(b.Status.Message, "step dump failed") || !strings.Contains(b.Status.Message, "exit code 3") {
		t.Errorf("Backup %s, message %q", b.Status.Phase, b.Status.Message)
	}
	if stages["post-hook"] != "Succeeded" || stages["rotate"] == "Succeeded" || stages["verify"] == "Succeeded" {
		t.Errorf("stages %v", stages)
	}
}

// A failing pre-hook whose onError is Fail stops the dump; the post-hook
// still cleans up. One whose onError is Continue lets the backup go on.
func TestStrictPreHookFailure(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	stack.Driver.Set("frozen", compiler.StepPreHook, argotest.Outcome{Fail: true, Message: "cannot freeze"})
	createBackup(t, ns, "frozen", spec())
	b, stages := finished(t, ns, "frozen")
	if b.Status.Phase != v1.PhaseFailed || !strings.Contains(b.Status.Message, "step pre-hook failed") || stages["dump"] != "" || stages["post-hook"] != "Succeeded" {
		t.Errorf("Backup %s %q, stages %v", b.Status.Phase, b.Status.Message, stages)
	}

	stack.Driver.Set("tolerant", compiler.StepPreHook, argotest.Outcome{Fail: true, Message: "cannot freeze"})
	s := spec()
	s.Hooks.Pre.OnError = v1.HookErrorContinue
	createBackup(t, ns, "tolerant", s)
	b, stages = finished(t, ns, "tolerant")
	if b.Status.Phase != v1.PhaseSucceeded || stages["dump"] != "Succeeded" || stages["rotate"] != "Succeeded" {
		t.Errorf("Backup %s %q, stages %v", b.Status.Phase, b.Status.Message, stages)
	}
}

func TestStrictRestore(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	ctx := context.Background()
	createBackup(t, ns, "source", spec())
	if b, _ := finished(t, ns, "source"); b.Status.Phase != v1.PhaseSucceeded {
		t.Fatalf("Backup %s", b.Status.Phase)
	}
	r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "back"}, Spec: v1.RestoreSpec{
		From:   v1.RestoreSource{BackupRef: &v1.LocalObjectReference{Name: "source"}},
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"sh", "-c", "cat > /dev/null"}}},
	}}
	if err := stack.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "the Restore to finish", 60*time.Second, func() (bool, string) {
		_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(r), r)
		return r.Status.Phase.IsFinished(), fmt.Sprintf("%+v", r.Status)
	})
	stages := map[string]string{}
	for _, s := range r.Status.Stages {
		stages[s.Name] = s.Phase
	}
	if r.Status.Phase != v1.PhaseSucceeded || fmt.Sprint(stages) != fmt.Sprint(map[string]string{"restore": "Succeeded", "verify": "Succeeded"}) {
		t.Errorf("Restore %s %q, stages %v", r.Status.Phase, r.Status.Message, stages)
	}
	if wf := stack.Workflow(t, ns, "back"); wf.Spec.WorkflowTemplateRef == nil || wf.Spec.WorkflowTemplateRef.Name != compiler.TemplateRestoreRun {
		t.Errorf("the Restore's Workflow does not reference %s: %+v", compiler.TemplateRestoreRun, wf.Spec)
	}
}

// A run of a schedule: Argo starts the Workflow from the CronWorkflow's
// reference, the dump takes the Workflow's name, and the run becomes a
// Backup.
func TestStrictScheduleRun(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	ctx := context.Background()
	s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly", Annotations: map[string]string{v1.AnnotationTrigger: "1"}},
		Spec: v1.BackupScheduleSpec{Schedule: "0 * * * *", Template: v1.BackupTemplate{Spec: spec()}}}
	if err := stack.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	var run v1.Backup
	argotest.WaitFor(t, "the triggered run to succeed", 60*time.Second, func() (bool, string) {
		var list v1.BackupList
		_ = stack.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "hourly"})
		for _, b := range list.Items {
			if b.Status.Phase == v1.PhaseSucceeded {
				run = b
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", list.Items)
	})
	wf := stack.Workflow(t, ns, run.Name)
	if wf.Spec.WorkflowTemplateRef == nil || wf.Status.StoredWorkflowSpec == nil {
		t.Fatalf("the run's Workflow %+v", wf.Spec)
	}
	// The dump's name argument resolves to the run's own name.
	for _, n := range wf.Status.Nodes {
		if n.DisplayName == compiler.StepDump && n.Inputs != nil {
			for _, p := range n.Inputs.Parameters {
				if p.Name == compiler.ParamName && p.Value.String() != run.Name {
					t.Errorf("dump ran with name %q, want %q", p.Value, run.Name)
				}
			}
		}
	}
}
