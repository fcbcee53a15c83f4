// Package runstatus reads what Argo reports about a Workflow (its phase, the
// state of each step and the steps' outputs) into the shape the status of a
// Backup or Restore takes.
package runstatus

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/packer"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
)

// Run is what a Workflow says about a backup or restore.
type Run struct {
	Phase       v1.RunPhase
	StartedAt   *metav1.Time
	CompletedAt *metav1.Time
	// dataProgress is what Argo says of the progress of the steps that
	// move data, in DAG order (see ProgressAt).
	dataProgress []stepProgress
	// Stages are the steps in DAG order, those that exist in the Workflow.
	Stages []v1.StageStatus
	// Outputs are the output parameters of each step, by step name.
	Outputs map[string]map[string]string
	// FailedStep and Message say what went wrong, when it did.
	FailedStep string
	Message    string
	// Notifications are what the notify steps reported (notifications.go).
	Notifications []v1.NotificationStatus
}

// Stage returns the stage of a step, if the Workflow has it.
func (r *Run) Stage(name string) (v1.StageStatus, bool) {
	for _, s := range r.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return v1.StageStatus{}, false
}

// CurrentStep is the step that runs or waits to, for a status message.
func (r *Run) CurrentStep() string {
	for _, s := range r.Stages {
		if s.Phase == string(wfv1.NodeRunning) || s.Phase == string(wfv1.NodePending) {
			return s.Name
		}
	}
	return "the Workflow"
}

// StartedSince says whether the run started since it was in phase old: it
// was pending (or had no phase) and is not any more.
func (r *Run) StartedSince(old v1.RunPhase) bool {
	return (old == "" || old == v1.PhasePending) && r.Phase != v1.PhasePending
}

// FailureEvent is the reason of the Event that reports a failed run: a
// failed step, or the Workflow failing by itself (a deadline, for example).
func (r *Run) FailureEvent() v1.EventReason {
	if r.FailedStep != "" {
		return v1.EventStepFailed
	}
	return v1.EventFailed
}

// Mirror copies what a Workflow reports into the status of its run: the
// Workflow, the times, the stages and the progress, then the phase, message
// and Succeeded condition. Times the Workflow does not report keep their
// value. Summary says what the run produced, for when it succeeded.
func Mirror(st *v1.RunStatus, generation int64, workflow string, run *Run, summary string) {
	st.WorkflowName = workflow
	if run.StartedAt != nil {
		st.StartedAt = run.StartedAt
	}
	if run.CompletedAt != nil {
		st.CompletedAt = run.CompletedAt
	}
	st.Stages = run.Stages
	st.Progress, st.StepProgress = run.ProgressAt(st.Progress, st.StepProgress, time.Now())
	if run.Notifications != nil {
		st.Notifications = run.Notifications
	}
	switch run.Phase {
	case v1.PhaseSucceeded:
		st.SetAsSucceeded(generation, summary)
	case v1.PhaseFailed:
		st.SetAsFailed(generation, v1.ReasonFailed, run.Message)
	case v1.PhaseRunning:
		st.SetAsRunning(generation, "running "+run.CurrentStep())
	default:
		st.SetAsWaitingForArgo(generation)
	}
}

// TaskResult is the outputs Argo's executor reported for a node, from a
// WorkflowTaskResult, for when the Workflow's nodes do not carry them (yet).
type TaskResult struct {
	NodeID  string
	Outputs *wfv1.Outputs
}

