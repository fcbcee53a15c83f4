package compiler

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// A run's steps are one table (backupSteps, restoreSteps): what each step
// calls, what it waits for, when the spec leaves it out and when its failure
// is tolerated. Both ways a run is compiled are read from it: the inline DAG
// of a Workflow, which holds only the steps the spec needs, and the Strict
// run template, which holds every step and switches them by parameters.
// Keeping one table keeps the two from drifting apart; a test runs both on
// every outcome of every step.

// step is a row of a run's table of steps.
type step struct {
	name string
	// stage is the stage template the step calls; nil for a hook, which calls
	// the exec or the container hook template, as its spec says.
	stage *stage
	// needs are steps that must have succeeded, or merely finished when their
	// failure is tolerated. A needed step the spec leaves out is passed
	// through: the step then waits for what that one needed.
	needs []string
	// requires is a step without which this one is left out too, and which
	// must have succeeded.
	requires string
	// after are steps that must be over, however they ended.
	after []string
	// finally makes the step run once every step before it in the table is
	// over, however they ended, and also when one of them failed: the
	// post-hook undoes what the pre-hook did.
	finally bool
	// skippedWhen says the spec does not need the step; nil when it always
	// runs.
	skippedWhen func(runChoices) bool
	// toleratedWhen says its failure must not fail the run; nil when it never
	// is.
	toleratedWhen func(runChoices) bool
	// fixed are the arguments the run template passes the step itself; a
	// compiled Workflow does not pass them.
	fixed map[string]string
}

// stage is a stage template a step calls.
type stage struct {
	ref      wfv1.TemplateRef
	template func(Options) wfv1.Template
}

func stageOf(name, entry string, template func(Options) wfv1.Template) *stage {
	return &stage{ref: wfv1.TemplateRef{Name: name, Template: entry, ClusterScope: true}, template: template}
}

// runChoices are what a spec decides about its run's steps.
type runChoices struct {
	preHook, postHook *v1.Hook
	verify, rotate    bool
}

func (c runChoices) hook(name string) *v1.Hook {
	if name == StepPreHook {
		return c.preHook
	}
	return c.postHook
}

// hookStep is the row of a hook: left out when the spec has none, tolerated
// when its onError is Continue.
func hookStep(name string) step {
	return step{
		name:          name,
		skippedWhen:   func(c runChoices) bool { return c.hook(name) == nil },
		toleratedWhen: func(c runChoices) bool { return c.hook(name).OnError == v1.HookErrorContinue },
		fixed:         withNamespace(nil),
	}
}

// dumpedKey is the object key the dump wrote, for the steps after it.
var dumpedKey = fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", StepDump, OutputKey)

// dumpedChecksum is the checksum of the object the dump wrote: verify checks
// that object, whatever manifest it finds beside it.
var dumpedChecksum = fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", StepDump, OutputChecksum)

// runTable is the table of a run's steps, with what its run template is
// called.
type runTable struct {
	// entrypoint names the DAG template, in both modes.
	entrypoint string
	// runTemplate and description are the Strict run template's.
	runTemplate, description string
	steps                    []step
}

var backupSteps = runTable{
	entrypoint:  "backup",
	runTemplate: TemplateBackupRun,
	description: "backflow backup, the whole run (pre-hook -> dump -> verify -> post-hook -> rotate) as one template, for controllers with templateReferencing Strict; the backflow controller passes every choice as an argument.",
	steps: []step{
		hookStep(StepPreHook),
		{
			name: StepDump, stage: stageOf(TemplateDump, EntryDump, dumpTemplate), needs: []string{StepPreHook},
			// The Backup is named after its Workflow (WorkflowName), also for
			// the Workflows a CronWorkflow starts.
			fixed: withStorage(StepDump, withNamespace(map[string]string{ParamName: "{{workflow.name}}"})),
		},
		{
			name: StepVerify, stage: stageOf(TemplateVerify, EntryVerify, verifyTemplate), needs: []string{StepDump},
			skippedWhen: func(c runChoices) bool { return !c.verify },
			fixed:       withStorage(StepVerify, withNamespace(map[string]string{ParamKey: dumpedKey, ParamExpectChecksum: dumpedChecksum})),
		},
		withFinally(hookStep(StepPostHook)),
		{
			// Retention acts only on a series whose newest backup was verified.
			name: StepRotate, stage: stageOf(TemplateRotate, EntryRotate, rotateTemplate),
			requires: StepVerify, after: []string{StepPostHook},
			skippedWhen: func(c runChoices) bool { return !c.rotate },
			fixed:       withStorage(StepRotate, withNamespace(map[string]string{ParamKey: dumpedKey})),
		},
	},
}

