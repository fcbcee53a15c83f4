// Package hookmatrix_test proves that a Backup's steps keep their promises
// in every combination of its choices: each combination of pre- and
// post-hook (none, onError Fail, onError Continue), verify and retention
// (on, off), with its steps failing in a covering set of ways, in both the
// inline and the Strict (workflowTemplateRef) mode, is compiled by the
// backflow controller, run by the real Argo workflow-controller and
// mirrored back into the Backup's status.
//
// What each run must do is written here from the promises alone, not read
// from the compiler's table of steps, so that a drift between the table,
// the inline DAG and the Strict run template fails the matrix.
package hookmatrix_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"go.uber.org/zap/zapcore"
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

// parallelCells is how many cells run at once: they mostly wait for Argo's
// requeues, not for the CPU.
const parallelCells = 32

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == fmt.Sprint(runtime.GOMAXPROCS(0)) {
		_ = f.Value.Set(fmt.Sprint(parallelCells))
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
	// Argo runs without workflowRestrictions, so that one controller runs
	// the Workflows of both modes; test/strict shows that a Strict Argo
	// accepts those of the Strict mode.
	if stack, err = argotest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stack.Stop()
	stack.Driver.DefaultOutputs = argotest.StepOutputs
	// The templates for the controllers' images: the run templates accept
	// no other.
	if err := stack.InstallCompiledTemplates(compilerOptions(compiler.TemplateReferencingStrict)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		logs := stack.Logs("workflow-controller")
		fmt.Fprintln(os.Stderr, "--- workflow-controller log (tail) ---\n"+logs[max(0, len(logs)-4000):])
	}
	return code
}

// compilerOptions are the controllers' of a mode; busybox, which the
// commands and container hooks run, is the allowed user image.
func compilerOptions(mode compiler.TemplateReferencing) compiler.Options {
	opts := argotest.CompilerOptions()
	opts.TemplateReferencing = mode
	opts.AllowedImages = []string{"busybox"}
	return opts
}

// A cell is one combination of a Backup's choices, one mode, and the steps
// whose pods fail.
type cell struct {
	mode compiler.TemplateReferencing
	// pre and post are the hooks' onError; empty when the spec has none.
	pre, post         v1.HookErrorPolicy
	verify, retention bool
	failing           []string
}

func (c cell) modeName() string {
	if c.mode == compiler.TemplateReferencingStrict {
		return "strict"
	}
	return "inline"
}

// config names the cell's choices, without its mode and failures.
func (c cell) config() string {
	return fmt.Sprintf("pre=%s,post=%s,verify=%s,retention=%s", hookName(c.pre), hookName(c.post), onOff(c.verify), onOff(c.retention))
}

func (c cell) String() string {
	failing := "nothing"
	if len(c.failing) > 0 {
		failing = strings.Join(c.failing, "+")
	}
	return c.modeName() + "," + c.config() + ",failing=" + failing
}

