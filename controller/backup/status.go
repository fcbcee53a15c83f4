package backup

import (
	"context"
	"fmt"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/runstatus"
)

// mirror copies what the Workflow reports into the Backup's status, and
// emits Events and metrics for what changed.
func (r *Reconciler) mirror(ctx context.Context, b *v1.Backup, wf *wfv1.Workflow) error {
	results, err := runstatus.TaskResults(ctx, r.Client, wf)
	if err != nil {
		return err
	}
	run, err := runstatus.FromWorkflow(wf, runstatus.BackupSteps, results)
	if err != nil {
		return err
	}
	old := b.Status.DeepCopy()
	st := &b.Status
	st.ObservedGeneration = b.Generation
	st.WorkflowName = wf.Name
	st.Phase = run.Phase
	st.StartedAt, st.CompletedAt = run.StartedAt, run.CompletedAt
	st.Stages = run.Stages
	st.Progress = run.Progress
	if out := run.Outputs[compiler.StepDump]; out[compiler.OutputKey] != "" {
		st.Location = &v1.ObjectLocation{Storage: b.Spec.Storage.Name, Key: out[compiler.OutputKey]}
		if s := r.storageBucket(ctx, b); s != "" {
			st.Location.Bucket = s
		}
		st.Size = runstatus.Int64(out, compiler.OutputSize)
		st.RawSize = runstatus.Int64(out, compiler.OutputRawSize)
		st.Checksum = out[compiler.OutputChecksum]
		st.RawChecksum = out[compiler.OutputRawChecksum]
		if st.Size != nil {
			st.DisplaySize = v1.FormatSize(*st.Size)
		}
	}
	switch run.Phase {
	case v1.PhaseFailed:
		st.Message = run.Message
	case v1.PhaseSucceeded:
		st.Message = ""
	case v1.PhaseRunning:
		st.Message = "running " + currentStep(run)
	default:
		st.Message = "waiting for Argo to start the Workflow"
	}
	setConditions(b, run)
	if equality.Semantic.DeepEqual(old, st) {
		return nil
	}
	r.emit(b, old, run)
	base := b.DeepCopy()
	base.Status = *old
	return r.Status().Patch(ctx, b, client.MergeFrom(base))
}

// storageBucket is the bucket of the Backup's storage, when it can be read.
func (r *Reconciler) storageBucket(ctx context.Context, b *v1.Backup) string {
	var st v1.BackupStorage
	if err := r.Get(ctx, client.ObjectKey{Namespace: b.Spec.Storage.StorageNamespace(b.Namespace), Name: b.Spec.Storage.Name}, &st); err != nil {
		return ""
	}
	return st.Spec.S3.Bucket
}

func currentStep(run *runstatus.Run) string {
	for _, s := range run.Stages {
		if s.Phase == string(wfv1.NodeRunning) || s.Phase == string(wfv1.NodePending) {
			return s.Name
		}
	}
	return "the Workflow"
}

