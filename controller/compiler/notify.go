package compiler

import (
	"fmt"
	"slices"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/notify"
)

// A run's notifications are sent by the notify stage from Argo's
// workflow-level lifecycle hooks, outside the run's DAG: hooks.exit, once
// the DAG is over (Succeeded or Failed, from {{workflow.status}}), and
// hooks.running, once the Workflow runs (Started). What a target is and
// which events it hears about travel as a parameter; its URLs and signing
// key never do: the controller copies them into the run's notify Secret
// (RunNotifySecret), which the step mounts. The step always exits 0, since
// Argo fails a Workflow whose exit handler fails, and reports what it
// delivered as its output, which the controller turns into the status'
// notifications, Events and a metric.

// Names of the notify stage template and its parameters.
const (
	TemplateNotify = "backflow-notify"
	EntryNotify    = "notify"
	// StepNotify names the run template's copy of the notify template
	// (step-notify) and its switches.
	StepNotify = "notify"

	ParamNotifySecret    = "notify-secret"
	ParamNotifyTargets   = "notify-targets"
	ParamNotifyEvent     = "event"
	ParamNotifyKind      = "kind"
	ParamNotifyWorkflow  = "workflow"
	ParamNotifyUID       = "workflow-uid"
	ParamNotifyPhase     = "phase"
	ParamNotifyFailures  = "failures"
	ParamNotifyDuration  = "duration"
	ParamNotifyStartedAt = "started-at"
	ParamNotifySize      = "size"
	ParamNotifyChecksum  = "checksum"
	ParamNotifySteps     = "steps"

	// OutputNotifications is the notify step's report: a JSON list of
	// notify.Delivery.
	OutputNotifications = "notifications"

	// Run template parameters: whether the exit handler notifies, and
	// whether the running hook does (notify-started).
	ParamNotifyStarted = "notify-started"

	notifyDir      = "/backflow/notify"
	notifyVolume   = "notify-secret"
	notifyDeadline = 300
)

// workflowNameTag is the Workflow's name, as Argo renders it; paramDisabled
// is a switch's value that turns it off.
const (
	workflowNameTag = "{{workflow.name}}"
	paramDisabled   = "false"
)

// RunNotifySecret is the Secret the notify step reads the targets' URLs and
// signing keys from, under notify.SecretKey: one per Workflow, which the
// controller writes once the Workflow exists, owned by the Workflow.
const RunNotifySecret = "backflow-notify-{{workflow.uid}}"

// Global outputs of the dump and restore steps, which the exit handler
// reads: an exit handler sees no task's outputs, only the Workflow's.
const (
	GlobalKey      = "backflow-key"
	GlobalSize     = "backflow-size"
	GlobalChecksum = "backflow-checksum"
)

// withGlobalOutputs makes the key, size and checksum outputs of a step's
// template Workflow outputs too.
func withGlobalOutputs(t wfv1.Template) wfv1.Template {
	global := map[string]string{OutputKey: GlobalKey, OutputSize: GlobalSize, OutputChecksum: GlobalChecksum}
	for i, p := range t.Outputs.Parameters {
		if g, ok := global[p.Name]; ok {
			t.Outputs.Parameters[i].GlobalName = g
		}
	}
	return t
}

// globalOutput is a Workflow output of the run as the exit handler passes
// it: empty when the step that sets it did not run or failed. A plain tag
// of a missing output would fail the exit handler's arguments, hence
// Argo's expression with optional chaining. Argo also evaluates every
// expression of the spec at the start of each pass, before the outputs and
// the status are in its environment; one that names workflow.status is
// left for later until the status is known (Argo's late-binding
// variables), otherwise it would be resolved to the empty string then, for good.
func globalOutput(name string) string {
	return fmt.Sprintf("{{=workflow.status != '' ? (workflow?.outputs?.parameters?.['%s'] ?? '') : ''}}", name)
}

