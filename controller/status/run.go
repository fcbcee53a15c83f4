package status

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/storageref"
)

// Run is a Backup or a Restore: a resource whose status is a run's.
type Run interface {
	client.Object
	GetRunStatus() *v1.RunStatus
}

// StorageProblem reports a run whose storage cannot be used yet: pending,
// with the reason, and a Warning Event when that is news; the run is looked
// at again after storageref.RetryAfter. An error that is not a storage
// problem is returned as it is.
func StorageProblem(ctx context.Context, c client.Client, recorder record.EventRecorder, run Run, err error) (ctrl.Result, error) {
	reason, ok := storageref.Reason(err)
	if !ok {
		return ctrl.Result{}, err
	}
	changed := false
	if _, err := Patch(ctx, c, run, func() { changed = run.GetRunStatus().SetAsPending(run.GetGeneration(), reason, err.Error()) }); err != nil {
		return ctrl.Result{}, err
	}
	if changed {
		recorder.Event(run, corev1.EventTypeWarning, string(reason), err.Error())
	}
	return ctrl.Result{RequeueAfter: storageref.RetryAfter}, nil
}

// Fail marks a run failed for a reason of backflow's own (not a step's),
// with a Warning Event when that is news. It says whether the run was not
// failed before, for the callers that count failures.
func Fail(ctx context.Context, c client.Client, recorder record.EventRecorder, run Run, reason v1.ConditionReason, message string) (bool, error) {
	wasFailed := run.GetRunStatus().Phase == v1.PhaseFailed
	changed := false
	if _, err := Patch(ctx, c, run, func() { changed = run.GetRunStatus().SetAsFailed(run.GetGeneration(), reason, message) }); err != nil {
		return false, err
	}
	if changed {
		recorder.Event(run, corev1.EventTypeWarning, string(v1.EventFailed), message)
	}
	return !wasFailed, nil
}
