// Package restore reconciles Restores: it resolves which backup to restore,
// creates the Workflow once, and mirrors it into the Restore's status.
package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/runstatus"
	"github.com/backflow-dev/backflow/controller/storageref"
)

// Reconciler reconciles Restores.
type Reconciler struct {
	client.Client
	// APIReader reads past the cache, to tell a Workflow the cache has not
	// seen yet from one that is gone.
	APIReader client.Reader
	Recorder  record.EventRecorder
	Compiler  compiler.Options
}

// errWaiting says the Restore cannot start yet and will be retried.
var errWaiting = errors.New("waiting")

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rs v1.Restore
	if err := r.Get(ctx, req.NamespacedName, &rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	var wf wfv1.Workflow
	err := r.Get(ctx, client.ObjectKey{Namespace: rs.Namespace, Name: compiler.WorkflowName(rs.Name)}, &wf)
	switch {
	case apierrors.IsNotFound(err):
		if rs.Status.Phase.IsFinished() {
			return ctrl.Result{}, nil
		}
		if rs.Status.WorkflowName != "" {
			if err := r.APIReader.Get(ctx, req.NamespacedName, &wf); err == nil {
				return ctrl.Result{RequeueAfter: time.Second}, nil // the cache lags
			} else if !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
			return ctrl.Result{}, r.setFailed(ctx, &rs, v1.ReasonWorkflowMissing, "the Workflow of this Restore was deleted before it finished")
		}
		return r.start(ctx, &rs)
	case err != nil:
		return ctrl.Result{}, err
	}
	if wf.Labels[v1.LabelRestore] != rs.Name {
		return ctrl.Result{}, r.setFailed(ctx, &rs, v1.ReasonInvalidSpec, fmt.Sprintf("a Workflow named %s exists that backflow did not create for this Restore", wf.Name))
	}
	return ctrl.Result{}, r.mirror(ctx, &rs, &wf)
}

// source is the backup a Restore restores, resolved.
type source struct {
	storage  v1.StorageReference
	key      string
	backup   string
	identity *v1.SecretKeySelector
	size     *int64
	checksum string
}

// resolve finds the object to restore.
func (r *Reconciler) resolve(ctx context.Context, rs *v1.Restore) (*source, error) {
	from := rs.Spec.From
	var b *v1.Backup
	switch {
	case from.Object != nil:
		return &source{storage: from.Object.Storage, key: from.Object.Key, identity: rs.Spec.IdentitySecretRef}, nil
	case from.BackupRef != nil:
		var got v1.Backup
		if err := r.Get(ctx, client.ObjectKey{Namespace: rs.Namespace, Name: from.BackupRef.Name}, &got); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%w: Backup %s does not exist", errWaiting, from.BackupRef.Name)
			}
			return nil, err
		}
		if got.Status.Phase != v1.PhaseSucceeded {
			return nil, fmt.Errorf("%w: Backup %s has not succeeded (it is %s)", errWaiting, got.Name, cmp.Or(string(got.Status.Phase), "Pending"))
		}
		b = &got
	case from.ScheduleRef != nil:
		var list v1.BackupList
		if err := r.List(ctx, &list, client.InNamespace(rs.Namespace), client.MatchingLabels{v1.LabelSchedule: from.ScheduleRef.Name}); err != nil {
			return nil, err
		}
		var good []v1.Backup
		for _, item := range list.Items {
			if item.Status.Phase == v1.PhaseSucceeded && item.Status.CompletedAt != nil {
				good = append(good, item)
			}
		}
		if len(good) == 0 {
			return nil, fmt.Errorf("%w: BackupSchedule %s has no successful Backup yet", errWaiting, from.ScheduleRef.Name)
		}
		sort.Slice(good, func(i, j int) bool { return good[i].Status.CompletedAt.After(good[j].Status.CompletedAt.Time) })
		b = &good[0]
	default:
		return nil, errors.New("spec.from names nothing to restore")
	}
	if b.Status.Location == nil || b.Status.Location.Key == "" {
		return nil, fmt.Errorf("backup %s has no stored object in its status", b.Name)
	}
	src := &source{storage: b.Spec.Storage.StorageReference, key: b.Status.Location.Key, backup: b.Name, identity: rs.Spec.IdentitySecretRef,
		size: b.Status.Size, checksum: b.Status.Checksum}
	if src.identity == nil && b.Spec.Encryption != nil && b.Spec.Encryption.Age != nil {
		src.identity = b.Spec.Encryption.Age.IdentitySecretRef
	}
	return src, nil
}