// notifyTemplate runs `backflow notify` in the backflow image itself: no
// engine image, no pod spec patch, no retries (it retries each delivery
// itself, and never fails).
func notifyTemplate(opts Options) wfv1.Template {
	params := []wfv1.Parameter{
		param(ParamBackflowImage, opts.Image), param(ParamNotifySecret), param(ParamNotifyTargets, "[]"),
		param(ParamNotifyEvent), param(ParamNotifyKind), param(ParamNamespace, "{{workflow.namespace}}"), param(ParamName, workflowNameTag),
		param(ParamNotifyWorkflow, workflowNameTag), param(ParamNotifyUID, "{{workflow.uid}}"), param(ParamNotifyPhase, ""),
		param(ParamNotifyFailures, ""), param(ParamNotifyDuration, ""), param(ParamNotifyStartedAt, "{{workflow.creationTimestamp}}"),
		param(ParamKey, ""), param(ParamNotifySize, ""), param(ParamNotifyChecksum, ""), param(ParamNotifySteps, ""),
	}
	args := []string{"notify"}
	for _, f := range []struct{ flag, param string }{
		{"targets", ParamNotifyTargets}, {"event", ParamNotifyEvent}, {"kind", ParamNotifyKind}, {"namespace", ParamNamespace},
		{ParamName, ParamName}, {"workflow", ParamNotifyWorkflow}, {"workflow-uid", ParamNotifyUID}, {"phase", ParamNotifyPhase},
		{"failures", ParamNotifyFailures}, {"duration", ParamNotifyDuration}, {"started-at", ParamNotifyStartedAt},
		{"key", ParamKey}, {"size", ParamNotifySize}, {"checksum", ParamNotifyChecksum}, {"steps", ParamNotifySteps},
	} {
		args = append(args, cliFlag(f.flag, f.param))
	}
	args = append(args, "--secret-file="+notifyDir+"/"+notify.SecretKey, "--outputs-dir="+OutputsDir)
	return wfv1.Template{
		Name:   EntryNotify,
		Inputs: wfv1.Inputs{Parameters: params},
		Container: &corev1.Container{
			Image:           in(ParamBackflowImage),
			ImagePullPolicy: opts.ImagePullPolicy,
			Command:         []string{"backflow"},
			Args:            args,
			VolumeMounts:    []corev1.VolumeMount{{Name: notifyVolume, MountPath: notifyDir, ReadOnly: true}},
		},
		// Not optional: a pod that starts before the controller wrote the
		// Secret waits for it.
		Volumes: []corev1.Volume{{Name: notifyVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: in(ParamNotifySecret), Items: []corev1.KeyToPath{{Key: notify.SecretKey, Path: notify.SecretKey}},
		}}}},
		Outputs:                      wfv1.Outputs{Parameters: []wfv1.Parameter{{Name: OutputNotifications, ValueFrom: &wfv1.ValueFrom{Path: OutputsDir + "/" + OutputNotifications, Default: wfv1.AnyStringPtr("")}}}},
		ActiveDeadlineSeconds:        ptr(intstr.FromInt32(notifyDeadline)),
		AutomountServiceAccountToken: ptr(false),
		Executor:                     executor(),
	}
}

// NotifyTargets is the parameter that describes a spec's targets to the
// notify step: names, types and events, nothing secret.
func NotifyTargets(targets []v1.NotifyTarget) []notify.Target {
	out := make([]notify.Target, 0, len(targets))
	for _, t := range targets {
		typ := notify.TypeWebhook
		switch {
		case t.Slack != nil:
			typ = notify.TypeSlack
		case t.DeadMansSwitch != nil:
			typ = notify.TypeDeadMansSwitch
		}
		on := make([]string, len(t.On))
		for i, e := range t.On {
			on[i] = string(e)
		}
		out = append(out, notify.Target{Name: t.Name, Type: typ, On: on})
	}
	return out
}

// notifyChoices are which hooks a spec's targets need.
type notifyChoices struct {
	targets       string
	started, exit bool
}

func notifyChoicesOf(targets []v1.NotifyTarget) (notifyChoices, error) {
	var c notifyChoices
	if len(targets) == 0 {
		return c, nil
	}
	data, err := argoJSON(NotifyTargets(targets))
	if err != nil {
		return c, err
	}
	c.targets = data
	for _, t := range targets {
		c.started = c.started || slices.Contains(t.On, v1.NotifyStarted)
		c.exit = c.exit || slices.Contains(t.On, v1.NotifySucceeded) || slices.Contains(t.On, v1.NotifyFailed)
	}
	return c, nil
}

// kindOf is the kind of resource a run table runs.
func (t runTable) kindOf() string {
	if t.runTemplate == TemplateRestoreRun {
		return "Restore"
	}
	return "Backup"
}

// startedExpression holds once the Workflow runs; Argo runs a hook once.
const startedExpression = `workflow.status == "Running"`

// exitArguments are what the exit handler passes the notify template
// beside the fixed ones: the outcome, Argo's failures and duration, and the
// object the run wrote or restored.
func exitArguments() []wfv1.Parameter {
	return []wfv1.Parameter{
		value(ParamNotifyEvent, "{{workflow.status}}"), value(ParamNotifyPhase, "{{workflow.status}}"),
		value(ParamNotifyFailures, "{{workflow.failures}}"), value(ParamNotifyDuration, "{{workflow.duration}}"),
		value(ParamKey, globalOutput(GlobalKey)), value(ParamNotifySize, globalOutput(GlobalSize)), value(ParamNotifyChecksum, globalOutput(GlobalChecksum)),
	}
}

func startedArguments() []wfv1.Parameter {
	return []wfv1.Parameter{value(ParamNotifyEvent, notify.EventStarted), value(ParamNotifyPhase, "{{workflow.status}}")}
}

// fixedNotifyArguments are the notify template's arguments that are the
// same for every run of a table but the targets.
func (t runTable) fixedNotifyArguments(opts Options) map[string]string {
	return map[string]string{
		ParamBackflowImage: opts.Image, ParamNotifySecret: RunNotifySecret, ParamNotifyKind: t.kindOf(),
		ParamNamespace: "{{workflow.namespace}}", ParamName: workflowNameTag, ParamNotifySteps: strings.Join(t.names(), ","),
		ParamNotifyWorkflow: workflowNameTag, ParamNotifyUID: "{{workflow.uid}}", ParamNotifyStartedAt: "{{workflow.creationTimestamp}}",
	}
}

