// Package backup reconciles Backups: it creates the Workflow of a one-shot
// Backup once, and mirrors every Backup's Workflow (its own, or the one a
// BackupSchedule's CronWorkflow started) into its status.
package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/agekeys"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/internal/runsecret"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/controller/notifyref"
	"github.com/backflow-dev/backflow/controller/runstatus"
	"github.com/backflow-dev/backflow/controller/schedule"
	"github.com/backflow-dev/backflow/controller/status"
	"github.com/backflow-dev/backflow/controller/storageref"
)

// Finalizer is set on Backups whose deletionPolicy is Delete, so that their
// object is deleted before they are.
const Finalizer = "backflow.dev/delete-object"

// Reconciler reconciles Backups.
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
	// Accounts provides the Workflow's service accounts in the Backup's
	// namespace before its Workflow is created.
	Accounts *namespace.Accounts
	// StorageTimeout bounds each request to a storage
	// (storageref.DefaultTimeout when zero).
	StorageTimeout time.Duration
	// DeleteTimeout is how long the finalizer tries to delete the stored
	// object of a Backup whose storage fails, from the Backup's deletion,
	// before it gives up and leaves the object (DefaultDeleteTimeout when
	// zero).
	DeleteTimeout time.Duration
	// Now is the clock of the run Secrets' renewals; time.Now when nil.
	Now func() time.Time
}

// issuer writes the run Secrets of the Backups' Workflows.
func (r *Reconciler) issuer() *storageref.Issuer {
	return &storageref.Issuer{Client: r.Client, Recorder: r.Recorder, Now: r.Now, Timeout: r.StorageTimeout}
}

// DefaultDeleteTimeout is the finalizer's DeleteTimeout when none is set.
const DefaultDeleteTimeout = 5 * time.Minute

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var b v1.Backup
	if err := r.Get(ctx, req.NamespacedName, &b); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetBackup(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &b)
	}
	if b.Spec.DeletionPolicy == v1.DeletionPolicyDelete && !controllerutil.ContainsFinalizer(&b, Finalizer) {
		controllerutil.AddFinalizer(&b, Finalizer)
		if err := r.Update(ctx, &b); err != nil {
			return ctrl.Result{}, err
		}
	}

	var wf wfv1.Workflow
	err := r.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: compiler.WorkflowName(b.Name)}, &wf)
	switch {
	case apierrors.IsNotFound(err):
		return r.reconcileMissingWorkflow(ctx, &b)
	case err != nil:
		return ctrl.Result{}, err
	}
	own, why, err := r.runsThisBackup(ctx, &b, &wf)
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case own:
		if err := r.mirror(ctx, &b, &wf); err != nil {
			return ctrl.Result{}, err
		}
		return r.reconcileRunSecret(ctx, &b, &wf)
	case b.Status.Phase.IsFinished():
		// A finished Backup keeps what its own Workflow reported.
		log.FromContext(ctx).Info("ignoring a Workflow that does not run this Backup", "workflow", wf.Name, "why", why)
		return ctrl.Result{}, nil
	case b.Status.WorkflowUID != "":
		return ctrl.Result{}, r.fail(ctx, &b, v1.ReasonWorkflowMissing,
			fmt.Sprintf("the Workflow %s of this Backup was replaced before it finished by another of that name that backflow did not create (%s); its outputs are ignored", wf.Name, why))
	default:
		return ctrl.Result{}, r.fail(ctx, &b, v1.ReasonInvalidSpec,
			fmt.Sprintf("a Workflow named %s exists in %s that backflow did not create for this Backup (%s); its outputs are ignored; rename the Backup", wf.Name, wf.Namespace, why))
	}
}

// runsThisBackup says whether a Workflow runs this Backup, and why not: the
// Workflow whose UID the status recorded, or, before one is recorded (the
// status patch after creating the Workflow may have failed), the one
// backflow created for it (controlled by the Backup) or the run its schedule
// started (schedule.IsRunOf). Labels are not enough: anyone who may create
// Workflows in the namespace can set them, and the dump step's outputs are
// the key the finalizer may delete.
func (r *Reconciler) runsThisBackup(ctx context.Context, b *v1.Backup, wf *wfv1.Workflow) (bool, string, error) {
	if uid := b.Status.WorkflowUID; uid != "" {
		return wf.UID == uid, fmt.Sprintf("its UID is %s, this Backup's Workflow was %s", wf.UID, uid), nil
	}
	name := b.Labels[v1.LabelSchedule]
	if name == "" {
		return metav1.IsControlledBy(wf, b) && wf.Labels[v1.LabelBackup] == b.Name, describeController(wf), nil
	}
	owner := metav1.GetControllerOf(b)
	if owner == nil || owner.Kind != "BackupSchedule" || owner.Name != name {
		return false, "this Backup is labelled with schedule " + name + " but not controlled by it", nil
	}
	var cron *wfv1.CronWorkflow
	if o := metav1.GetControllerOf(wf); o != nil && o.Kind == workflow.CronWorkflowKind {
		cron = &wfv1.CronWorkflow{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: wf.Namespace, Name: o.Name}, cron); apierrors.IsNotFound(err) {
			cron = nil
		} else if err != nil {
			return false, "", err
		}
	}
	return wf.Labels[v1.LabelSchedule] == name && schedule.IsRunOf(wf, owner.UID, cron), describeController(wf), nil
}