var restoreSteps = runTable{
	entrypoint:  "restore",
	runTemplate: TemplateRestoreRun,
	description: "backflow restore, the whole run (pre-hook -> verify -> restore -> post-hook) as one template, for controllers with templateReferencing Strict; the backflow controller passes every choice as an argument.",
	steps: []step{
		hookStep(StepPreHook),
		{
			// The whole object is read, decrypted and checked before the target
			// sees a byte.
			name: StepVerify, stage: stageOf(TemplateVerify, EntryVerify, verifyTemplate), needs: []string{StepPreHook},
			skippedWhen: func(c runChoices) bool { return !c.verify },
			fixed:       withStorage(StepVerify, withNamespace(nil)),
		},
		{
			name: StepRestore, stage: stageOf(TemplateRestore, EntryRestore, restoreTemplate), needs: []string{StepVerify},
			fixed: withStorage(StepRestore, withNamespace(nil)),
		},
		withFinally(hookStep(StepPostHook)),
	},
}

func withFinally(s step) step {
	s.finally = true
	return s
}

func (t runTable) row(name string) (step, bool) {
	for _, s := range t.steps {
		if s.name == name {
			return s, true
		}
	}
	return step{}, false
}

// Names are the names of the table's steps, in order.
func (t runTable) names() []string {
	names := make([]string, len(t.steps))
	for i, s := range t.steps {
		names[i] = s.name
	}
	return names
}

// plan is the table applied to one spec's choices: which steps run, and
// which of them may fail without failing the run.
type plan struct {
	table     runTable
	present   map[string]bool
	tolerated map[string]bool
}

func (t runTable) plan(c runChoices) plan {
	p := plan{table: t, present: map[string]bool{}, tolerated: map[string]bool{}}
	for _, s := range t.steps {
		if (s.skippedWhen != nil && s.skippedWhen(c)) || (s.requires != "" && !p.present[s.requires]) {
			continue
		}
		p.present[s.name] = true
		p.tolerated[s.name] = s.toleratedWhen != nil && s.toleratedWhen(c)
	}
	return p
}

// storageSteps are the plan's steps that call a stage template (every one
// uses the storage), with their deadlines: the spec's where set, the
// stage's default otherwise.
func (p plan) storageSteps(deadlines map[string]*int32) []StorageStep {
	var steps []StorageStep
	for _, s := range p.table.steps {
		if !p.present[s.name] || s.isHook() {
			continue
		}
		seconds := int64(defaultDeadlines[s.stage.ref.Template])
		if set := deadlines[s.name]; set != nil {
			seconds = int64(*set)
		}
		steps = append(steps, StorageStep{Name: s.name, Deadline: time.Duration(seconds) * time.Second})
	}
	return steps
}

