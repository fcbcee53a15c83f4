package compiler

import (
	"encoding/json"
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
	// Workflow parameters of the run templates beside the steps' own
	// (<step>-<parameter>): the DAG's targets; a switch's value that turns
	// verify and rotate on (a hook's switch holds its kind).
	ParamTargets = "targets"
	paramEnabled = "true"
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

// withStorage adds a step's credentials arguments to its fixed ones: every
// run reads them from its own run Secret, under the step's keys, so that a
// Workflow author cannot point a step at another Secret or at another
// step's credentials.
func withStorage(step string, fixed map[string]string) map[string]string {
	for name, v := range stepCredentials(step) {
		fixed[name] = v
	}
	return fixed
}

// hookRunTemplate is the run template's own template for one hook step:
// it runs the exec or the container hook (local copies, see localStep), as
// the hook's Workflow parameter says.
func hookRunTemplate(hook string) wfv1.Template {
	step := func(kind string) wfv1.WorkflowStep {
		return wfv1.WorkflowStep{Name: kind, Template: localStepName(hook, kind), When: fmt.Sprintf("'%s' == '%s'", workflowParam(hook), kind)}
	}
	return wfv1.Template{Name: hook, Steps: []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{step(hookKindExec), step(hookKindContainer)}}}}
}

// localStepName names the run template's copy of the stage template a step
// (and for a hook, its kind) runs.
func localStepName(step string, kind ...string) string {
	return strings.Join(append([]string{"step", step}, kind...), "-")
}

// localStep is the run template's own copy of a stage template for one
// step. A Workflow that references a ClusterWorkflowTemplate may name any of
// its templates as its entrypoint (Argo allows spec.entrypoint beside a
// workflowTemplateRef), and its arguments then fill that template's inputs:
// so every input is replaced by the run template's value for it (runValues)
// but those an earlier step's outputs feed (the DAG passes them), and the
// copy takes nothing else from a Workflow but its parameters. For the same
// reason a Strict cluster must not have the stage templates installed (the
// chart leaves them out): a Workflow could reference backflow-dump itself
// and fill its image and pod-spec-patch.
func localStep(name string, t wfv1.Template, values map[string]string) (wfv1.Template, []wfv1.Parameter) {
	var kept, args []wfv1.Parameter
	for _, p := range t.Inputs.Parameters {
		if strings.Contains(values[p.Name], "{{tasks.") {
			kept = append(kept, p)
			args = append(args, value(p.Name, values[p.Name]))
		}
	}
	t.Name, t.Inputs.Parameters = name, kept
	data, err := json.Marshal(t)
	if err != nil {
		panic(err) // only plain API types: cannot fail
	}
	text := string(data)
	for name, v := range values {
		if slices.ContainsFunc(kept, func(p wfv1.Parameter) bool { return p.Name == name }) {
			continue
		}
		quoted, _ := json.Marshal(v)
		text = strings.ReplaceAll(text, in(name), string(quoted[1:len(quoted)-1]))
	}
	var local wfv1.Template
	if err := json.Unmarshal([]byte(text), &local); err != nil {
		panic(err) // JSON-quoted values in JSON strings: cannot fail
	}
	return local, args
}

// runValues are the values a run template gives a stage template's inputs
// for one step: the fixed ones, the backflow image, the pod spec patch it
// builds itself (with the checked image), and for every other input the
// step's Workflow parameter, which declare declares.
func runValues(step string, t wfv1.Template, fixed map[string]string, opts Options, declare func(string, *wfv1.AnyString, []string)) map[string]string {
	values := map[string]string{}
	for _, p := range t.Inputs.Parameters {
		v, ok := fixed[p.Name]
		switch {
		case ok:
		case p.Name == ParamBackflowImage:
			v = opts.Image
		case p.Name == ParamImage:
			// The pod spec patch sets the image it checked; the container's
			// own stands for it until then.
			v = opts.Image
			declare(stepParam(step, ParamImage), wfv1.AnyStringPtr(opts.Image), opts.RunImages())
		case p.Name == ParamPodSpecPatch:
			fields := stagePodFields[t.Name]
			v = podSpecPatchExpr(step, fields, opts)
			for _, name := range fields.params() {
				declare(stepParam(step, name), nil, nil)
			}
		default:
			v = workflowParam(stepParam(step, p.Name))
			declare(stepParam(step, p.Name), p.Default, nil)
		}
		values[p.Name] = v
	}
	return values
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
			templates = append(templates, hookRunTemplate(s.name))
			for _, kind := range []struct {
				name     string
				template wfv1.Template
			}{{hookKindExec, execHookTemplate(opts)}, {hookKindContainer, containerHookTemplate()}} {
				local, _ := localStep(localStepName(s.name, kind.name), kind.template, runValues(s.name, kind.template, s.fixed, opts, declare))
				templates = append(templates, local)
			}
		default:
			if s.skippable() {
				declare(s.name, wfv1.AnyStringPtr("false"), []string{"false", paramEnabled})
			}
			t := s.stage.template(opts)
			local, args := localStep(localStepName(s.name), t, runValues(s.name, t, s.fixed, opts, declare))
			task.Template, task.Arguments.Parameters = local.Name, args
			templates = append(templates, local)
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
	onExit, hooks, notifyTemplates, notifyParams := t.notifyRunHooks(opts)
	ws := workflowSpec("", nil, nil, opts)
	ws.Entrypoint = t.entrypoint
	ws.Arguments = wfv1.Arguments{Parameters: append(params, notifyParams...)}
	ws.Templates = append(append(templates, endTemplate()), notifyTemplates...)
	ws.OnExit, ws.Hooks = onExit, hooks
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
