package compiler

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TemplateReferencing says how compiled Workflows use the templates, after
// Argo's workflowRestrictions.templateReferencing.
type TemplateReferencing string

const (
	// TemplateReferencingInline compiles each resource into a Workflow with
	// its own DAG whose steps call the stage templates by templateRef.
	TemplateReferencingInline TemplateReferencing = ""
	// TemplateReferencingStrict compiles each resource into a Workflow that
	// names a run template (backflow-backup-run, backflow-restore-run) by
	// workflowTemplateRef and passes arguments, for controllers configured
	// with templateReferencing Strict or Secure. Besides the reference and
	// the arguments the Workflow sets only fields Argo lets a user override
	// there: activeDeadlineSeconds, podGC and ttlStrategy.
	TemplateReferencingStrict TemplateReferencing = "Strict"
)

// Names of the run templates of Strict mode: the whole DAG of a backup or
// restore, every per-resource choice an argument.
const (
	TemplateBackupRun  = "backflow-backup-run"
	TemplateRestoreRun = "backflow-restore-run"
	// entryHook is the run templates' own template that runs a hook of
	// either kind, chosen by its kind parameter.
	entryHook = "hook"
	// Workflow parameters of the run templates beside the steps' own
	// (<step>-<parameter>): which hook kind runs, whether verify and rotate
	// run, and the DAG's targets.
	paramHookKind = "kind"
	ParamTargets  = "targets"
	paramEnabled  = "true"
)

// runTask is a task of a run template: a step of the inline DAG, with the
// conditions that stand for the inline compiler's choices of which steps
// exist and what they depend on.
type runTask struct {
	name     string
	template wfv1.Template // the stage template it calls, for its inputs
	ref      *wfv1.TemplateRef
	depends  string
	when     string
	// fixed are arguments the run template sets itself; a compiled Workflow
	// does not pass them.
	fixed map[string]string
}

// runTemplate is a run template's definition, shared by the generator of the
// ClusterWorkflowTemplate and the compiler of the Workflows that use it.
type runTemplate struct {
	name, entrypoint, description string
	tasks                         []runTask
}

func workflowParam(name string) string { return fmt.Sprintf("{{workflow.parameters.%s}}", name) }

// stepParam is the Workflow parameter of a run template that feeds a step's
// input parameter.
func stepParam(step, param string) string { return step + "-" + param }

// whenEnabled holds when a switch parameter is "true".
func whenEnabled(param string) string {
	return fmt.Sprintf("'%s' == '%s'", workflowParam(param), paramEnabled)
}

// finished is a depends clause that holds however a task ended, also when it
// was skipped or omitted.
func finished(task string) string {
	return anyOutcome(task) + " || " + task + ".Skipped || " + task + ".Omitted"
}

// afterPreHook is the condition of the step that follows the pre-hook: the
// pre-hook succeeded, did not run, or its failure is to be tolerated.
func afterPreHook() string {
	status := fmt.Sprintf("'{{tasks.%s.status}}'", StepPreHook)
	return fmt.Sprintf("%s == 'Succeeded' || %s == 'Skipped' || '%s' == 'Continue'",
		status, status, workflowParam(stepParam(StepPreHook, ParamHookOnError)))
}

func hookRunTask(opts Options, name, depends string) runTask {
	return runTask{
		name: name, template: hookRunTemplate(opts), depends: depends,
		when:  fmt.Sprintf("'%s' != ''", workflowParam(name)),
		fixed: withNamespace(map[string]string{paramHookKind: workflowParam(name)}),
	}
}

// withNamespace adds the namespace argument to a task's fixed ones: a
// compiled Workflow runs in the namespace of its resource.
func withNamespace(fixed map[string]string) map[string]string {
	if fixed == nil {
		fixed = map[string]string{}
	}
	fixed[ParamNamespace] = "{{workflow.namespace}}"
	return fixed
}

func backupRunTemplate(opts Options) runTemplate {
	ref := func(name, entry string) *wfv1.TemplateRef {
		return &wfv1.TemplateRef{Name: name, Template: entry, ClusterScope: true}
	}
	key := fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", StepDump, OutputKey)
	return runTemplate{
		name: TemplateBackupRun, entrypoint: "backup",
		description: "backflow backup, the whole run (pre-hook -> dump -> verify -> post-hook -> rotate) as one template, for controllers with templateReferencing Strict; the backflow controller passes every choice as an argument.",
		tasks: []runTask{
			hookRunTask(opts, StepPreHook, ""),
			{
				name: StepDump, template: dumpTemplate(opts), ref: ref(TemplateDump, EntryDump),
				depends: finished(StepPreHook), when: afterPreHook(),
				// The Backup is named after its Workflow (WorkflowName), also
				// for the Workflows a CronWorkflow starts.
				fixed: withNamespace(map[string]string{ParamName: "{{workflow.name}}"}),
			},
			{
				name: StepVerify, template: verifyTemplate(opts), ref: ref(TemplateVerify, EntryVerify),
				depends: StepDump + ".Succeeded", when: whenEnabled(StepVerify),
				fixed: withNamespace(map[string]string{ParamKey: key}),
			},
			hookRunTask(opts, StepPostHook, finished(StepVerify)),
			{
				name: StepRotate, template: rotateTemplate(opts), ref: ref(TemplateRotate, EntryRotate),
				depends: StepVerify + ".Succeeded && (" + finished(StepPostHook) + ")", when: whenEnabled(StepRotate),
				fixed: map[string]string{ParamKey: key},
			},
		},
	}
}

