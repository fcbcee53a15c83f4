package compiler

import (
	"fmt"
	"maps"
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

// hookRunTemplate is the run template's own template for one hook step:
// it runs the exec or the container hook template, as the hook's Workflow
// parameter says. It takes no inputs: a Workflow may name any template of
// the run template as its entrypoint (Argo allows spec.entrypoint beside a
// workflowTemplateRef) and would fill such inputs from its own arguments.
func hookRunTemplate(hook string, opts Options, declare func(string, *wfv1.AnyString, []string)) wfv1.Template {
	step := func(t wfv1.Template, kind string) wfv1.WorkflowStep {
		return wfv1.WorkflowStep{
			Name:        kind,
			TemplateRef: &wfv1.TemplateRef{Name: TemplateHook, Template: t.Name, ClusterScope: true},
			When:        fmt.Sprintf("'%s' == '%s'", workflowParam(hook), kind),
			Arguments:   wfv1.Arguments{Parameters: runArguments(hook, t, withNamespace(nil), opts, declare)},
		}
	}
	return wfv1.Template{
		Name:  hook,
		Steps: []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{step(execHookTemplate(opts), hookKindExec), step(containerHookTemplate(), hookKindContainer)}}},
	}
}

// runArguments are the arguments a run template passes a stage template
// for one step: the fixed ones, the backflow image, the checked image, the
// pod spec patch it builds itself, and for every other input the step's
// Workflow parameter, which declare declares.
func runArguments(step string, t wfv1.Template, fixed map[string]string, opts Options, declare func(string, *wfv1.AnyString, []string)) []wfv1.Parameter {
	var args []wfv1.Parameter
	for _, p := range t.Inputs.Parameters {
		v, ok := fixed[p.Name]
		switch {
		case ok:
		case p.Name == ParamBackflowImage:
			v = opts.Image
		case p.Name == ParamImage:
			v = imageExpr(step, opts)
			declare(stepParam(step, ParamImage), wfv1.AnyStringPtr(opts.Image), opts.RunImages())
		case p.Name == ParamPodSpecPatch:
			fields := stagePodFields[t.Name]
			v = podSpecPatchExpr(step, fields)
			for _, name := range fields.params() {
				declare(stepParam(step, name), nil, nil)
			}
		default:
			v = workflowParam(stepParam(step, p.Name))
			declare(stepParam(step, p.Name), p.Default, nil)
		}
		args = append(args, value(p.Name, v))
	}
	return args
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
	declare := func(name string, def *wfv1.AnyString, enum []string) {
		if slices.ContainsFunc(params, func(p wfv1.Parameter) bool { return p.Name == name }) {
			return
		}
		p := wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr("")}
		if def != nil {
			p.Value = def
		}
		for _, e := range enum {
			p.Enum = append(p.Enum, wfv1.AnyString(e))
		}
		params = append(params, p)
	}
	dag := &wfv1.DAGTemplate{}
	templates := []wfv1.Template{{Name: t.entrypoint, DAG: dag}}
	for _, s := range t.steps {
		task := wfv1.DAGTask{Name: s.name, Depends: t.strictDepends(s), When: t.strictWhen(s)}
		switch {
		case s.isHook():
			declare(s.name, nil, []string{"", hookKindExec, hookKindContainer})
			task.Template = s.name
			templates = append(templates, hookRunTemplate(s.name, opts, declare))
		default:
			if s.skippable() {
				declare(s.name, wfv1.AnyStringPtr("false"), []string{"false", paramEnabled})
			}
			ref := s.stage.ref
			task.TemplateRef = &ref
			task.Arguments.Parameters = runArguments(s.name, s.stage.template(opts), s.fixed, opts, declare)
		}
		dag.Tasks = append(dag.Tasks, task)
	}
	for _, name := range podWideParams {
		declare(name, nil, nil)
	}
	// The end a compiled Workflow's DAG may have (plan.inline); it runs
	// only when the targets name it.
	dag.Tasks = append(dag.Tasks, wfv1.DAGTask{Name: stepEnd, Template: stepEnd, Depends: finished(t.steps[len(t.steps)-1].name)})
	declare(ParamTargets, wfv1.AnyStringPtr(strings.Join(t.names(), " ")), nil)
	dag.Target = workflowParam(ParamTargets)
	ws := workflowSpec("", nil, nil, opts)
	ws.Entrypoint = t.entrypoint
	ws.Arguments = wfv1.Arguments{Parameters: params}
	ws.Templates = append(templates, endTemplate())
	return clusterWorkflowTemplate(t.runTemplate, t.description, *ws)
}

// referencing turns an inline Workflow spec into the Strict one: the run
// template by reference, and as arguments what the inline DAG passes its
// tasks, which steps it has and its targets. Each step's pod patch
// (patches, by step) goes field by field into the run template's
// parameters, and what the inline spec sets for every pod (service
// account, placement, security context) into the run's, since Argo refuses
// it beside a reference.
func (t runTable) referencing(inline *wfv1.WorkflowSpec, patches map[string]*podPatch, opts Options) (*wfv1.WorkflowSpec, error) {
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
		for _, p := range task.Arguments.Parameters {
			if _, ok := s.fixed[p.Name]; ok || p.Name == ParamBackflowImage || p.Name == ParamPodSpecPatch {
				continue
			}
			if err := set(stepParam(task.Name, p.Name), p.Value.String()); err != nil {
				return nil, err
			}
		}
		if patch := patches[task.Name]; patch != nil {
			fields, err := patch.strictArguments()
			if err != nil {
				return nil, err
			}
			for _, name := range slices.Sorted(maps.Keys(fields)) {
				if err := set(stepParam(task.Name, name), fields[name]); err != nil {
					return nil, err
				}
			}
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
	podWide, err := podWideArguments(inline)
	if err != nil {
		return nil, err
	}
	for _, name := range podWideParams {
		if v := podWide[name]; v != "" {
			if err := set(name, v); err != nil {
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