// inline is the DAG of a Workflow that runs the plan's steps, and the
// templates it calls beside the stage templates; task gives each step's
// template reference and arguments. Every step but the tolerated ones is a
// target, so that the DAG fails when any of them fails, even one whose
// failure a later step handles: a post-hook that runs after a failed dump
// must not make the run green. (Argo refuses continueOn beside depends;
// leaving a task out of the targets has the same effect.) Argo runs only
// the targets and the steps they depend on, so a tolerated step that no
// target depends on (a post-hook with nothing after it) is followed by
// stepEnd, a target that waits for it however it ended.
func (p plan) inline(task func(name string) (wfv1.DAGTask, error)) ([]wfv1.Template, error) {
	dag := &wfv1.DAGTemplate{}
	var targets []string
	for _, s := range p.table.steps {
		if !p.present[s.name] {
			continue
		}
		t, err := task(s.name)
		if err != nil {
			return nil, err
		}
		t.Name, t.Depends = s.name, p.depends(s)
		dag.Tasks = append(dag.Tasks, t)
		if !p.tolerated[s.name] {
			targets = append(targets, s.name)
		}
	}
	templates := []wfv1.Template{{Name: p.table.entrypoint, DAG: dag}}
	if unreached := unreachedFrom(dag.Tasks, targets); len(unreached) > 0 {
		var clauses []string
		for _, name := range unreached {
			clauses = append(clauses, "("+anyOutcome(name)+")")
		}
		dag.Tasks = append(dag.Tasks, wfv1.DAGTask{Name: stepEnd, Template: stepEnd, Depends: strings.Join(clauses, " && ")})
		targets = append(targets, stepEnd)
		templates = append(templates, endTemplate())
	}
	dag.Target = strings.Join(targets, " ")
	return templates, nil
}

// stepEnd is the task, and the template it calls, that ends a run whose
// last steps are tolerated: it creates no pod and succeeds at once.
const stepEnd = "end"

func endTemplate() wfv1.Template {
	return wfv1.Template{Name: stepEnd, Suspend: &wfv1.SuspendTemplate{Duration: "0"}}
}

// dependsTerm is a step's outcome in a depends clause.
var dependsTerm = regexp.MustCompile(`([a-z][a-z0-9-]*)\.(Succeeded|Failed|Errored|Skipped|Omitted)`)

// unreachedFrom are the tasks, in order, that are neither targets nor
// anything a target depends on, directly or not: those Argo never runs.
func unreachedFrom(tasks []wfv1.DAGTask, targets []string) []string {
	reached := map[string]bool{}
	var reach func(name string)
	reach = func(name string) {
		if reached[name] {
			return
		}
		reached[name] = true
		for _, t := range tasks {
			if t.Name == name {
				for _, m := range dependsTerm.FindAllStringSubmatch(t.Depends, -1) {
					reach(m[1])
				}
			}
		}
	}
	for _, name := range targets {
		reach(name)
	}
	var unreached []string
	for _, t := range tasks {
		if !reached[t.Name] {
			unreached = append(unreached, t.Name)
		}
	}
	return unreached
}

// depends is the inline depends clause of a step of the plan.
func (p plan) depends(s step) string {
	if s.finally {
		return p.afterAll(s.name)
	}
	var clauses []string
	for _, need := range s.needs {
		clauses = append(clauses, p.needed(need)...)
	}
	if s.requires != "" {
		clauses = append(clauses, succeeded(s.requires, false))
	}
	for _, a := range s.after {
		if p.present[a] {
			clauses = append(clauses, "("+anyOutcome(a)+")")
		}
	}
	return strings.Join(clauses, " && ")
}

// needed are the clauses that hold once a needed step succeeded, or, when the
// plan leaves it out, once what it needed did.
func (p plan) needed(name string) []string {
	if p.present[name] {
		return []string{succeeded(name, p.tolerated[name])}
	}
	s, _ := p.table.row(name)
	var clauses []string
	for _, need := range s.needs {
		clauses = append(clauses, p.needed(need)...)
	}
	return clauses
}