// describeController says what controls a Workflow, for a message.
func describeController(wf *wfv1.Workflow) string {
	if o := metav1.GetControllerOf(wf); o != nil {
		return fmt.Sprintf("it is controlled by %s %s (uid %s)", o.Kind, o.Name, o.UID)
	}
	return "it has no controller"
}

// reconcileMissingWorkflow creates the Workflow of a one-shot Backup that has
// none yet. A Workflow that existed and is gone was deleted by Argo's TTL or
// by a person: a finished Backup keeps its status, a running one fails.
func (r *Reconciler) reconcileMissingWorkflow(ctx context.Context, b *v1.Backup) (ctrl.Result, error) {
	if b.Status.Phase.IsFinished() {
		return ctrl.Result{}, nil
	}
	if b.Status.WorkflowName != "" || b.Labels[v1.LabelSchedule] != "" {
		// The Workflow existed (this controller created it, or a schedule's
		// CronWorkflow did): ask the API server, as the cache may lag.
		var wf wfv1.Workflow
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: compiler.WorkflowName(b.Name)}, &wf)
		if err == nil {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, r.fail(ctx, b, v1.ReasonWorkflowMissing, fmt.Sprintf("the Workflow %s of this Backup was deleted before it finished", compiler.WorkflowName(b.Name)))
	}
	// An image outside the allow-list fails at once, whatever the storage.
	if err := compiler.CheckBackupImages("spec.", b.Spec, r.Compiler); err != nil {
		return ctrl.Result{}, r.fail(ctx, b, compiler.FailureReason(err), err.Error())
	}
	if err := r.Accounts.Provide(ctx, b.Namespace); err != nil {
		if reason, ok := namespace.Reason(err); ok {
			return ctrl.Result{}, r.fail(ctx, b, reason, err.Error())
		}
		return ctrl.Result{}, err
	}
	access, err := storageref.Resolve(ctx, r.Client, b.Spec.Storage.StorageReference, b.Namespace)
	if err != nil {
		return status.StorageProblem(ctx, r.Client, r.Recorder, b, err)
	}
	recipient, err := agekeys.Ensure(ctx, r.Client, r.Recorder, b, "Backup", "spec.encryption.age.generate.secretName", b.Spec.Encryption)
	if reason, ok := agekeys.Reason(err); ok {
		return ctrl.Result{}, r.fail(ctx, b, reason, err.Error())
	} else if err != nil {
		return ctrl.Result{}, err
	}
	wf, err := compiler.Backup(compiler.BackupInput{Backup: b, Storage: access, AgeRecipient: recipient}, r.Compiler)
	if err != nil {
		return ctrl.Result{}, r.fail(ctx, b, compiler.FailureReason(err), err.Error())
	}
	// The credentials are issued first: a storage that cannot give them
	// holds the Backup before anything of it runs.
	run := storageref.Run{Storage: access.Storage, Grants: storageref.BackupGrants(access.Storage, b), For: b}
	issued, err := r.issuer().Issue(ctx, access.Storage, b.Namespace, run.Grants)
	if err != nil {
		return status.StorageProblem(ctx, r.Client, r.Recorder, b, err)
	}
	created, err := runstatus.CreateWorkflow(ctx, r.Client, b, wf)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !created {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	log.FromContext(ctx).Info("created Workflow", "workflow", wf.Name)
	r.Recorder.Eventf(b, corev1.EventTypeNormal, string(v1.EventWorkflowCreated), "Created Workflow %s", wf.Name)
	// The run Secret is written in the same reconcile, normally before Argo
	// creates the first pod; a pod that comes first waits for it. When it
	// fails, the next reconcile, which finds the Workflow, writes it.
	run.Workflow = wf
	renew, secretErr := r.issuer().Ensure(ctx, run, issued)
	if err := notifyref.Ensure(ctx, r.Client, r.Recorder, b, wf, b.Spec.Notify); err != nil && secretErr == nil {
		secretErr = err
	}
	if _, err := status.Patch(ctx, r.Client, b, func() { b.Status.SetAsWorkflowCreated(b.Generation, wf.Name, wf.UID) }); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: renew}, secretErr
}