// addNotifyHooks gives an inline Workflow spec the hooks its targets need.
func (t runTable) addNotifyHooks(ws *wfv1.WorkflowSpec, targets []v1.NotifyTarget, opts Options) error {
	c, err := notifyChoicesOf(targets)
	if err != nil || c.targets == "" {
		return err
	}
	fixed := t.fixedNotifyArguments(opts)
	fixed[ParamNotifyTargets] = c.targets
	hook := func(more []wfv1.Parameter) wfv1.LifecycleHook {
		var args []wfv1.Parameter
		for _, name := range []string{ParamBackflowImage, ParamNotifySecret, ParamNotifyTargets, ParamNotifyKind, ParamNamespace, ParamName, ParamNotifySteps} {
			args = append(args, value(name, fixed[name]))
		}
		return wfv1.LifecycleHook{
			TemplateRef: &wfv1.TemplateRef{Name: TemplateNotify, Template: EntryNotify, ClusterScope: true},
			Arguments:   wfv1.Arguments{Parameters: append(args, more...)},
		}
	}
	ws.Hooks = wfv1.LifecycleHooks{}
	if c.exit {
		ws.Hooks[wfv1.ExitLifecycleEvent] = hook(exitArguments())
	}
	if c.started {
		h := hook(startedArguments())
		h.Expression = startedExpression
		ws.Hooks["running"] = h
	}
	return nil
}

// notifyRunArguments are the run template arguments of a spec's targets,
// for a Strict Workflow.
func notifyRunArguments(targets []v1.NotifyTarget) ([]wfv1.Parameter, error) {
	c, err := notifyChoicesOf(targets)
	if err != nil || c.targets == "" {
		return nil, err
	}
	args := []wfv1.Parameter{value(ParamNotifyTargets, c.targets)}
	if c.exit {
		args = append(args, value(StepNotify, paramEnabled))
	}
	if c.started {
		args = append(args, value(ParamNotifyStarted, paramEnabled))
	}
	return args, nil
}

// notifyRunHooks are the run template's exit handler and hooks, the
// templates they call and the parameters that switch them: the exit
// handler (onExit, which Argo's validation gives {{workflow.failures}}) is
// a steps template whose one step runs only when the notify switch is on (a
// workflow-level exit hook has no expression), the running hook's
// expression reads its own switch.
func (t runTable) notifyRunHooks(opts Options) (string, wfv1.LifecycleHooks, []wfv1.Template, []wfv1.Parameter) {
	values := t.fixedNotifyArguments(opts)
	values[ParamNotifyTargets] = workflowParam(ParamNotifyTargets)
	kept := map[string]bool{}
	for _, p := range append(exitArguments(), startedArguments()...) {
		kept[p.Name] = true
		values[p.Name] = in(p.Name)
	}
	source := notifyTemplate(opts)
	local, _ := localStep(localStepName(StepNotify), source, values)
	for _, p := range source.Inputs.Parameters {
		if kept[p.Name] {
			local.Inputs.Parameters = append(local.Inputs.Parameters, param(p.Name, ""))
		}
	}
	exitName := "notify-exit"
	exit := wfv1.Template{Name: exitName, Steps: []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{{
		Name: StepNotify, Template: local.Name, When: fmt.Sprintf("'%s' == '%s'", workflowParam(StepNotify), paramEnabled),
		Arguments: wfv1.Arguments{Parameters: exitArguments()},
	}}}}}
	hooks := wfv1.LifecycleHooks{
		"running": {
			Template: local.Name, Arguments: wfv1.Arguments{Parameters: startedArguments()},
			Expression: fmt.Sprintf(`%s && workflow.parameters['%s'] == '%s'`, startedExpression, ParamNotifyStarted, paramEnabled),
		},
	}
	params := []wfv1.Parameter{
		{Name: StepNotify, Value: wfv1.AnyStringPtr(paramDisabled), Enum: []wfv1.AnyString{paramDisabled, paramEnabled}},
		{Name: ParamNotifyStarted, Value: wfv1.AnyStringPtr(paramDisabled), Enum: []wfv1.AnyString{paramDisabled, paramEnabled}},
		{Name: ParamNotifyTargets, Value: wfv1.AnyStringPtr("[]")},
	}
	return exitName, hooks, []wfv1.Template{exit, local}, params
}

// withNotify completes a run's inline Workflow spec with its targets' hooks,
// or turns it into the Strict one with the arguments that switch the run
// template's.
func (t runTable) withNotify(ws *wfv1.WorkflowSpec, targets []v1.NotifyTarget, patches map[string]*podPatch, opts Options) (*wfv1.WorkflowSpec, error) {
	if opts.TemplateReferencing != TemplateReferencingStrict {
		return ws, t.addNotifyHooks(ws, targets, opts)
	}
	strict, err := t.referencing(ws, patches, opts)
	if err != nil {
		return nil, err
	}
	args, err := notifyRunArguments(targets)
	if err != nil {
		return nil, err
	}
	strict.Arguments.Parameters = append(strict.Arguments.Parameters, args...)
	return strict, nil
}
