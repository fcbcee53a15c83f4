package compiler

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/expr-lang/expr"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

func TestPlanLeavesOutWhatTheSpecDoesNotNeed(t *testing.T) {
	hook := &v1.Hook{OnError: v1.HookErrorFail}
	tests := []struct {
		name    string
		table   runTable
		choices runChoices
		want    []string
	}{
		{"backup, nothing optional", backupSteps, runChoices{}, []string{StepDump}},
		{"backup, verify", backupSteps, runChoices{verify: true}, []string{StepDump, StepVerify}},
		// Retention acts only on verified backups.
		{"backup, retention without verify", backupSteps, runChoices{rotate: true}, []string{StepDump}},
		{"backup, everything", backupSteps, runChoices{preHook: hook, postHook: hook, verify: true, rotate: true},
			[]string{StepPreHook, StepDump, StepVerify, StepPostHook, StepRotate}},
		{"restore, nothing optional", restoreSteps, runChoices{}, []string{StepRestore}},
		{"restore, verify and post-hook", restoreSteps, runChoices{verify: true, postHook: hook}, []string{StepVerify, StepRestore, StepPostHook}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.table.plan(tt.choices)
			var got []string
			for _, name := range tt.table.names() {
				if p.present[name] {
					got = append(got, name)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("steps %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInlineDepends(t *testing.T) {
	fail := &v1.Hook{OnError: v1.HookErrorFail}
	tolerate := &v1.Hook{OnError: v1.HookErrorContinue}
	tests := []struct {
		name    string
		table   runTable
		choices runChoices
		want    map[string]string
		targets string
	}{
		{
			name: "backup with everything", table: backupSteps,
			choices: runChoices{preHook: fail, postHook: tolerate, verify: true, rotate: true},
			want: map[string]string{
				StepPreHook:  "",
				StepDump:     "pre-hook.Succeeded",
				StepVerify:   "dump.Succeeded",
				StepPostHook: "verify.Succeeded || verify.Failed || verify.Errored || dump.Failed || dump.Errored || pre-hook.Failed || pre-hook.Errored",
				StepRotate:   "verify.Succeeded && (post-hook.Succeeded || post-hook.Failed || post-hook.Errored)",
			},
			targets: "pre-hook dump verify rotate",
		},
		{
			// Without verify the post-hook follows the dump, also when it
			// succeeded.
			name: "backup without verify", table: backupSteps,
			choices: runChoices{preHook: fail, postHook: fail},
			want: map[string]string{
				StepDump:     "pre-hook.Succeeded",
				StepPostHook: "dump.Succeeded || dump.Failed || dump.Errored || pre-hook.Failed || pre-hook.Errored",
			},
			targets: "pre-hook dump post-hook",
		},
		{
			// A tolerated pre-hook failure leaves no step out, so it needs no
			// clause of its own.
			name: "backup with a tolerated pre-hook", table: backupSteps,
			choices: runChoices{preHook: tolerate, postHook: fail, verify: true},
			want: map[string]string{
				StepDump:     "(pre-hook.Succeeded || pre-hook.Failed || pre-hook.Errored)",
				StepPostHook: "verify.Succeeded || verify.Failed || verify.Errored || dump.Failed || dump.Errored",
			},
			targets: "dump verify post-hook",
		},
		{
			// Argo runs only the targets and what they depend on: a
			// tolerated post-hook with nothing after it is followed by the
			// end, a target.
			name: "backup with a tolerated post-hook last", table: backupSteps,
			choices: runChoices{postHook: tolerate, verify: true},
			want: map[string]string{
				StepPostHook: "verify.Succeeded || verify.Failed || verify.Errored || dump.Failed || dump.Errored",
				stepEnd:      "(post-hook.Succeeded || post-hook.Failed || post-hook.Errored)",
			},
			targets: "dump verify end",
		},
		{
			name: "restore with a tolerated post-hook", table: restoreSteps,
			choices: runChoices{preHook: tolerate, postHook: tolerate},
			want: map[string]string{
				StepRestore:  "(pre-hook.Succeeded || pre-hook.Failed || pre-hook.Errored)",
				StepPostHook: "restore.Succeeded || restore.Failed || restore.Errored",
				stepEnd:      "(post-hook.Succeeded || post-hook.Failed || post-hook.Errored)",
			},
			targets: "restore end",
		},
		{
			name: "restore without verify", table: restoreSteps,
			choices: runChoices{preHook: fail, postHook: fail},
			want: map[string]string{
				StepRestore:  "pre-hook.Succeeded",
				StepPostHook: "restore.Succeeded || restore.Failed || restore.Errored || pre-hook.Failed || pre-hook.Errored",
			},
			targets: "pre-hook restore post-hook",
		},
		{
			name: "restore with verify", table: restoreSteps,
			choices: runChoices{verify: true, postHook: fail},
			want: map[string]string{
				StepVerify:   "",
				StepRestore:  "verify.Succeeded",
				StepPostHook: "restore.Succeeded || restore.Failed || restore.Errored || verify.Failed || verify.Errored",
			},
			targets: "verify restore post-hook",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			templates, err := tt.table.plan(tt.choices).inline(func(string) (wfv1.DAGTask, error) { return wfv1.DAGTask{}, nil })
			if err != nil {
				t.Fatal(err)
			}
			dag := templates[0]
			got := map[string]string{}
			for _, task := range dag.DAG.Tasks {
				got[task.Name] = task.Depends
			}
			for name, depends := range tt.want {
				if got[name] != depends {
					t.Errorf("%s depends on %q, want %q", name, got[name], depends)
				}
			}
			if dag.DAG.Target != tt.targets {
				t.Errorf("targets %q, want %q", dag.DAG.Target, tt.targets)
			}
		})
	}
}

// The inline DAG and the Strict run template run the same steps with the
// same outcome, for every example and every combination of the choices a
// spec makes, whichever steps fail: both are evaluated as Argo evaluates
// them (depends, when, the DAG's targets), on every subset of failing steps.
// test/strict runs the run templates in a real Argo.
func TestInlineAndStrictRunTheSameSteps(t *testing.T) {
	ex := examples(t)
	st := exampleStorage(t, ex)
	var backups []*v1.Backup
	var restores []*v1.Restore
	for _, objs := range ex {
		for _, obj := range objs {
			switch obj["kind"] {
			case "Backup":
				var b v1.Backup
				convert(t, obj, &b)
				backups = append(backups, &b)
			case "BackupSchedule":
				var s v1.BackupSchedule
				convert(t, obj, &s)
				backups = append(backups, &v1.Backup{ObjectMeta: s.ObjectMeta, Spec: s.Spec.Template.Spec})
			case "Restore":
				var r v1.Restore
				convert(t, obj, &r)
				restores = append(restores, &r)
			}
		}
	}
	if len(backups) < 4 || len(restores) < 2 {
		t.Fatalf("%d backups and %d restores in examples/", len(backups), len(restores))
	}
	exec := v1.Hook{Exec: &v1.ExecHook{PodName: "app", Command: []string{"sync"}}}
	container := v1.Hook{Container: &v1.ContainerHook{Image: "busybox", Command: []string{"true"}}}
	var hookChoices []*v1.Hooks
	for _, pre := range []*v1.Hook{nil, withOnError(exec, v1.HookErrorFail), withOnError(container, v1.HookErrorContinue)} {
		for _, post := range []*v1.Hook{nil, withOnError(container, v1.HookErrorFail), withOnError(exec, v1.HookErrorContinue)} {
			hookChoices = append(hookChoices, &v1.Hooks{Pre: pre, Post: post})
		}
	}
	runs := 0
	compare := func(t *testing.T, table runTable, compile func(Options) (*wfv1.WorkflowSpec, error)) {
		inline, err := compile(testOptions())
		if err != nil {
			t.Fatal(err)
		}
		strictOpts := testOptions()
		strictOpts.TemplateReferencing = TemplateReferencingStrict
		strict, err := compile(strictOpts)
		if err != nil {
			t.Fatal(err)
		}
		runTemplate := table.clusterTemplate(strictOpts).Spec
		params := map[string]string{}
		for _, p := range slices.Concat(runTemplate.Arguments.Parameters, strict.Arguments.Parameters) {
			params[p.Name] = p.Value.String()
		}
		inlineDAG := inline.Templates[0].DAG
		for failing := range 1 << len(table.steps) {
			fails := map[string]bool{}
			for i, s := range table.steps {
				fails[s.name] = failing&(1<<i) != 0
			}
			got := simulate(t, inlineDAG, nil, fails)
			want := simulate(t, runTemplate.Templates[0].DAG, params, fails)
			if !maps.Equal(got.ran, want.ran) || got.failed != want.failed {
				t.Fatalf("failing %v: inline ran %v (failed %t), Strict ran %v (failed %t)\ninline: %s", fails, got.ran, got.failed, want.ran, want.failed, describeDAG(inlineDAG))
			}
			checkRunPromises(t, inlineDAG, fails, got)
			runs++
		}
	}
	for _, example := range backups {
		for _, hooks := range hookChoices {
			for _, verify := range []bool{true, false} {
				for _, retention := range []*v1.Retention{nil, {KeepLast: ptr(int32(3))}} {
					b := example.DeepCopy()
					b.Namespace, b.Spec.Hooks, b.Spec.Verify, b.Spec.Retention = "apps", hooks, &v1.VerifySpec{Checksum: ptr(verify)}, retention
					t.Run(fmt.Sprintf("backup %s %s verify=%t retention=%t", b.Name, describeHooks(hooks), verify, retention != nil), func(t *testing.T) {
						compare(t, backupSteps, func(opts Options) (*wfv1.WorkflowSpec, error) {
							wf, err := Backup(BackupInput{Backup: b, Storage: st}, opts)
							if err != nil {
								return nil, err
							}
							return &wf.Spec, nil
						})
					})
				}
			}
		}
	}
	for _, example := range restores {
		for _, hooks := range hookChoices {
			for _, verify := range []bool{true, false} {
				r := example.DeepCopy()
				r.Namespace, r.Spec.Hooks, r.Spec.VerifyBeforeRestore = "apps", hooks, ptr(verify)
				t.Run(fmt.Sprintf("restore %s %s verify=%t", r.Name, describeHooks(hooks), verify), func(t *testing.T) {
					compare(t, restoreSteps, func(opts Options) (*wfv1.WorkflowSpec, error) {
						wf, err := Restore(RestoreInput{Restore: r, Storage: st, Key: "apps/x/1.pgdump.zst"}, opts)
						if err != nil {
							return nil, err
						}
						return &wf.Spec, nil
					})
				})
			}
		}
	}
	t.Logf("%d runs compared", runs)
}

// checkRunPromises checks what the steps promise users on one run: the
// post-hook runs whatever happened before it; nothing runs after a failed
// step it needs unless that failure is tolerated; retention acts only on a
// verified backup; a run fails exactly when a step that is not tolerated
// failed.
func checkRunPromises(t *testing.T, dag *wfv1.DAGTemplate, fails map[string]bool, r simulation) {
	t.Helper()
	has := map[string]bool{}
	for _, task := range dag.Tasks {
		has[task.Name] = true
	}
	targets := strings.Fields(dag.Target)
	if has[StepPostHook] && r.ran[StepPostHook] == "" {
		t.Errorf("failing %v: the post-hook did not run", fails)
	}
	preHookStops := r.ran[StepPreHook] == wfv1.NodeFailed && slices.Contains(targets, StepPreHook)
	for _, main := range []string{StepDump, StepRestore} {
		if has[main] && preHookStops && r.ran[main] != "" {
			t.Errorf("failing %v: %s ran after the pre-hook failed", fails, main)
		}
	}
	if r.ran[StepRotate] != "" && r.ran[StepVerify] != wfv1.NodeSucceeded {
		t.Errorf("failing %v: rotate ran without a verified backup", fails)
	}
	wantFailed := false
	for name, phase := range r.ran {
		if phase == wfv1.NodeFailed && slices.Contains(targets, name) {
			wantFailed = true
		}
	}
	if r.failed != wantFailed {
		t.Errorf("failing %v: the run failed: %t, want %t (ran %v)", fails, r.failed, wantFailed, r.ran)
	}
}

type simulation struct {
	// ran holds the phase of every step that ran: Succeeded or Failed.
	ran    map[string]wfv1.NodePhase
	failed bool
}

var (
	taskStatus  = regexp.MustCompile(`\{\{tasks\.([a-z0-9-]+)\.status\}\}`)
	workflowArg = regexp.MustCompile(`\{\{workflow\.parameters\.([a-z0-9-]+)\}\}`)
)

// simulate runs a DAG as Argo's controller does: only the targets and the
// tasks they depend on, directly or not, are considered; of those, a task
// whose depends does not hold is Omitted, one whose when does not hold is
// Skipped, the others run and fail when fails says so; the DAG fails when a
// target's branch failed (an omitted or skipped target takes the phase of
// the last step that ran before it). Tasks come in an order where each
// follows what it depends on, as the tables keep them.
func simulate(t *testing.T, dag *wfv1.DAGTemplate, params map[string]string, fails map[string]bool) simulation {
	t.Helper()
	substitute := func(s string) string {
		return workflowArg.ReplaceAllStringFunc(s, func(m string) string {
			v, ok := params[workflowArg.FindStringSubmatch(m)[1]]
			if !ok {
				t.Fatalf("no parameter in %s", m)
			}
			return v
		})
	}
	phases := map[string]wfv1.NodePhase{}
	parents := map[string][]string{}
	eval := func(what, expression string) bool {
		if expression == "" {
			return true
		}
		out, err := expr.Eval(expression, nil)
		if err != nil {
			t.Fatalf("%s %q: %v", what, expression, err)
		}
		return out.(bool)
	}
	r := simulation{ran: map[string]wfv1.NodePhase{}}
	targets := strings.Fields(substitute(dag.Target))
	unreached := unreachedFrom(dag.Tasks, targets)
	for _, task := range dag.Tasks {
		if slices.Contains(unreached, task.Name) {
			continue
		}
		depends := dependsTerm.ReplaceAllStringFunc(task.Depends, func(m string) string {
			parts := dependsTerm.FindStringSubmatch(m)
			phase, ok := phases[parts[1]]
			if !ok {
				t.Fatalf("%s depends on %s, which is not before it", task.Name, parts[1])
			}
			parents[task.Name] = append(parents[task.Name], parts[1])
			want := map[string]wfv1.NodePhase{"Succeeded": wfv1.NodeSucceeded, "Failed": wfv1.NodeFailed, "Errored": wfv1.NodeError, "Skipped": wfv1.NodeSkipped, "Omitted": wfv1.NodeOmitted}[parts[2]]
			return fmt.Sprint(phase == want)
		})
		when := taskStatus.ReplaceAllStringFunc(substitute(task.When), func(m string) string {
			return string(phases[taskStatus.FindStringSubmatch(m)[1]])
		})
		switch {
		case !eval("depends", depends):
			phases[task.Name] = wfv1.NodeOmitted
		case !eval("when", when):
			phases[task.Name] = wfv1.NodeSkipped
		case fails[task.Name]:
			phases[task.Name] = wfv1.NodeFailed
		default:
			phases[task.Name] = wfv1.NodeSucceeded
		}
		if phases[task.Name].Completed() {
			r.ran[task.Name] = phases[task.Name]
		}
	}
	var branchFailed func(name string) bool
	branchFailed = func(name string) bool {
		if phases[name].Completed() {
			return phases[name].FailedOrError()
		}
		return slices.ContainsFunc(parents[name], branchFailed)
	}
	for _, target := range targets {
		if _, ok := phases[target]; !ok {
			t.Fatalf("target %s is no task", target)
		}
		if branchFailed(target) {
			r.failed = true
		}
	}
	return r
}

func withOnError(h v1.Hook, onError v1.HookErrorPolicy) *v1.Hook {
	h.OnError = onError
	return &h
}

func describeHooks(h *v1.Hooks) string {
	describe := func(h *v1.Hook) string {
		if h == nil {
			return "none"
		}
		return string(h.OnError)
	}
	return "pre=" + describe(h.Pre) + " post=" + describe(h.Post)
}

func describeDAG(dag *wfv1.DAGTemplate) string {
	var b strings.Builder
	for _, task := range dag.Tasks {
		fmt.Fprintf(&b, "\n  %s: depends %q when %q", task.Name, task.Depends, task.When)
	}
	return b.String() + "\n  targets " + dag.Target
}