// reconcileRunSecret keeps the run Secret of a Workflow that runs this
// Backup (one backflow created, or the run its schedule's CronWorkflow
// started: runsThisBackup, never a Workflow that merely looks like one):
// written and renewed while the Workflow runs, deleted as soon as it has
// finished or its storage no longer admits the namespace.
func (r *Reconciler) reconcileRunSecret(ctx context.Context, b *v1.Backup, wf *wfv1.Workflow) (ctrl.Result, error) {
	if wf.Status.Phase.Completed() || !wf.DeletionTimestamp.IsZero() {
		if err := notifyref.Delete(ctx, r.SecretMetadata, r.Client, wf); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, storageref.DeleteRunSecret(ctx, r.SecretMetadata, r.Client, wf)
	}
	if err := notifyref.Ensure(ctx, r.Client, r.Recorder, b, wf, b.Spec.Notify); err != nil {
		return ctrl.Result{}, err
	}
	access, err := storageref.Resolve(ctx, r.Client, b.Spec.Storage.StorageReference, b.Namespace)
	if reason, ok := storageref.Reason(err); ok {
		if err := storageref.DeleteRunSecret(ctx, r.SecretMetadata, r.Client, wf); err != nil {
			return ctrl.Result{}, err
		}
		r.Recorder.Event(b, corev1.EventTypeWarning, string(reason), err.Error())
		return ctrl.Result{RequeueAfter: storageref.RetryAfter}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	renew, err := r.issuer().Ensure(ctx, storageref.Run{Workflow: wf, Storage: access.Storage, Grants: storageref.BackupGrants(access.Storage, b), For: b}, nil)
	if errors.Is(err, storageref.ErrCredentialsNotMinted) {
		// The steps that use the storage wait for their credentials.
		r.Recorder.Event(b, corev1.EventTypeWarning, string(v1.ReasonCredentialsNotMinted), err.Error())
		return ctrl.Result{RequeueAfter: storageref.RetryAfter}, nil
	}
	return ctrl.Result{RequeueAfter: renew}, err
}

// fail marks a Backup failed for a reason of its own (not a step's).
func (r *Reconciler) fail(ctx context.Context, b *v1.Backup, reason v1.ConditionReason, message string) error {
	first, err := status.Fail(ctx, r.Client, r.Recorder, b, reason, message)
	if first {
		metrics.BackupTotal.WithLabelValues(b.Namespace, b.Labels[v1.LabelSchedule], metrics.StatusFailed).Inc()
	}
	return err
}

// StorageIndex indexes Backups by the BackupStorage they reference, as
// storageref.IndexValue.
const StorageIndex = "backflow.dev/backup-storage"

// storageOf is what StorageIndex files a Backup under.
func storageOf(o client.Object) []string {
	b := o.(*v1.Backup)
	return []string{storageref.IndexValue(b.Spec.Storage.StorageReference, b.Namespace)}
}

// SetupWithManager watches Backups, the Workflows that run them, the
// BackupStorages they wait for and their run Secrets.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1.Backup{}, StorageIndex, storageOf); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.Backup{}).
		Named("backup").
		// A Workflow runs the Backup of the same name: created by this
		// controller, or by a schedule's CronWorkflow.
		Watches(&wfv1.Workflow{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			labels := o.GetLabels()
			if labels[v1.LabelBackup] == "" && labels[v1.LabelSchedule] == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
		})).
		Watches(&v1.BackupStorage{}, handler.EnqueueRequestsFromMapFunc(r.backupsWaitingFor)).
		// A run Secret that reaches the cache after its run finished is
		// deleted then (runsecret.Delete reads the cache).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(runsecret.RunOf), builder.OnlyMetadata, builder.WithPredicates(runsecret.Arrived())).
		Complete(r)
}

// backupsWaitingFor are the Backups that reference a storage that changed
// and have no Workflow yet: those may be waiting for it.
func (r *Reconciler) backupsWaitingFor(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1.BackupList
	if err := r.List(ctx, &list, client.MatchingFields{StorageIndex: client.ObjectKeyFromObject(o).String()}); err != nil {
		log.FromContext(ctx).Error(err, "listing the Backups of a BackupStorage", "storage", client.ObjectKeyFromObject(o))
		return nil
	}
	var reqs []reconcile.Request
	for _, b := range list.Items {
		if b.Status.WorkflowName == "" {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&b)})
		}
	}
	return reqs
}