func restoreRunTemplate(opts Options) runTemplate {
	return runTemplate{
		name: TemplateRestoreRun, entrypoint: "restore",
		description: "backflow restore, the whole run (pre-hook -> verify -> restore -> post-hook) as one template, for controllers with templateReferencing Strict; the backflow controller passes every choice as an argument.",
		tasks: []runTask{
			hookRunTask(opts, StepPreHook, ""),
			{
				name: StepVerify, template: verifyTemplate(opts), ref: &wfv1.TemplateRef{Name: TemplateVerify, Template: EntryVerify, ClusterScope: true},
				depends: finished(StepPreHook), when: whenEnabled(StepVerify) + " && (" + afterPreHook() + ")",
				fixed: withNamespace(nil),
			},
			{
				name: StepRestore, template: restoreTemplate(opts), ref: &wfv1.TemplateRef{Name: TemplateRestore, Template: EntryRestore, ClusterScope: true},
				depends: StepVerify + ".Succeeded || " + StepVerify + ".Skipped", when: afterPreHook(),
				fixed: withNamespace(nil),
			},
			hookRunTask(opts, StepPostHook, finished(StepRestore)),
		},
	}
}

// hookRunTemplate runs a hook of the kind its kind parameter names, exec or
// container; its inputs are those of both hook templates.
func hookRunTemplate(opts Options) wfv1.Template {
	exec, container := execHookTemplate(opts), containerHookTemplate()
	inputs := []wfv1.Parameter{param(paramHookKind)}
	for _, p := range slices.Concat(exec.Inputs.Parameters, container.Inputs.Parameters) {
		if !slices.ContainsFunc(inputs, func(q wfv1.Parameter) bool { return q.Name == p.Name }) {
			inputs = append(inputs, p)
		}
	}
	step := func(t wfv1.Template, kind string) wfv1.WorkflowStep {
		s := wfv1.WorkflowStep{
			Name:        kind,
			TemplateRef: &wfv1.TemplateRef{Name: TemplateHook, Template: t.Name, ClusterScope: true},
			When:        fmt.Sprintf("'%s' == '%s'", in(paramHookKind), kind),
		}
		for _, p := range t.Inputs.Parameters {
			s.Arguments.Parameters = append(s.Arguments.Parameters, value(p.Name, in(p.Name)))
		}
		return s
	}
	return wfv1.Template{
		Name:   entryHook,
		Inputs: wfv1.Inputs{Parameters: inputs},
		Steps:  []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{step(exec, hookKindExec), step(container, hookKindContainer)}}},
	}
}

const (
	hookKindExec      = "exec"
	hookKindContainer = "container"
)

// clusterTemplate is the ClusterWorkflowTemplate of a run template: one DAG
// whose tasks take their arguments from Workflow parameters, which default to
// the stage templates' defaults.
func (r runTemplate) clusterTemplate(opts Options) *wfv1.ClusterWorkflowTemplate {
	var params []wfv1.Parameter
	declare := func(name string, def *wfv1.AnyString) {
		p := wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr("")}
		if def != nil {
			p.Value = def
		}
		params = append(params, p)
	}
	var targets []string
	dag := &wfv1.DAGTemplate{}
	for _, t := range r.tasks {
		targets = append(targets, t.name)
		task := wfv1.DAGTask{Name: t.name, TemplateRef: t.ref, Depends: t.depends, When: t.when}
		if t.ref == nil {
			task.Template = entryHook
			declare(t.name, nil)
		} else if t.name == StepVerify || t.name == StepRotate {
			declare(t.name, wfv1.AnyStringPtr("false"))
		}
		for _, p := range t.template.Inputs.Parameters {
			v, ok := t.fixed[p.Name]
			if !ok {
				v = workflowParam(stepParam(t.name, p.Name))
				declare(stepParam(t.name, p.Name), p.Default)
			}
			task.Arguments.Parameters = append(task.Arguments.Parameters, value(p.Name, v))
		}
		dag.Tasks = append(dag.Tasks, task)
	}
	declare(ParamTargets, wfv1.AnyStringPtr(strings.Join(targets, " ")))
	dag.Target = workflowParam(ParamTargets)
	ws := workflowSpec("", nil, nil, opts)
	ws.Entrypoint = r.entrypoint
	ws.Arguments = wfv1.Arguments{Parameters: params}
	ws.Templates = []wfv1.Template{{Name: r.entrypoint, DAG: dag}, hookRunTemplate(opts)}
	return &wfv1.ClusterWorkflowTemplate{
		TypeMeta: metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "ClusterWorkflowTemplate"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        r.name,
			Labels:      map[string]string{"app.kubernetes.io/part-of": "backflow"},
			Annotations: map[string]string{"workflows.argoproj.io/description": r.description},
		},
		Spec: *ws,
	}
}