// afterAll holds once the last step before the named one is over, however
// it ended, or once an earlier step failed, which leaves the ones after it
// out. (Argo evaluates a depends clause once every step it names is over.) A
// tolerated failure leaves nothing out and needs no clause.
func (p plan) afterAll(name string) string {
	var before []string
	for _, s := range p.table.steps {
		if s.name == name {
			break
		}
		if p.present[s.name] && !s.finally {
			before = append(before, s.name)
		}
	}
	if len(before) == 0 {
		return ""
	}
	clauses := []string{anyOutcome(before[len(before)-1])}
	for i := len(before) - 2; i >= 0; i-- {
		if !p.tolerated[before[i]] {
			clauses = append(clauses, failed(before[i]))
		}
	}
	return strings.Join(clauses, " || ")
}

// succeeded is a depends clause for a step that must have succeeded, or
// merely finished when its failure is tolerated.
func succeeded(task string, tolerateFailure bool) string {
	if tolerateFailure {
		return "(" + anyOutcome(task) + ")"
	}
	return task + ".Succeeded"
}

// anyOutcome is a depends clause that holds once a step finished, however.
func anyOutcome(task string) string {
	return task + ".Succeeded || " + failed(task)
}

func failed(task string) string { return task + ".Failed || " + task + ".Errored" }

// finished is a depends clause that holds however a step ended, also when it
// was skipped or omitted: in a run template every step exists.
func finished(task string) string {
	return anyOutcome(task) + " || " + task + ".Skipped || " + task + ".Omitted"
}

// A run template has every step of the table. Those a spec may leave out are
// switched by a Workflow parameter named after the step: a hook's holds its
// kind (exec or container, empty for none), the others' true or false.

func (s step) isHook() bool { return s.stage == nil }

func (s step) skippable() bool { return s.skippedWhen != nil }

func (s step) tolerable() bool { return s.toleratedWhen != nil }

// switchedOn is the when clause of a run template's step that holds when
// its switch is on; empty for a step that always runs.
func (s step) switchedOn() string {
	switch {
	case s.isHook():
		return fmt.Sprintf("'%s' != ''", workflowParam(s.name))
	case s.skippable():
		return fmt.Sprintf("'%s' == '%s'", workflowParam(s.name), paramEnabled)
	}
	return ""
}

// strictDepends is the depends clause of a step in the run template.
func (t runTable) strictDepends(s step) string {
	if s.finally {
		for i := range t.steps {
			if t.steps[i].name == s.name && i > 0 {
				return finished(t.steps[i-1].name)
			}
		}
		return ""
	}
	var clauses []string
	for _, need := range s.needs {
		n, _ := t.row(need)
		switch {
		case n.tolerable():
			// Whether its failure is tolerated is a parameter, which a depends
			// clause cannot read: the when clause does (strictWhen).
			clauses = append(clauses, finished(need))
		case n.skippable():
			clauses = append(clauses, need+".Succeeded || "+need+".Skipped")
		default:
			clauses = append(clauses, succeeded(need, false))
		}
	}
	if s.requires != "" {
		clauses = append(clauses, succeeded(s.requires, false))
	}
	for _, a := range s.after {
		clauses = append(clauses, "("+finished(a)+")")
	}
	return strings.Join(clauses, " && ")
}

// strictWhen is the when clause of a step in the run template: its switch,
// and for every step it needs, directly or through a switched-off one, that
// it succeeded, was switched off, or failed with its failure tolerated.
func (t runTable) strictWhen(s step) string {
	var conditions []string
	var inherit func(names []string)
	inherit = func(names []string) {
		for _, need := range names {
			n, _ := t.row(need)
			switch {
			case n.tolerable():
				status := fmt.Sprintf("'{{tasks.%s.status}}'", need)
				conditions = append(conditions, fmt.Sprintf("%s == 'Succeeded' || %s == 'Skipped' || '%s' == '%s'",
					status, status, workflowParam(stepParam(need, ParamHookOnError)), v1.HookErrorContinue))
			case n.skippable():
				inherit(n.needs)
			}
		}
	}
	inherit(s.needs)
	own := s.switchedOn()
	switch {
	case own == "":
		return strings.Join(conditions, " && ")
	case len(conditions) == 0:
		return own
	}
	return own + " && (" + strings.Join(conditions, ") && (") + ")"
}