// hookName names a hook by its onError, none when there is no hook.
func hookName(p v1.HookErrorPolicy) string {
	if p == "" {
		return "none"
	}
	return strings.ToLower(string(p))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// present are the steps a cell's spec has, in the documented order
// (pre-hook -> dump -> verify -> post-hook -> rotate); whether they run is
// promised().
func (c cell) present() []string {
	steps := []string{}
	if c.pre != "" {
		steps = append(steps, compiler.StepPreHook)
	}
	steps = append(steps, compiler.StepDump)
	if c.verify {
		steps = append(steps, compiler.StepVerify)
	}
	if c.post != "" {
		steps = append(steps, compiler.StepPostHook)
	}
	if c.retention {
		steps = append(steps, compiler.StepRotate)
	}
	return steps
}

// full runs every combination with every failure of the covering set,
// about three times the cells of the default matrix.
var full = flag.Bool("full", false, "run every combination with every failure of the covering set")

// cells is the matrix: every combination of the choices (but retention
// without verify, which admission refuses) in both modes, with failures
// from this covering set: nothing fails; the dump fails; every step the
// spec has but the dump fails, which puts a failing post-hook after a
// failing pre-hook or verify, and a tolerated pre-hook failure before one
// that fails the run. With -full each combination runs all three; by
// default one, chosen as in a Latin square, so that each hook pair, each
// verify and retention choice and each mode meets every failure. (Every
// subset of failing steps of every combination is simulated as Argo
// evaluates the DAG by controller/compiler's TestInlineAndStrictRunTheSameSteps;
// here the real Argo runs the subsets that tell the promises apart.)
func cells() []cell {
	hooks := []v1.HookErrorPolicy{"", v1.HookErrorFail, v1.HookErrorContinue}
	type choice struct{ verify, retention bool }
	// Retention without verify is refused at admission (TestRetentionNeedsVerify).
	choices := []choice{{false, false}, {true, false}, {true, true}}
	var out []cell
	for _, mode := range []compiler.TemplateReferencing{compiler.TemplateReferencingInline, compiler.TemplateReferencingStrict} {
		for i, pre := range hooks {
			for j, post := range hooks {
				for k, ch := range choices {
					c := cell{mode: mode, pre: pre, post: post, verify: ch.verify, retention: ch.retention}
					failures := [][]string{nil, {compiler.StepDump}}
					// A spec with the dump alone has no third failure: it
					// takes the second.
					others := slices.DeleteFunc(c.present(), func(s string) bool { return s == compiler.StepDump })
					if len(others) > 0 {
						failures = append(failures, others)
					}
					if !*full {
						pick := min((i+j+k)%3, len(failures)-1)
						failures = failures[pick : pick+1]
					}
					for _, failing := range failures {
						c.failing = failing
						out = append(out, c)
					}
				}
			}
		}
	}
	return out
}

// promise is what a run must do.
type promise struct {
	// ran are the steps whose pods run, in order.
	ran []string
	// failedStep is the first step whose failure fails the run; empty when
	// the run succeeds.
	failedStep string
}

// promised is what the steps promise users, for one cell:
//   - a pre-hook, when the spec has one, runs first;
//   - nothing runs after a failing pre-hook whose onError is Fail, except
//     the post-hook; after one whose onError is Continue the run goes on;
//   - verify runs only after a successful dump;
//   - the post-hook runs whenever the pre-hook ran, and always when there is
//     no pre-hook: after the dump, or after verify when it runs, however
//     they ended;
//   - rotate runs only after a successful verify, last;
//   - the run fails exactly when a step failed whose failure is not
//     tolerated (a hook with onError Continue is; nothing else).
func (c cell) promised() promise {
	var p promise
	fails := func(step string) bool { return slices.Contains(c.failing, step) }
	ran := func(step string, tolerated bool) bool {
		p.ran = append(p.ran, step)
		if !fails(step) {
			return true
		}
		if !tolerated && p.failedStep == "" {
			p.failedStep = step
		}
		return tolerated
	}
	goOn := true
	if c.pre != "" {
		goOn = ran(compiler.StepPreHook, c.pre == v1.HookErrorContinue)
	}
	dumped, verified := false, false
	if goOn {
		dumped = ran(compiler.StepDump, false)
	}
	if c.verify && dumped {
		verified = ran(compiler.StepVerify, false)
	}
	if c.post != "" {
		ran(compiler.StepPostHook, c.post == v1.HookErrorContinue)
	}
	if c.retention && verified {
		ran(compiler.StepRotate, false)
	}
	return p
}

// spec is the cell's Backup: a command source, hooks of both kinds (the
// pre-hook an exec and the post-hook a container hook with retention off,
// the other way round with it on).
func (c cell) spec() v1.BackupSpec {
	s := v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: argotest.StorageName}},
		Verify:  &v1.VerifySpec{Checksum: ptr(c.verify)},
	}
	exec := func(onError v1.HookErrorPolicy) *v1.Hook {
		return &v1.Hook{Exec: &v1.ExecHook{PodName: "app", Command: []string{"sync"}}, OnError: onError}
	}
	container := func(onError v1.HookErrorPolicy) *v1.Hook {
		return &v1.Hook{Container: &v1.ContainerHook{Image: "busybox", Command: []string{"true"}}, OnError: onError}
	}
	preKind, postKind := exec, container
	if c.retention {
		preKind, postKind = container, exec
		s.Retention = &v1.Retention{KeepLast: ptr(int32(3))}
	}
	if c.pre != "" || c.post != "" {
		s.Hooks = &v1.Hooks{}
		if c.pre != "" {
			s.Hooks.Pre = preKind(c.pre)
		}
		if c.post != "" {
			s.Hooks.Post = postKind(c.post)
		}
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// result is what a cell's run did, for the summary.
type result struct {
	cell   cell
	passed bool
}

func TestHooksKeepTheirPromiseInEveryCombination(t *testing.T) {
	all := cells()
	// Each mode's controller watches the namespaces of its cells, which
	// therefore exist before it starts. The cells of one mode and one pair
	// of hooks share a namespace (each Backup has a name of its own): a
	// controller watches every namespace it is given on its own, and one per
	// cell would cost the apiserver more than the runs do.
	namespaces := make([]string, len(all))
	byMode := map[compiler.TemplateReferencing][]string{}
	shared := map[string]string{}
	for i, c := range all {
		group := fmt.Sprint(c.mode, c.pre, c.post)
		if shared[group] == "" {
			shared[group] = stack.NewNamespace(t, minio)
			byMode[c.mode] = append(byMode[c.mode], shared[group])
		}
		namespaces[i] = shared[group]
	}
	for mode, watched := range byMode {
		stop, err := stack.StartManager(controller.Options{Compiler: compilerOptions(mode), Workflows: argotest.Workflows(), Namespaces: watched, MetricsAddr: "0", ProbeAddr: "0",
			StorageCheckInterval: time.Minute, AllowRestart: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	start := time.Now()
	var mu sync.Mutex
	var results []result
	t.Run("cells", func(t *testing.T) {
		for i, c := range all {
			t.Run(c.String(), func(t *testing.T) {
				t.Parallel()
				t.Cleanup(func() {
					mu.Lock()
					defer mu.Unlock()
					results = append(results, result{cell: c, passed: !t.Failed()})
				})
				runCell(t, namespaces[i], fmt.Sprintf("cell-%03d", i), c)
			})
		}
	})
	t.Log(summary(results, time.Since(start)))
}

// runCell runs one cell's Backup and checks its run against the promises.
func runCell(t *testing.T, ns, name string, c cell) {
	ctx := context.Background()
	for _, step := range c.failing {
		stack.Driver.Set(name, step, argotest.Outcome{Fail: true, Message: step + " broke: exit code 1"})
	}
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: c.spec()}
	if err := stack.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "the Backup to finish", 3*time.Minute, func() (bool, string) {
		if err := stack.Client.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return false, err.Error()
		}
		return b.Status.Phase.IsFinished(), fmt.Sprintf("%s %q %+v", b.Status.Phase, b.Status.Message, b.Status.Stages)
	})
	want := c.promised()
	wf := stack.Workflow(t, ns, name)
	if strict := wf.Spec.WorkflowTemplateRef != nil; strict != (c.mode == compiler.TemplateReferencingStrict) || strict == (len(wf.Spec.Templates) > 0) {
		t.Fatalf("the Workflow is not one of the %s mode: templateRef %v, %d templates", c.modeName(), wf.Spec.WorkflowTemplateRef, len(wf.Spec.Templates))
	}
	defer func() {
		if t.Failed() {
			t.Logf("promised %+v\nWorkflow %s %q, nodes:%s", want, wf.Status.Phase, wf.Status.Message, describeNodes(wf))
		}
	}()

	// The steps that ran are the pods the driver ended, in order, each once
	// and ending as the cell says.
	var ran []string
	for _, r := range stack.Driver.Ended(ns, name) {
		ran = append(ran, r.Step)
		if r.Failed != slices.Contains(c.failing, r.Step) {
			t.Errorf("the pod of %s failed: %t", r.Step, r.Failed)
		}
	}
	if !slices.Equal(ran, want.ran) {
		t.Errorf("steps ran %v, want %v", ran, want.ran)
	}
	// Argo made no pod the driver did not end.
	var pods []string
	for _, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePod {
			pods = append(pods, argotest.StepOfNode(wf.Name, n.Name))
		}
	}
	slices.Sort(pods)
	if sorted := slices.Sorted(slices.Values(want.ran)); !slices.Equal(pods, sorted) {
		t.Errorf("the Workflow has pods for %v, want %v", pods, sorted)
	}

	wantWorkflow, wantBackup := wfv1.WorkflowSucceeded, v1.PhaseSucceeded
	if want.failedStep != "" {
		wantWorkflow, wantBackup = wfv1.WorkflowFailed, v1.PhaseFailed
	}
	if wf.Status.Phase != wantWorkflow {
		t.Errorf("Workflow %s, want %s", wf.Status.Phase, wantWorkflow)
	}
	if b.Status.Phase != wantBackup {
		t.Errorf("Backup %s (%q), want %s", b.Status.Phase, b.Status.Message, wantBackup)
	}
	if want.failedStep != "" && !strings.Contains(b.Status.Message, "step "+want.failedStep+" failed") {
		t.Errorf("Backup message %q does not name the failed step %s", b.Status.Message, want.failedStep)
	}
	// The Backup's stages mirror the steps that ran, and only those.
	stages := map[string]string{}
	for _, s := range b.Status.Stages {
		if s.Phase == string(wfv1.NodeSucceeded) || s.Phase == string(wfv1.NodeFailed) || s.Phase == string(wfv1.NodeError) {
			stages[s.Name] = s.Phase
		}
	}
	wantStages := map[string]string{}
	for _, step := range want.ran {
		wantStages[step] = string(wfv1.NodeSucceeded)
		if slices.Contains(c.failing, step) {
			wantStages[step] = string(wfv1.NodeFailed)
		}
	}
	if fmt.Sprint(stages) != fmt.Sprint(wantStages) {
		t.Errorf("Backup stages %v, want %v", stages, wantStages)
	}
}