// referencing turns an inline Workflow spec into the Strict one: the run
// template by reference, and as arguments what the inline DAG passes its
// tasks, which steps it has and its targets. What the inline spec sets for
// every pod (service account, placement, security context) moves into each
// step's pod spec patch, since Argo refuses it beside a reference.
func (r runTemplate) referencing(inline *wfv1.WorkflowSpec, opts Options) (*wfv1.WorkflowSpec, error) {
	if inline.PodMetadata != nil {
		return nil, fmt.Errorf("spec.pod.labels and spec.pod.annotations cannot be applied: the controller runs with template referencing %s, and Argo refuses pod metadata on a Workflow that references its template", TemplateReferencingStrict)
	}
	declared := map[string]bool{}
	for _, p := range r.clusterTemplate(opts).Spec.Arguments.Parameters {
		declared[p.Name] = true
	}
	var args []wfv1.Parameter
	set := func(name, v string) error {
		if !declared[name] {
			return fmt.Errorf("run template %s has no parameter %s", r.name, name)
		}
		for i := range args {
			if args[i].Name == name {
				args[i].Value = wfv1.AnyStringPtr(v)
				return nil
			}
		}
		args = append(args, value(name, v))
		return nil
	}
	dag := inline.Templates[0].DAG
	for _, task := range dag.Tasks {
		rt := slices.IndexFunc(r.tasks, func(t runTask) bool { return t.name == task.Name })
		if rt < 0 {
			return nil, fmt.Errorf("run template %s has no step %s", r.name, task.Name)
		}
		fixed := r.tasks[rt].fixed
		switch task.TemplateRef.Template {
		case EntryExecHook:
			if err := set(task.Name, hookKindExec); err != nil {
				return nil, err
			}
		case EntryContainerHook:
			if err := set(task.Name, hookKindContainer); err != nil {
				return nil, err
			}
		case EntryVerify, EntryRotate:
			if err := set(task.Name, paramEnabled); err != nil {
				return nil, err
			}
		}
		patch := ""
		for _, p := range task.Arguments.Parameters {
			if _, ok := fixed[p.Name]; ok {
				continue
			}
			if p.Name == ParamPodSpecPatch {
				patch = p.Value.String()
				continue
			}
			if err := set(stepParam(task.Name, p.Name), p.Value.String()); err != nil {
				return nil, err
			}
		}
		patch, err := withPodFields(patch, inline)
		if err != nil {
			return nil, err
		}
		if err := set(stepParam(task.Name, ParamPodSpecPatch), patch); err != nil {
			return nil, err
		}
		if task.TemplateRef.Template == EntryExecHook || task.TemplateRef.Template == EntryContainerHook {
			onError := "Fail"
			if !slices.Contains(strings.Fields(dag.Target), task.Name) {
				onError = "Continue"
			}
			if err := set(stepParam(task.Name, ParamHookOnError), onError); err != nil {
				return nil, err
			}
		}
	}
	if err := set(ParamTargets, dag.Target); err != nil {
		return nil, err
	}
	return &wfv1.WorkflowSpec{
		WorkflowTemplateRef:   &wfv1.WorkflowTemplateRef{Name: r.name, ClusterScope: true},
		Arguments:             wfv1.Arguments{Parameters: args},
		ActiveDeadlineSeconds: inline.ActiveDeadlineSeconds,
		PodGC:                 inline.PodGC,
		TTLStrategy:           inline.TTLStrategy,
	}, nil
}

// withPodFields adds the pod-wide fields of an inline Workflow spec to a
// step's pod spec patch.
func withPodFields(patch string, ws *wfv1.WorkflowSpec) (string, error) {
	fields := map[string]any{}
	if patch != "" {
		if err := json.Unmarshal([]byte(patch), &fields); err != nil {
			return "", fmt.Errorf("reading a pod spec patch: %w", err)
		}
	}
	fields["serviceAccountName"] = ws.ServiceAccountName
	if len(ws.NodeSelector) > 0 {
		fields["nodeSelector"] = ws.NodeSelector
	}
	if len(ws.Tolerations) > 0 {
		fields["tolerations"] = ws.Tolerations
	}
	if ws.SecurityContext != nil {
		fields["securityContext"] = ws.SecurityContext
	}
	if ws.PodPriorityClassName != "" {
		fields["priorityClassName"] = ws.PodPriorityClassName
	}
	data, err := json.Marshal(fields)
	return string(data), err
}
