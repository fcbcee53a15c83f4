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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/internal/runsecret"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/controller/notifyref"
	"github.com/backflow-dev/backflow/controller/runstatus"
	"github.com/backflow-dev/backflow/controller/status"
	"github.com/backflow-dev/backflow/controller/storageref"
)

// Reconciler reconciles Restores.
type Reconciler struct {
	client.Client
	// APIReader reads past the cache, to tell a Workflow the cache has not
	// seen yet from one that is gone.
	APIReader client.Reader
	// SecretMetadata reads the metadata of Secrets from the manager's cache
	// (Secrets themselves are never cached): whether a run Secret is left
	// to delete.
	SecretMetadata client.Reader
	Recorder       record.EventRecorder
	Compiler       compiler.Options
	// StorageTimeout bounds each request to a storage's STS
	// (storageref.DefaultTimeout when zero).
	StorageTimeout time.Duration
	// Now is the clock of the run Secrets' renewals; time.Now when nil.
	Now func() time.Time
	// Accounts provides the Workflow's service accounts in the Restore's
	// namespace before its Workflow is created.
	Accounts *namespace.Accounts
}

// issuer writes the run Secrets of the Restores' Workflows.
func (r *Reconciler) issuer() *storageref.Issuer {
	return &storageref.Issuer{Client: r.Client, Recorder: r.Recorder, Now: r.Now, Timeout: r.StorageTimeout}
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
	switch own, why := runsThisRestore(&rs, &wf); {
	case own && rs.Status.WorkflowUID == "" && rs.Status.Location == nil:
		// The Workflow was created and the status patch after it failed:
		// adopt it, with what it restores.
		if err := r.adopt(ctx, &rs, &wf); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.mirror(ctx, &rs, &wf); err != nil {
			return ctrl.Result{}, err
		}
		return r.reconcileRunSecret(ctx, &rs, &wf)
	case own:
		if err := r.mirror(ctx, &rs, &wf); err != nil {
			return ctrl.Result{}, err
		}
		return r.reconcileRunSecret(ctx, &rs, &wf)
	case rs.Status.Phase.IsFinished():
		log.FromContext(ctx).Info("ignoring a Workflow that does not run this Restore", "workflow", wf.Name, "why", why)
		return ctrl.Result{}, nil
	case rs.Status.WorkflowUID != "":
		return ctrl.Result{}, r.setFailed(ctx, &rs, v1.ReasonWorkflowMissing,
			fmt.Sprintf("the Workflow %s of this Restore was replaced before it finished by another of that name that backflow did not create (%s)", wf.Name, why))
	default:
		return ctrl.Result{}, r.setFailed(ctx, &rs, v1.ReasonInvalidSpec,
			fmt.Sprintf("a Workflow named %s exists that backflow did not create for this Restore (%s); rename the Restore", wf.Name, why))
	}
}

// runsThisRestore says whether a Workflow runs this Restore, and why not:
// the Workflow whose UID the status recorded, or, before one is recorded,
// the one backflow created for it (controlled by the Restore).
func runsThisRestore(rs *v1.Restore, wf *wfv1.Workflow) (bool, string) {
	if uid := rs.Status.WorkflowUID; uid != "" {
		return wf.UID == uid, fmt.Sprintf("its UID is %s, this Restore's Workflow was %s", wf.UID, uid)
	}
	if metav1.IsControlledBy(wf, rs) && wf.Labels[v1.LabelRestore] == rs.Name {
		return true, ""
	}
	if o := metav1.GetControllerOf(wf); o != nil {
		return false, fmt.Sprintf("it is controlled by %s %s (uid %s)", o.Kind, o.Name, o.UID)
	}
	return false, "it has no controller"
}

// adopt fills in what start records beside the Workflow (the backup and
// the object restored) for a Workflow that this Restore controls but whose
// creation never reached the status. What the Restore resolves to now is
// recorded only if it compiles to the very steps and arguments that run: a schedule
// may have a newer backup since. Otherwise the status names no object
// rather than a wrong one.
func (r *Reconciler) adopt(ctx context.Context, rs *v1.Restore, wf *wfv1.Workflow) error {
	log.FromContext(ctx).Info("adopting the Workflow created for this Restore", "workflow", wf.Name)
	src, err := r.resolve(ctx, rs)
	if err != nil {
		log.FromContext(ctx).Info("cannot tell what the adopted Workflow restores", "reason", err.Error())
		return nil
	}
	access, err := storageref.Resolve(ctx, r.Client, src.storage, rs.Namespace)
	if err != nil {
		log.FromContext(ctx).Info("cannot tell what the adopted Workflow restores", "reason", err.Error())
		return nil
	}
	want, err := compiler.Restore(compiler.RestoreInput{Restore: rs, Storage: access, Key: src.key, KeyField: src.keyField, Identity: src.identity}, r.Compiler)
	if err != nil || !sameRun(&want.Spec, &wf.Spec) {
		log.FromContext(ctx).Info("the adopted Workflow does not restore what this Restore resolves to now; its status names no object", "workflow", wf.Name)
		return nil
	}
	_, err = status.Patch(ctx, r.Client, rs, func() { recordSource(rs, src, access) })
	return err
}