// FromWorkflow reads a Workflow. Compressed node status is inflated; outputs
// missing from the nodes are taken from the task results.
func FromWorkflow(wf *wfv1.Workflow, steps []string, results []TaskResult) (*Run, error) {
	wf = wf.DeepCopy()
	if wf.Status.CompressedNodes != "" {
		if err := packer.DecompressWorkflow(wf); err != nil {
			return nil, fmt.Errorf("reading the compressed status of Workflow %s: %w", wf.Name, err)
		}
	}
	if wf.Status.IsOffloadNodeStatus() && len(wf.Status.Nodes) == 0 {
		return nil, fmt.Errorf("workflow %s has its node status offloaded to Argo's database, which backflow cannot read; disable nodeStatusOffLoad for backflow's namespaces", wf.Name)
	}
	run := &Run{Phase: phaseOf(wf.Status.Phase), Outputs: map[string]map[string]string{}}
	if !wf.Status.StartedAt.IsZero() {
		run.StartedAt = &wf.Status.StartedAt
	}
	if !wf.Status.FinishedAt.IsZero() {
		run.CompletedAt = &wf.Status.FinishedAt
	}
	resultsByNode := map[string]*wfv1.Outputs{}
	for _, r := range results {
		resultsByNode[r.NodeID] = r.Outputs
	}
	nodes := stepNodes(wf, steps)
	for _, name := range steps {
		node, ok := nodes[name]
		// A step a run template skips (Strict mode) is one the spec does
		// not have.
		if !ok || node.Phase == wfv1.NodeSkipped {
			continue
		}
		stage := v1.StageStatus{Name: name, Phase: string(node.Phase), Message: node.Message}
		if node.FailedOrError() {
			stage.Message = failureOf(wf.Status.Nodes, node)
		}
		if !node.StartedAt.IsZero() {
			stage.StartedAt = ptr(node.StartedAt)
		}
		if !node.FinishedAt.IsZero() {
			stage.FinishedAt = ptr(node.FinishedAt)
		}
		run.Stages = append(run.Stages, stage)
		if dataSteps[name] {
			attempt := newestAttempt(wf.Status.Nodes, node)
			run.dataProgress = append(run.dataProgress, stepProgress{step: name, phase: node.Phase, progress: attempt.Progress, startedAt: attempt.StartedAt.Time})
		}
		outputs := node.Outputs
		if outputs == nil || len(outputs.Parameters) == 0 {
			outputs = resultsByNode[node.ID]
			// A retry node's children are its attempts, oldest first: the
			// newest one that reported outputs is the one that counts.
			for i := len(node.Children) - 1; i >= 0 && outputs == nil; i-- {
				outputs = resultsByNode[node.Children[i]]
			}
		}
		if outputs != nil {
			params := map[string]string{}
			for _, p := range outputs.Parameters {
				if p.Value != nil {
					params[p.Name] = p.Value.String()
				}
			}
			run.Outputs[name] = params
		}
		// The message names the first step that failed the run; a step whose
		// failure was tolerated only when none did.
		if node.FailedOrError() &&
			(run.FailedStep == "" || (tolerated(wf, run.FailedStep) && !tolerated(wf, name))) {
			run.FailedStep = name
			run.Message = fmt.Sprintf("step %s failed: %s", name, stage.Message)
		}
	}
	run.Notifications = notificationsOf(wf, resultsByNode)
	if run.Phase == v1.PhaseFailed && run.FailedStep == "" && dagSucceeded(wf) {
		// The run's steps all succeeded and only its exit handler, the
		// notify step, failed: Argo fails the Workflow, the run did not.
		run.Phase = v1.PhaseSucceeded
	}
	if run.Phase == v1.PhaseFailed && run.Message == "" {
		run.Message = cmp.Or(wf.Status.Message, "the Workflow failed")
	}
	return run, nil
}

// failureOf says why a failed step failed: the message Argo recorded on the
// node where the failure began, the newest failed attempt of a retried step
// or the pod of a template the step calls (a run template's hook), rather
// than what the retry node says about its attempts ("No more retries left");
// with how many attempts were made when there were several.
func failureOf(nodes wfv1.Nodes, step wfv1.NodeStatus) string {
	cause, attempts := step.Message, 0
	for node, seen := step, map[string]bool{}; !seen[node.ID]; {
		seen[node.ID] = true
		if node.Type == wfv1.NodeTypeRetry && attempts == 0 {
			attempts = len(node.Children)
		}
		var next *wfv1.NodeStatus
		for i := len(node.Children) - 1; i >= 0 && next == nil; i-- {
			if child, ok := nodes[node.Children[i]]; ok && child.FailedOrError() {
				next = &child
			}
		}
		if next == nil {
			break
		}
		node = *next
		if node.Message != "" {
			cause = node.Message
		}
	}
	cause = cmp.Or(cause, string(step.Phase))
	if attempts > 1 {
		return fmt.Sprintf("%s (%d attempts)", cause, attempts)
	}
	return cause
}

