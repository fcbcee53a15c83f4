package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/runstatus"
	"github.com/backflow-dev/backflow/controller/status"
	"github.com/backflow-dev/backflow/controller/storageref"
	"github.com/backflow-dev/backflow/stages"
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
	bucket := r.storageBucket(ctx, b)
	changed, err := status.Patch(ctx, r.Client, b, func() {
		setStatus(b, wf.Name, run, bucket)
		setEncryption(b, wf)
		b.Status.WorkflowUID = wf.UID
	})
	if err != nil || !changed {
		return err
	}
	r.emit(b, old, run)
	runstatus.ReportNotifications(r.Recorder, b, b.Namespace, "Backup", old.Notifications, b.Status.Notifications)
	return nil
}

// setStatus sets the status of a Backup from what its Workflow reports; the
// bucket is the storage's, when it could be read.
func setStatus(b *v1.Backup, workflow string, run *runstatus.Run, bucket string) {
	st := &b.Status
	if out := run.Outputs[compiler.StepDump]; out[compiler.OutputKey] != "" {
		if bucket == "" && st.Location != nil {
			bucket = st.Location.Bucket // the storage cannot be read now: keep what it said
		}
		st.Location = &v1.ObjectLocation{Storage: b.Spec.Storage.Name, Bucket: bucket, Key: out[compiler.OutputKey]}
		st.Size = runstatus.Int64(out, compiler.OutputSize)
		st.RawSize = runstatus.Int64(out, compiler.OutputRawSize)
		st.Checksum = out[compiler.OutputChecksum]
		st.RawChecksum = out[compiler.OutputRawChecksum]
		if st.Size != nil {
			st.DisplaySize = v1.FormatSize(*st.Size)
		}
	}
	summary := "the backup was stored"
	if st.Size != nil && st.Location != nil {
		summary = fmt.Sprintf("%s stored at %s", st.DisplaySize, st.Location.Key)
	}
	runstatus.Mirror(&st.RunStatus, b.Generation, workflow, run, summary)
	setVerified(b, run)
	setRotation(b, run)
}

// setEncryption sets what the Workflow encrypts the backup to: the
// recipients its dump step is given, and the Secret of the generated
// identity that decrypts it.
func setEncryption(b *v1.Backup, wf *wfv1.Workflow) {
	recipients := compiler.DumpRecipients(wf)
	if len(recipients) == 0 {
		b.Status.Encryption = nil
		return
	}
	enc := &v1.EncryptionStatus{Recipients: recipients}
	if e := b.Spec.Encryption; e != nil && e.Age != nil && e.Age.Generate != nil {
		enc.IdentitySecret = e.Age.Generate.SecretName
	}
	b.Status.Encryption = enc
}

// setRotation sets what the rotate step reports it decided, once it did. An
// output that does not parse is left out: the step's own log has it.
func setRotation(b *v1.Backup, run *runstatus.Run) {
	out := run.Outputs[compiler.StepRotate][compiler.OutputRotation]
	if out == "" {
		return
	}
	var report stages.RotationReport
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		return
	}
	rotation := &v1.RotationStatus{Kept: int32(report.Kept), Deleted: int32(report.Deleted)}
	rotation.DeletedKeys = report.DeletedKeys[:min(len(report.DeletedKeys), v1.MaxRotationKeys)]
	b.Status.Rotation = rotation
}

// rotatedMessage is the message of the Rotated Event: the counts and the
// keys deleted, bounded.
func rotatedMessage(r *v1.RotationStatus) string {
	if r == nil {
		return "Retention applied to the series"
	}
	msg := fmt.Sprintf("Retention kept %d and deleted %d of the series", r.Kept, r.Deleted)
	if len(r.DeletedKeys) == 0 {
		return msg
	}
	msg += ": "
	for i, key := range r.DeletedKeys {
		more := fmt.Sprintf(" and %d more", int(r.Deleted)-i)
		if len(msg)+len(key)+len(more)+2 > maxEventMessage {
			return msg + strings.TrimPrefix(more, " ")
		}
		if i > 0 {
			msg += ", "
		}
		msg += key
	}
	if int(r.Deleted) > len(r.DeletedKeys) {
		msg += fmt.Sprintf(" and %d more", int(r.Deleted)-len(r.DeletedKeys))
	}
	return msg
}

