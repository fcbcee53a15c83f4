package compiler

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
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

func workflowParam(name string) string { return fmt.Sprintf("{{workflow.parameters.%s}}", name) }

// stepParam is the Workflow parameter of a run template that feeds a step's
// input parameter.
func stepParam(step, param string) string { return step + "-" + param }

// withNamespace adds the namespace argument to a step's fixed ones: a
// compiled Workflow runs in the namespace of its resource.
func withNamespace(fixed map[string]string) map[string]string {
	if fixed == nil {
		fixed = map[string]string{}
	}
	fixed[ParamNamespace] = "{{workflow.namespace}}"
	return fixed
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

// clusterTemplate is the ClusterWorkflowTemplate of a run table: one DAG
// with every step, whose tasks take their arguments from Workflow
// parameters, which default to the stage templates' defaults.
func (t runTable) clusterTemplate(opts Options) *wfv1.ClusterWorkflowTemplate {
	var params []wfv1.Parameter
	declare := func(name string, def *wfv1.AnyString) {
		p := wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr("")}
		if def != nil {
			p.Value = def
		}
		params = append(params, p)
	}
	dag := &wfv1.DAGTemplate{}
	for _, s := range t.steps {
		task := wfv1.DAGTask{Name: s.name, Depends: t.strictDepends(s), When: t.strictWhen(s)}
		var inputs []wfv1.Parameter
		switch {
		case s.isHook():
			task.Template = entryHook
			inputs = hookRunTemplate(opts).Inputs.Parameters
			declare(s.name, nil)
		case s.skippable():
			declare(s.name, wfv1.AnyStringPtr("false"))
			fallthrough
		default:
			ref := s.stage.ref
			task.TemplateRef = &ref
			inputs = s.stage.template(opts).Inputs.Parameters
		}
		for _, p := range inputs {
			v, ok := s.fixed[p.Name]
			if !ok {
				v = workflowParam(stepParam(s.name, p.Name))
				declare(stepParam(s.name, p.Name), p.Default)
			}
			task.Arguments.Parameters = append(task.Arguments.Parameters, value(p.Name, v))
		}
		dag.Tasks = append(dag.Tasks, task)
	}
	// The end a compiled Workflow's DAG may have (plan.inline); it runs
	// only when the targets name it.
	dag.Tasks = append(dag.Tasks, wfv1.DAGTask{Name: stepEnd, Template: stepEnd, Depends: finished(t.steps[len(t.steps)-1].name)})
	declare(ParamTargets, wfv1.AnyStringPtr(strings.Join(t.names(), " ")))
	dag.Target = workflowParam(ParamTargets)
	ws := workflowSpec("", nil, nil, opts)
	ws.Entrypoint = t.entrypoint
	ws.Arguments = wfv1.Arguments{Parameters: params}
	ws.Templates = []wfv1.Template{{Name: t.entrypoint, DAG: dag}, hookRunTemplate(opts), endTemplate()}
	return clusterWorkflowTemplate(t.runTemplate, t.description, *ws)
}

// referencing turns an inline Workflow spec into the Strict one: the run
// template by reference, and as arguments what the inline DAG passes its
// tasks, which steps it has and its targets. What the inline spec sets for
// every pod (service account, placement, security context) moves into each
// step's pod spec patch, since Argo refuses it beside a reference.
func (t runTable) referencing(inline *wfv1.WorkflowSpec, opts Options) (*wfv1.WorkflowSpec, error) {
	if inline.PodMetadata != nil {
		return nil, fmt.Errorf("spec.pod.labels and spec.pod.annotations cannot be applied: the controller runs with template referencing %s, and Argo refuses pod metadata on a Workflow that references its template", TemplateReferencingStrict)
	}
	declared := map[string]bool{}
	for _, p := range t.clusterTemplate(opts).Spec.Arguments.Parameters {
		declared[p.Name] = true
	}
	var args []wfv1.Parameter
	set := func(name, v string) error {
		if !declared[name] {
			return fmt.Errorf("run template %s has no parameter %s", t.runTemplate, name)
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
		if task.Name == stepEnd {
			continue
		}
		s, ok := t.row(task.Name)
		if !ok {
			return nil, fmt.Errorf("run template %s has no step %s", t.runTemplate, task.Name)
		}
		fixed := s.fixed
		switch {
		case task.TemplateRef.Template == EntryExecHook:
			if err := set(task.Name, hookKindExec); err != nil {
				return nil, err
			}
		case task.TemplateRef.Template == EntryContainerHook:
			if err := set(task.Name, hookKindContainer); err != nil {
				return nil, err
			}
		case s.skippable():
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
		if s.isHook() {
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
		WorkflowTemplateRef:   &wfv1.WorkflowTemplateRef{Name: t.runTemplate, ClusterScope: true},
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
	// Re-marshalled as argoJSON: the patch carries the spec's strings.
	return argoJSON(fields)
}