// tolerated says whether a step's failure does not fail its Workflow: the
// compiler leaves such a step out of the DAG's targets, which an inline
// Workflow holds in its DAG and one that references its run template passes
// as an argument. Without targets every step counts.
func tolerated(wf *wfv1.Workflow, step string) bool {
	targets := ""
	for _, t := range wf.Spec.Templates {
		if t.Name == wf.Spec.Entrypoint && t.DAG != nil {
			targets = t.DAG.Target
		}
	}
	if wf.Spec.WorkflowTemplateRef != nil {
		if p := wf.Spec.Arguments.GetParameterByName(compiler.ParamTargets); p != nil && p.Value != nil {
			targets = p.Value.String()
		}
	}
	return targets != "" && !slices.Contains(strings.Fields(targets), step)
}

// stepNodes finds the node of each step: the retry node when the step has
// retries, else its pod (or skipped/omitted) node.
func stepNodes(wf *wfv1.Workflow, steps []string) map[string]wfv1.NodeStatus {
	wanted := map[string]bool{}
	for _, s := range steps {
		wanted[s] = true
	}
	out := map[string]wfv1.NodeStatus{}
	ids := make([]string, 0, len(wf.Status.Nodes))
	for id := range wf.Status.Nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		n := wf.Status.Nodes[id]
		if !wanted[n.DisplayName] || n.Type == wfv1.NodeTypeDAG || n.Type == wfv1.NodeTypeTaskGroup {
			continue
		}
		prev, seen := out[n.DisplayName]
		// A retry node stands for all its attempts.
		if !seen || (n.Type == wfv1.NodeTypeRetry && prev.Type != wfv1.NodeTypeRetry) {
			out[n.DisplayName] = n
		}
	}
	return out
}

func phaseOf(p wfv1.WorkflowPhase) v1.RunPhase {
	switch p {
	case wfv1.WorkflowRunning:
		return v1.PhaseRunning
	case wfv1.WorkflowSucceeded:
		return v1.PhaseSucceeded
	case wfv1.WorkflowFailed, wfv1.WorkflowError:
		return v1.PhaseFailed
	default:
		return v1.PhasePending
	}
}

// Int64 parses an integer output, or nil.
func Int64(outputs map[string]string, name string) *int64 {
	v, err := strconv.ParseInt(outputs[name], 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

// BackupSteps and RestoreSteps are the steps of the compiled Workflows, in
// DAG order.
var (
	BackupSteps  = []string{compiler.StepPreHook, compiler.StepDump, compiler.StepVerify, compiler.StepPostHook, compiler.StepRotate}
	RestoreSteps = []string{compiler.StepPreHook, compiler.StepVerify, compiler.StepRestore, compiler.StepPostHook}
)

func ptr[T any](v T) *T { return &v }

// TaskResults lists the outputs Argo's executors reported for a Workflow's
// nodes.
func TaskResults(ctx context.Context, c client.Reader, wf *wfv1.Workflow) ([]TaskResult, error) {
	var list wfv1.WorkflowTaskResultList
	if err := c.List(ctx, &list, client.InNamespace(wf.Namespace), client.MatchingLabels{"workflows.argoproj.io/workflow": wf.Name}); err != nil {
		return nil, fmt.Errorf("listing the task results of Workflow %s: %w", wf.Name, err)
	}
	out := make([]TaskResult, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, TaskResult{NodeID: list.Items[i].Name, Outputs: list.Items[i].Outputs})
	}
	return out, nil
}

// CreateWorkflow creates the Workflow of a run, controlled by the resource it
// runs. It returns false when the Workflow exists already: created by an
// earlier reconcile that the cache has not caught up with.
func CreateWorkflow(ctx context.Context, c client.Client, owner client.Object, wf *wfv1.Workflow) (bool, error) {
	if err := controllerutil.SetControllerReference(owner, wf, c.Scheme()); err != nil {
		return false, err
	}
	if err := c.Create(ctx, wf); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return false, fmt.Errorf("creating Workflow %s: %w", wf.Name, err)
	}
	return true, nil
}
