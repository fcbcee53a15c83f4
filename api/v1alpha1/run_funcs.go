package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// IsFinished says whether a run phase is final.
func (p RunPhase) IsFinished() bool { return p == PhaseSucceeded || p == PhaseFailed }

// messageWaitingForArgo is the message of a run whose Workflow exists but has
// not started.
const messageWaitingForArgo = "waiting for Argo to start the Workflow"

// The state changes of a run. Each sets the phase, the message, the
// Succeeded condition and the observed generation together, so that they
// never disagree, and says whether the phase or the condition changed (for
// the callers that record an Event on a change). Times are set when the
// Workflow did not report them: a finished run always has completedAt.

// SetAsPending marks a run that cannot start yet; reason and message say
// what it waits for.
func (s *RunStatus) SetAsPending(generation int64, reason ConditionReason, message string) bool {
	return s.set(generation, PhasePending, message, metav1.ConditionUnknown, reason, message)
}

// SetAsWorkflowCreated marks a run whose Workflow backflow just created, with
// the Workflow's name and UID.
func (s *RunStatus) SetAsWorkflowCreated(generation int64, workflow string, uid types.UID) bool {
	s.WorkflowName, s.WorkflowUID = workflow, uid
	return s.set(generation, PhasePending, messageWaitingForArgo, metav1.ConditionUnknown, ReasonWorkflowCreated, "Workflow "+workflow+" created")
}

// SetAsWaitingForArgo marks a run whose Workflow exists but has not started.
func (s *RunStatus) SetAsWaitingForArgo(generation int64) bool {
	return s.set(generation, PhasePending, messageWaitingForArgo, metav1.ConditionUnknown, ReasonPending, messageWaitingForArgo)
}

// SetAsRunning marks a run whose Workflow runs; message says what it does.
func (s *RunStatus) SetAsRunning(generation int64, message string) bool {
	if s.StartedAt == nil {
		s.StartedAt = now()
	}
	// A Workflow that Argo retried runs again: it has not completed.
	s.CompletedAt = nil
	return s.set(generation, PhaseRunning, message, metav1.ConditionUnknown, ReasonRunning, message)
}

// SetAsSucceeded marks a run that succeeded; summary says what it produced.
// The message is cleared: nothing is wrong.
func (s *RunStatus) SetAsSucceeded(generation int64, summary string) bool {
	if s.CompletedAt == nil {
		s.CompletedAt = now()
	}
	return s.set(generation, PhaseSucceeded, "", metav1.ConditionTrue, ReasonSucceeded, summary)
}

// SetAsFailed marks a run that failed, in a step or for a reason of
// backflow's own; message says why.
func (s *RunStatus) SetAsFailed(generation int64, reason ConditionReason, message string) bool {
	if s.CompletedAt == nil {
		s.CompletedAt = now()
	}
	return s.set(generation, PhaseFailed, message, metav1.ConditionFalse, reason, message)
}

func (s *RunStatus) set(generation int64, phase RunPhase, message string, status metav1.ConditionStatus, reason ConditionReason, conditionMessage string) bool {
	changed := s.Phase != phase
	s.ObservedGeneration, s.Phase, s.Message = generation, phase, message
	return meta.SetStatusCondition(&s.Conditions, metav1.Condition{
		Type: ConditionSucceeded, Status: status, Reason: string(reason), Message: conditionMessage, ObservedGeneration: generation,
	}) || changed
}

// now is the time a state change records: to the second, as the API keeps
// it, so that a status read back equals the one written.
func now() *metav1.Time {
	t := metav1.Now().Rfc3339Copy()
	return &t
}

// GetRunStatus is the run part of the Backup's status.
func (b *Backup) GetRunStatus() *RunStatus { return &b.Status.RunStatus }

// GetRunStatus is the run part of the Restore's status.
func (r *Restore) GetRunStatus() *RunStatus { return &r.Status.RunStatus }