// maxEventMessage bounds an Event's message (events.k8s.io refuses a note
// over 1 KiB).
const maxEventMessage = 1024

// storageBucket is the bucket of the Backup's storage, when it can be read.
func (r *Reconciler) storageBucket(ctx context.Context, b *v1.Backup) string {
	var st v1.BackupStorage
	if err := r.Get(ctx, storageref.Key(b.Spec.Storage.StorageReference, b.Namespace), &st); err != nil {
		return ""
	}
	return st.Spec.S3.Bucket
}

// setVerified sets the Verified condition from the verify step, once it
// ran or the backup finished without it.
func setVerified(b *v1.Backup, run *runstatus.Run) {
	verified := metav1.Condition{Type: v1.ConditionVerified, ObservedGeneration: b.Generation}
	var reason v1.ConditionReason
	stage, ok := run.Stage(compiler.StepVerify)
	switch {
	case !ok && run.Phase.IsFinished():
		verified.Status, reason, verified.Message = metav1.ConditionFalse, v1.ReasonVerifySkipped, "the backup was not verified"
	case !ok:
		return
	case stage.Phase == string(wfv1.NodeSucceeded):
		verified.Status, reason, verified.Message = metav1.ConditionTrue, v1.ReasonVerified, "read back, decrypted and decompressed; checksums match"
	case stage.Phase == string(wfv1.NodeFailed) || stage.Phase == string(wfv1.NodeError):
		verified.Status, reason, verified.Message = metav1.ConditionFalse, v1.ReasonVerifyFailed, stage.Message
	case stage.Phase == string(wfv1.NodeOmitted) || stage.Phase == string(wfv1.NodeSkipped):
		verified.Status, reason, verified.Message = metav1.ConditionFalse, v1.ReasonVerifySkipped, "verify did not run"
	default:
		verified.Status, reason, verified.Message = metav1.ConditionUnknown, v1.ReasonRunning, "verify has not finished"
	}
	verified.Reason = string(reason)
	meta.SetStatusCondition(&b.Status.Conditions, verified)
}

// emit records Events and metrics for what changed between two statuses.
func (r *Reconciler) emit(b *v1.Backup, old *v1.BackupStatus, run *runstatus.Run) {
	schedule := b.Labels[v1.LabelSchedule]
	if run.StartedSince(old.Phase) {
		r.Recorder.Eventf(b, corev1.EventTypeNormal, string(v1.EventStarted), "Workflow %s started", b.Status.WorkflowName)
	}
	for _, s := range run.Stages {
		if s.Phase != string(wfv1.NodeSucceeded) || stagePhase(old.Stages, s.Name) == s.Phase {
			continue
		}
		switch s.Name {
		case compiler.StepDump:
			if b.Status.Location != nil {
				r.Recorder.Eventf(b, corev1.EventTypeNormal, string(v1.EventUploaded), "Stored %s (%s) as %s", b.Status.DisplaySize, b.Status.Checksum, b.Status.Location.Key)
			}
		case compiler.StepVerify:
			r.Recorder.Event(b, corev1.EventTypeNormal, string(v1.EventVerified), "Read back, decrypted and decompressed; checksums match")
		case compiler.StepRotate:
			r.Recorder.Event(b, corev1.EventTypeNormal, string(v1.EventRotated), rotatedMessage(b.Status.Rotation))
		}
	}
	if v, ok := run.Stage(compiler.StepVerify); ok && (v.Phase == string(wfv1.NodeFailed) || v.Phase == string(wfv1.NodeError)) && stagePhase(old.Stages, v.Name) != v.Phase {
		metrics.VerifyFailedTotal.WithLabelValues(b.Namespace, schedule).Inc()
	}
	if old.Phase == run.Phase || !run.Phase.IsFinished() {
		return
	}
	status := metrics.StatusSucceeded
	if run.Phase == v1.PhaseFailed {
		status = metrics.StatusFailed
		r.Recorder.Event(b, corev1.EventTypeWarning, string(run.FailureEvent()), run.Message)
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