func setConditions(b *v1.Backup, run *runstatus.Run) {
	succeeded := metav1.Condition{Type: v1.ConditionSucceeded, ObservedGeneration: b.Generation}
	switch run.Phase {
	case v1.PhaseSucceeded:
		succeeded.Status, succeeded.Reason, succeeded.Message = metav1.ConditionTrue, v1.ReasonSucceeded, "the backup was stored"
		if b.Status.Size != nil {
			succeeded.Message = fmt.Sprintf("%s stored at %s", b.Status.DisplaySize, b.Status.Location.Key)
		}
	case v1.PhaseFailed:
		succeeded.Status, succeeded.Reason, succeeded.Message = metav1.ConditionFalse, v1.ReasonFailed, run.Message
	case v1.PhaseRunning:
		succeeded.Status, succeeded.Reason, succeeded.Message = metav1.ConditionUnknown, v1.ReasonRunning, b.Status.Message
	default:
		succeeded.Status, succeeded.Reason, succeeded.Message = metav1.ConditionUnknown, v1.ReasonPending, b.Status.Message
	}
	meta.SetStatusCondition(&b.Status.Conditions, succeeded)

	verified := metav1.Condition{Type: v1.ConditionVerified, ObservedGeneration: b.Generation}
	stage, ok := run.Stage(compiler.StepVerify)
	switch {
	case !ok && run.Phase.IsFinished():
		verified.Status, verified.Reason, verified.Message = metav1.ConditionFalse, v1.ReasonVerifySkipped, "the backup was not verified"
	case !ok:
		return
	case stage.Phase == string(wfv1.NodeSucceeded):
		verified.Status, verified.Reason, verified.Message = metav1.ConditionTrue, v1.ReasonVerified, "read back, decrypted and decompressed; checksums match"
	case stage.Phase == string(wfv1.NodeFailed) || stage.Phase == string(wfv1.NodeError):
		verified.Status, verified.Reason, verified.Message = metav1.ConditionFalse, v1.ReasonVerifyFailed, stage.Message
	case stage.Phase == string(wfv1.NodeOmitted) || stage.Phase == string(wfv1.NodeSkipped):
		verified.Status, verified.Reason, verified.Message = metav1.ConditionFalse, v1.ReasonVerifySkipped, "verify did not run"
	default:
		verified.Status, verified.Reason, verified.Message = metav1.ConditionUnknown, v1.ReasonRunning, "verify has not finished"
	}
	meta.SetStatusCondition(&b.Status.Conditions, verified)
}

// emit records Events and metrics for what changed between two statuses.
func (r *Reconciler) emit(b *v1.Backup, old *v1.BackupStatus, run *runstatus.Run) {
	schedule := b.Labels[v1.LabelSchedule]
	if old.Phase != v1.PhaseRunning && !old.Phase.IsFinished() && (run.Phase == v1.PhaseRunning || run.Phase.IsFinished()) {
		r.Recorder.Eventf(b, corev1.EventTypeNormal, "Started", "Workflow %s started", b.Status.WorkflowName)
	}
	for _, s := range run.Stages {
		if s.Phase != string(wfv1.NodeSucceeded) || stagePhase(old.Stages, s.Name) == s.Phase {
			continue
		}
		switch s.Name {
		case compiler.StepDump:
			if b.Status.Location != nil {
				r.Recorder.Eventf(b, corev1.EventTypeNormal, "Uploaded", "Stored %s (%s) as %s", b.Status.DisplaySize, b.Status.Checksum, b.Status.Location.Key)
			}
		case compiler.StepVerify:
			r.Recorder.Event(b, corev1.EventTypeNormal, "Verified", "Read back, decrypted and decompressed; checksums match")
		case compiler.StepRotate:
			r.Recorder.Event(b, corev1.EventTypeNormal, "Rotated", "Retention applied to the series")
		}
	}
	if v, ok := run.Stage(compiler.StepVerify); ok && (v.Phase == string(wfv1.NodeFailed) || v.Phase == string(wfv1.NodeError)) && stagePhase(old.Stages, v.Name) != v.Phase {
		metrics.VerifyFailedTotal.WithLabelValues(b.Namespace, schedule).Inc()
	}
	if old.Phase == run.Phase || !run.Phase.IsFinished() {
		return
	}
	status := "succeeded"
	if run.Phase == v1.PhaseFailed {
		status = "failed"
		reason := "Failed"
		if run.FailedStep != "" {
			reason = "StepFailed"
		}
		r.Recorder.Event(b, corev1.EventTypeWarning, reason, run.Message)
	} else if b.Status.Size != nil {
		metrics.BackupSize.WithLabelValues(b.Namespace, schedule, b.SeriesName()).Set(float64(*b.Status.Size))
	}
	metrics.BackupTotal.WithLabelValues(b.Namespace, schedule, status).Inc()
	if run.StartedAt != nil && run.CompletedAt != nil {
		metrics.BackupDuration.WithLabelValues(b.Namespace, schedule, status).Observe(run.CompletedAt.Sub(run.StartedAt.Time).Seconds())
	}
}

func stagePhase(stages []v1.StageStatus, name string) string {
	for _, s := range stages {
		if s.Name == name {
			return s.Phase
		}
	}
	return ""
}