// sameRun says whether two Workflow specs run the same steps with the same
// arguments, and so restore the same object. The rest of a spec is not
// compared: Argo merges its workflowDefaults into it.
func sameRun(a, b *wfv1.WorkflowSpec) bool {
	return equality.Semantic.DeepEqual(a.Templates, b.Templates) && equality.Semantic.DeepEqual(a.Arguments, b.Arguments) &&
		equality.Semantic.DeepEqual(a.WorkflowTemplateRef, b.WorkflowTemplateRef)
}

// recordSource records in the status what a Restore restores.
func recordSource(rs *v1.Restore, src *source, access compiler.StorageAccess) {
	st := &rs.Status
	st.BackupName = src.backup
	st.Location = &v1.ObjectLocation{Storage: src.storage.Name, Bucket: access.Storage.Spec.S3.Bucket, Key: src.key}
	st.Size, st.Checksum = src.size, src.checksum
	if src.size != nil {
		st.DisplaySize = v1.FormatSize(*src.size)
	}
}

// source is the backup a Restore restores, resolved.
type source struct {
	storage v1.StorageReference
	key     string
	// keyField names where the key comes from, for messages.
	keyField string
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
		return &source{storage: from.Object.Storage, key: from.Object.Key, keyField: "spec.from.object.key", identity: rs.Spec.IdentitySecretRef}, nil
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
	src := &source{storage: b.Spec.Storage.StorageReference, key: b.Status.Location.Key, keyField: fmt.Sprintf("status.location.key of Backup %s", b.Name),
		backup: b.Name, identity: rs.Spec.IdentitySecretRef,
		size: b.Status.Size, checksum: b.Status.Checksum}
	if src.identity == nil && b.Spec.Encryption != nil {
		src.identity = b.Spec.Encryption.Age.Identity()
	}
	return src, nil
}

// start resolves the Restore and creates its Workflow.
func (r *Reconciler) start(ctx context.Context, rs *v1.Restore) (ctrl.Result, error) {
	// An image outside the allow-list fails at once, without waiting for
	// the backup to restore.
	if err := compiler.CheckRestoreImages(rs.Spec, r.Compiler); err != nil {
		return ctrl.Result{}, r.setFailed(ctx, rs, compiler.FailureReason(err), err.Error())
	}
	if err := r.Accounts.Provide(ctx, rs.Namespace); err != nil {
		if reason, ok := namespace.Reason(err); ok {
			return ctrl.Result{}, r.setFailed(ctx, rs, reason, err.Error())
		}
		return ctrl.Result{}, err
	}
	src, err := r.resolve(ctx, rs)
	if errors.Is(err, errWaiting) {
		_, err := status.Patch(ctx, r.Client, rs, func() { rs.Status.SetAsPending(rs.Generation, v1.ReasonPending, err.Error()) })
		return ctrl.Result{RequeueAfter: waitForBackup}, err
	}
	if err != nil {
		return ctrl.Result{}, r.setFailed(ctx, rs, v1.ReasonInvalidSpec, err.Error())
	}
	access, err := storageref.Resolve(ctx, r.Client, src.storage, rs.Namespace)
	if err != nil {
		return status.StorageProblem(ctx, r.Client, r.Recorder, rs, err)
	}
	wf, err := compiler.Restore(compiler.RestoreInput{Restore: rs, Storage: access, Key: src.key, KeyField: src.keyField, Checksum: src.checksum, Identity: src.identity}, r.Compiler)
	if err != nil {
		return ctrl.Result{}, r.setFailed(ctx, rs, compiler.FailureReason(err), err.Error())
	}
	// The credentials are issued first: a storage that cannot give them
	// holds the Restore before anything of it runs.
	run := storageref.Run{Storage: access.Storage, Grants: storageref.RestoreGrants(access.Storage, rs, src.key), For: rs}
	issued, err := r.issuer().Issue(ctx, access.Storage, rs.Namespace, run.Grants)
	if err != nil {
		return status.StorageProblem(ctx, r.Client, r.Recorder, rs, err)
	}
	created, err := runstatus.CreateWorkflow(ctx, r.Client, rs, wf)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !created {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	r.Recorder.Eventf(rs, corev1.EventTypeNormal, string(v1.EventWorkflowCreated), "Created Workflow %s to restore %s", wf.Name, src.key)
	run.Workflow = wf
	renew, secretErr := r.issuer().Ensure(ctx, run, issued)
	if err := notifyref.Ensure(ctx, r.Client, r.Recorder, rs, wf, rs.Spec.Notify); err != nil && secretErr == nil {
		secretErr = err
	}
	if _, err = status.Patch(ctx, r.Client, rs, func() {
		recordSource(rs, src, access)
		rs.Status.SetAsWorkflowCreated(rs.Generation, wf.Name, wf.UID)
	}); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: renew}, secretErr
}