func describeNodes(wf *wfv1.Workflow) string {
	var lines []string
	for _, n := range wf.Status.Nodes {
		lines = append(lines, fmt.Sprintf("\n  %s (%s): %s %q", n.Name, n.Type, n.Phase, n.Message))
	}
	slices.Sort(lines)
	return strings.Join(lines, "")
}

// summary is the matrix: one row per mode and hook combination, one column
// per verify and retention choice, each passed/cells.
func summary(results []result, took time.Duration) string {
	type key struct{ row, column string }
	passed, total := map[key]int{}, map[key]int{}
	var rows, columns []string
	allPassed := 0
	sign := func(b bool) string {
		if b {
			return "+"
		}
		return "-"
	}
	for _, r := range results {
		c := r.cell
		k := key{
			row:    fmt.Sprintf("%-6s pre=%-8s post=%-8s", c.modeName(), hookName(c.pre), hookName(c.post)),
			column: "verify" + sign(c.verify) + " retention" + sign(c.retention),
		}
		if !slices.Contains(rows, k.row) {
			rows = append(rows, k.row)
		}
		if !slices.Contains(columns, k.column) {
			columns = append(columns, k.column)
		}
		total[k]++
		if r.passed {
			passed[k]++
			allPassed++
		}
	}
	slices.Sort(rows)
	slices.Sort(columns)
	var b strings.Builder
	fmt.Fprintf(&b, "hook matrix: %d cells, %d passed, in %s (passed/cells)\n%-35s", len(results), allPassed, took.Round(time.Second), "")
	for _, col := range columns {
		fmt.Fprintf(&b, " %-18s", col)
	}
	for _, row := range rows {
		fmt.Fprintf(&b, "\n%-35s", row)
		for _, col := range columns {
			fmt.Fprintf(&b, " %-18s", fmt.Sprintf("%d/%d", passed[key{row, col}], total[key{row, col}]))
		}
	}
	return b.String()
}

// The combination the matrix leaves out, retention without verify, is
// refused when it is applied: rotate acts only on verified backups.
func TestRetentionNeedsVerify(t *testing.T) {
	ns := stack.NewNamespace(t, minio)
	c := cell{verify: false, retention: true}
	err := stack.Client.Create(context.Background(), &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unverified"}, Spec: c.spec()})
	if err == nil || !strings.Contains(err.Error(), "retention needs verify") {
		t.Fatalf("a Backup with retention and without verify: %v", err)
	}
}