// start resolves the Restore and creates its Workflow.
func (r *Reconciler) start(ctx context.Context, rs *v1.Restore) (ctrl.Result, error) {
	src, err := r.resolve(ctx, rs)
	if errors.Is(err, errWaiting) {
		return ctrl.Result{RequeueAfter: 15 * time.Second}, r.setPending(ctx, rs, v1.ReasonPending, err.Error())
	}
	if err != nil {
		return ctrl.Result{}, r.setFailed(ctx, rs, v1.ReasonInvalidSpec, err.Error())
	}
	access, err := storageref.Resolve(ctx, r.Client, src.storage, rs.Namespace)
	if errors.Is(err, storageref.ErrNotFound) || errors.Is(err, storageref.ErrForbidden) {
		return ctrl.Result{RequeueAfter: 30 * time.Second}, r.setPending(ctx, rs, v1.ReasonStorageNotFound, err.Error())
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	wf, err := compiler.Restore(compiler.RestoreInput{Restore: rs, Storage: access, Key: src.key, Identity: src.identity}, r.Compiler)
	if err != nil {
		return ctrl.Result{}, r.setFailed(ctx, rs, v1.ReasonInvalidSpec, err.Error())
	}
	created, err := runstatus.CreateWorkflow(ctx, r.Client, rs, wf)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !created {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	r.Recorder.Eventf(rs, corev1.EventTypeNormal, "WorkflowCreated", "Created Workflow %s to restore %s", wf.Name, src.key)
	patch := client.MergeFrom(rs.DeepCopy())
	rs.Status.WorkflowName, rs.Status.BackupName = wf.Name, src.backup
	rs.Status.Location = &v1.ObjectLocation{Storage: src.storage.Name, Bucket: access.Storage.Spec.S3.Bucket, Key: src.key}
	rs.Status.Size, rs.Status.Checksum = src.size, src.checksum
	if src.size != nil {
		rs.Status.DisplaySize = v1.FormatSize(*src.size)
	}
	rs.Status.Phase, rs.Status.ObservedGeneration, rs.Status.Message = v1.PhasePending, rs.Generation, "waiting for Argo to start the Workflow"
	meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{Type: v1.ConditionSucceeded, Status: metav1.ConditionUnknown,
		Reason: v1.ReasonWorkflowCreated, Message: "Workflow " + wf.Name + " created", ObservedGeneration: rs.Generation})
	return ctrl.Result{}, r.Status().Patch(ctx, rs, patch)
}

func (r *Reconciler) setPending(ctx context.Context, rs *v1.Restore, reason, message string) error {
	patch := client.MergeFrom(rs.DeepCopy())
	rs.Status.Phase, rs.Status.ObservedGeneration, rs.Status.Message = v1.PhasePending, rs.Generation, message
	meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{Type: v1.ConditionSucceeded, Status: metav1.ConditionUnknown,
		Reason: reason, Message: message, ObservedGeneration: rs.Generation})
	return r.Status().Patch(ctx, rs, patch)
}

func (r *Reconciler) setFailed(ctx context.Context, rs *v1.Restore, reason, message string) error {
	if rs.Status.Phase == v1.PhaseFailed && rs.Status.Message == message {
		return nil
	}
	patch := client.MergeFrom(rs.DeepCopy())
	rs.Status.Phase, rs.Status.ObservedGeneration, rs.Status.Message = v1.PhaseFailed, rs.Generation, message
	meta.SetStatusCondition(&rs.Status.Conditions, metav1.Condition{Type: v1.ConditionSucceeded, Status: metav1.ConditionFalse,
		Reason: reason, Message: message, ObservedGeneration: rs.Generation})
	r.Recorder.Event(rs, corev1.EventTypeWarning, "Failed", message)
	metrics.RestoreTotal.WithLabelValues(rs.Namespace, "failed").Inc()
	return r.Status().Patch(ctx, rs, patch)
}

// mirror copies what the Workflow reports into the Restore's status.
func (r *Reconciler) mirror(ctx context.Context, rs *v1.Restore, wf *wfv1.Workflow) error {
	results, err := runstatus.TaskResults(ctx, r.Client, wf)
	if err != nil {
		return err
	}
	run, err := runstatus.FromWorkflow(wf, runstatus.RestoreSteps, results)
	if err != nil {
		return err
	}
	old := rs.Status.DeepCopy()
	st := &rs.Status
	st.ObservedGeneration, st.WorkflowName = rs.Generation, wf.Name
	st.Phase, st.StartedAt, st.CompletedAt, st.Stages, st.Progress = run.Phase, run.StartedAt, run.CompletedAt, run.Stages, run.Progress
	if out := run.Outputs[compiler.StepRestore]; out != nil {
		if raw := runstatus.Int64(out, compiler.OutputRawSize); raw != nil {
			st.RawSize = raw
		}
	}
	cond := metav1.Condition{Type: v1.ConditionSucceeded, ObservedGeneration: rs.Generation}
	switch run.Phase {
	case v1.PhaseSucceeded:
		st.Message = ""
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, v1.ReasonSucceeded, "restored "+st.Location.Key
	case v1.PhaseFailed:
		st.Message = run.Message
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1.ReasonFailed, run.Message
	case v1.PhaseRunning:
		st.Message = "running"
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1.ReasonRunning, "the restore is running"
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1.ReasonPending, st.Message
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	if equality.Semantic.DeepEqual(old, st) {
		return nil
	}
	if old.Phase != run.Phase && run.Phase.IsFinished() {
		status := "succeeded"
		if run.Phase == v1.PhaseFailed {
			status = "failed"
			r.Recorder.Event(rs, corev1.EventTypeWarning, "StepFailed", run.Message)
		} else {
			r.Recorder.Eventf(rs, corev1.EventTypeNormal, "Restored", "Restored %s", st.Location.Key)
		}
		metrics.RestoreTotal.WithLabelValues(rs.Namespace, status).Inc()
	} else if old.Phase != run.Phase && run.Phase == v1.PhaseRunning {
		r.Recorder.Eventf(rs, corev1.EventTypeNormal, "Started", "Workflow %s started", wf.Name)
	}
	base := rs.DeepCopy()
	base.Status = *old
	return r.Status().Patch(ctx, rs, client.MergeFrom(base))
}

// SetupWithManager watches Restores, their Workflows, and the Backups they
// may be waiting for.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.Restore{}).
		Named("restore").
		Owns(&wfv1.Workflow{}).
		Watches(&v1.Backup{}, handler.EnqueueRequestsFromMapFunc(r.waitingRestores)).
		Complete(r)
}

func (r *Reconciler) waitingRestores(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1.RestoreList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, rs := range list.Items {
		if rs.Status.WorkflowName == "" {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rs)})
		}
	}
	return reqs
}