// reconcileRunSecret keeps the run Secret of the Workflow this Restore
// created: written and renewed while it runs, for the object its status
// records, deleted as soon as it has finished or its storage no longer
// admits the namespace.
func (r *Reconciler) reconcileRunSecret(ctx context.Context, rs *v1.Restore, wf *wfv1.Workflow) (ctrl.Result, error) {
	if wf.Status.Phase.Completed() || !wf.DeletionTimestamp.IsZero() {
		if err := notifyref.Delete(ctx, r.SecretMetadata, r.Client, wf); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, storageref.DeleteRunSecret(ctx, r.SecretMetadata, r.Client, wf)
	}
	if err := notifyref.Ensure(ctx, r.Client, r.Recorder, rs, wf, rs.Spec.Notify); err != nil {
		return ctrl.Result{}, err
	}
	if rs.Status.Location == nil {
		// An adopted Workflow whose object could not be told: nothing to
		// grant (adopt logged why).
		return ctrl.Result{}, nil
	}
	src, err := r.resolve(ctx, rs)
	if err != nil {
		return ctrl.Result{RequeueAfter: storageref.RetryAfter}, nil //nolint:nilerr // resolve says why on the next start; the run keeps its Secret
	}
	access, err := storageref.Resolve(ctx, r.Client, src.storage, rs.Namespace)
	if reason, ok := storageref.Reason(err); ok {
		if err := storageref.DeleteRunSecret(ctx, r.SecretMetadata, r.Client, wf); err != nil {
			return ctrl.Result{}, err
		}
		r.Recorder.Event(rs, corev1.EventTypeWarning, string(reason), err.Error())
		return ctrl.Result{RequeueAfter: storageref.RetryAfter}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	run := storageref.Run{Workflow: wf, Storage: access.Storage, Grants: storageref.RestoreGrants(access.Storage, rs, rs.Status.Location.Key), For: rs}
	renew, err := r.issuer().Ensure(ctx, run, nil)
	if errors.Is(err, storageref.ErrCredentialsNotMinted) {
		r.Recorder.Event(rs, corev1.EventTypeWarning, string(v1.ReasonCredentialsNotMinted), err.Error())
		return ctrl.Result{RequeueAfter: storageref.RetryAfter}, nil
	}
	return ctrl.Result{RequeueAfter: renew}, err
}

// waitForBackup is how soon a Restore whose Backup has not succeeded is
// looked at again; a change to the Backup also triggers it.
const waitForBackup = 15 * time.Second

// setFailed marks a Restore failed for a reason of its own (not a step's).
func (r *Reconciler) setFailed(ctx context.Context, rs *v1.Restore, reason v1.ConditionReason, message string) error {
	first, err := status.Fail(ctx, r.Client, r.Recorder, rs, reason, message)
	if first {
		metrics.RestoreTotal.WithLabelValues(rs.Namespace, metrics.StatusFailed).Inc()
	}
	return err
}

// mirror copies what the Workflow reports into the Restore's status, and
// emits Events and metrics for what changed.
func (r *Reconciler) mirror(ctx context.Context, rs *v1.Restore, wf *wfv1.Workflow) error {
	results, err := runstatus.TaskResults(ctx, r.Client, wf)
	if err != nil {
		return err
	}
	run, err := runstatus.FromWorkflow(wf, runstatus.RestoreSteps, results)
	if err != nil {
		return err
	}
	old := rs.Status.Phase
	oldNotifications := rs.Status.Notifications
	changed, err := status.Patch(ctx, r.Client, rs, func() {
		setStatus(rs, wf.Name, run)
		rs.Status.WorkflowUID = wf.UID
	})
	if err != nil || !changed {
		return err
	}
	runstatus.ReportNotifications(r.Recorder, rs, rs.Namespace, "Restore", oldNotifications, rs.Status.Notifications)
	if run.StartedSince(old) {
		r.Recorder.Eventf(rs, corev1.EventTypeNormal, string(v1.EventStarted), "Workflow %s started", wf.Name)
	}
	if old == run.Phase || !run.Phase.IsFinished() {
		return nil
	}
	result := metrics.StatusSucceeded
	if run.Phase == v1.PhaseFailed {
		result = metrics.StatusFailed
		r.Recorder.Event(rs, corev1.EventTypeWarning, string(run.FailureEvent()), run.Message)
	} else if loc := rs.Status.Location; loc != nil {
		r.Recorder.Eventf(rs, corev1.EventTypeNormal, string(v1.EventRestored), "Restored %s", loc.Key)
	} else {
		r.Recorder.Eventf(rs, corev1.EventTypeNormal, string(v1.EventRestored), "Restored the backup of Workflow %s", wf.Name)
	}
	metrics.RestoreTotal.WithLabelValues(rs.Namespace, result).Inc()
	return nil
}

// setStatus sets the status of a Restore from what its Workflow reports.
func setStatus(rs *v1.Restore, workflow string, run *runstatus.Run) {
	st := &rs.Status
	if raw := runstatus.Int64(run.Outputs[compiler.StepRestore], compiler.OutputRawSize); raw != nil {
		st.RawSize = raw
	}
	summary := "the backup was restored"
	if st.Location != nil {
		summary = "restored " + st.Location.Key
	}
	runstatus.Mirror(&st.RunStatus, rs.Generation, workflow, run, summary)
}

// BackupIndex indexes the Restores that restore from a Backup or a
// BackupSchedule by what they restore from, as sourceIndexValue.
const BackupIndex = "backflow.dev/restore-from"

// sourceIndexValue is the value BackupIndex files a Restore under: the kind
// and name of the Backup or BackupSchedule it restores from, in its own
// namespace.
func sourceIndexValue(kind, name string) string { return kind + "/" + name }

// sourceOf is what BackupIndex files a Restore under; nothing for a Restore
// of a stored object, which waits for no Backup.
func sourceOf(o client.Object) []string {
	from := o.(*v1.Restore).Spec.From
	switch {
	case from.BackupRef != nil:
		return []string{sourceIndexValue("Backup", from.BackupRef.Name)}
	case from.ScheduleRef != nil:
		return []string{sourceIndexValue("BackupSchedule", from.ScheduleRef.Name)}
	}
	return nil
}

// SetupWithManager watches Restores, their Workflows, the Backups they
// may be waiting for, and their run Secrets.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1.Restore{}, BackupIndex, sourceOf); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.Restore{}).
		Named("restore").
		Owns(&wfv1.Workflow{}).
		Watches(&v1.Backup{}, handler.EnqueueRequestsFromMapFunc(r.waitingRestores)).
		// A run Secret that reaches the cache after its run finished is
		// deleted then (runsecret.Delete reads the cache).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(runsecret.RunOf), builder.OnlyMetadata, builder.WithPredicates(runsecret.Arrived())).
		Complete(r)
}

// waitingRestores are the Restores without a Workflow yet that restore from
// a Backup that changed, or from its schedule: those may be waiting for it.
func (r *Reconciler) waitingRestores(ctx context.Context, o client.Object) []reconcile.Request {
	sources := []string{sourceIndexValue("Backup", o.GetName())}
	if s := o.GetLabels()[v1.LabelSchedule]; s != "" {
		sources = append(sources, sourceIndexValue("BackupSchedule", s))
	}
	var reqs []reconcile.Request
	for _, source := range sources {
		var list v1.RestoreList
		if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{BackupIndex: source}); err != nil {
			log.FromContext(ctx).Error(err, "listing the Restores of a Backup", "backup", client.ObjectKeyFromObject(o))
			return nil
		}
		for _, rs := range list.Items {
			if rs.Status.WorkflowName == "" {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rs)})
			}
		}
	}
	return reqs
}
