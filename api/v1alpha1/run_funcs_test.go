package v1alpha1

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRunStateChanges(t *testing.T) {
	for _, tc := range []struct {
		name               string
		change             func(*RunStatus) bool
		phase              RunPhase
		message            string
		condition          metav1.ConditionStatus
		reason             ConditionReason
		conditionMessage   string
		started, completed bool
	}{
		{"pending", func(s *RunStatus) bool { return s.SetAsPending(3, ReasonStorageForbidden, "not allowed") },
			PhasePending, "not allowed", metav1.ConditionUnknown, ReasonStorageForbidden, "not allowed", false, false},
		{"workflow created", func(s *RunStatus) bool { return s.SetAsWorkflowCreated(3, "nightly", "uid-1") },
			PhasePending, "waiting for Argo to start the Workflow", metav1.ConditionUnknown, ReasonWorkflowCreated, "Workflow nightly created", false, false},
		{"waiting for Argo", func(s *RunStatus) bool { return s.SetAsWaitingForArgo(3) },
			PhasePending, "waiting for Argo to start the Workflow", metav1.ConditionUnknown, ReasonPending, "waiting for Argo to start the Workflow", false, false},
		{"running", func(s *RunStatus) bool { return s.SetAsRunning(3, "running dump") },
			PhaseRunning, "running dump", metav1.ConditionUnknown, ReasonRunning, "running dump", true, false},
		{"succeeded", func(s *RunStatus) bool { return s.SetAsSucceeded(3, "1.0KiB stored at k") },
			PhaseSucceeded, "", metav1.ConditionTrue, ReasonSucceeded, "1.0KiB stored at k", false, true},
		{"failed", func(s *RunStatus) bool { return s.SetAsFailed(3, ReasonWorkflowMissing, "the Workflow was deleted") },
			PhaseFailed, "the Workflow was deleted", metav1.ConditionFalse, ReasonWorkflowMissing, "the Workflow was deleted", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// From an older generation's status with a message that must go.
			s := &RunStatus{ObservedGeneration: 2, Message: "older"}
			if !tc.change(s) {
				t.Error("the first change says nothing changed")
			}
			if tc.change(s) {
				t.Error("the same change again says something changed")
			}
			if s.Phase != tc.phase || s.Message != tc.message || s.ObservedGeneration != 3 {
				t.Errorf("phase %s, message %q, generation %d", s.Phase, s.Message, s.ObservedGeneration)
			}
			c := meta.FindStatusCondition(s.Conditions, ConditionSucceeded)
			if c == nil || c.Status != tc.condition || ConditionReason(c.Reason) != tc.reason || c.Message != tc.conditionMessage || c.ObservedGeneration != 3 {
				t.Errorf("Succeeded condition %+v", c)
			}
			if (s.StartedAt != nil) != tc.started || (s.CompletedAt != nil) != tc.completed {
				t.Errorf("startedAt %v, completedAt %v", s.StartedAt, s.CompletedAt)
			}
		})
	}
}

// The times a Workflow reported are kept.
func TestRunStateChangesKeepReportedTimes(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))
	completed := metav1.NewTime(started.Add(time.Minute))
	s := &RunStatus{StartedAt: &started}
	s.SetAsRunning(1, "running dump")
	if !s.StartedAt.Equal(&started) {
		t.Errorf("startedAt %v, want %v", s.StartedAt, started)
	}
	s.CompletedAt = &completed
	s.SetAsFailed(1, ReasonFailed, "step dump failed")
	if !s.CompletedAt.Equal(&completed) {
		t.Errorf("completedAt %v, want %v", s.CompletedAt, completed)
	}
}

// A failed run that Argo retries runs again: it has no completion time until
// it ends again.
func TestRetriedRunHasNoCompletionTime(t *testing.T) {
	s := &RunStatus{}
	s.SetAsFailed(1, ReasonFailed, "step dump failed")
	if s.CompletedAt == nil {
		t.Fatal("a failed run has no completedAt")
	}
	if !s.SetAsRunning(1, "running dump") || s.CompletedAt != nil {
		t.Errorf("running again: completedAt %v, phase %s", s.CompletedAt, s.Phase)
	}
}

// A change of reason alone, with the same phase and message, is a change.
func TestRunStateChangeOfReason(t *testing.T) {
	s := &RunStatus{}
	s.SetAsPending(1, ReasonStorageNotFound, "no storage")
	if !s.SetAsPending(1, ReasonStorageForbidden, "no storage") {
		t.Error("a new reason is not reported as a change")
	}
}
