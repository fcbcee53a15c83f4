// Package storage reconciles BackupStorages: it checks that the bucket is
// reachable with the credentials and reports it in the Ready condition.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/status"
	"github.com/backflow-dev/backflow/controller/storageref"
	stagestorage "github.com/backflow-dev/backflow/stages/storage"
)

// Reconciler reconciles BackupStorages.
type Reconciler struct {
	client.Client
	Recorder record.EventRecorder
	// Interval between checks of a reachable bucket; an unreachable one is
	// checked four times as often.
	Interval time.Duration
	// Timeout bounds each request of a check (storageref.DefaultTimeout
	// when zero).
	Timeout time.Duration
}

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var st v1.BackupStorage
	if err := r.Get(ctx, req.NamespacedName, &st); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// First what a namespace the storage stops admitting must lose: its runs'
	// credentials.
	if revoked, err := storageref.Revoke(ctx, r.Client, &st); err != nil {
		return ctrl.Result{}, fmt.Errorf("revoking the credentials of namespaces BackupStorage %s no longer admits: %w", st.ID(), err)
	} else if revoked > 0 {
		r.Recorder.Eventf(&st, corev1.EventTypeNormal, string(v1.EventCredentialsRevoked),
			"Deleted %d Secrets with credentials of this storage in namespaces spec.allowedNamespaces no longer admits, or copied there by an earlier backflow", revoked)
	}
	cond := r.check(ctx, &st)
	prev := meta.FindStatusCondition(st.Status.Conditions, v1.ConditionReady)
	flipped := prev == nil || prev.Status != cond.Status
	if _, err := status.Patch(ctx, r.Client, &st, func() {
		meta.SetStatusCondition(&st.Status.Conditions, cond)
		st.Status.ObservedGeneration = st.Generation
		st.Status.LastCheckedTime = &metav1.Time{Time: time.Now().Truncate(time.Second)}
	}); err != nil {
		return ctrl.Result{}, err
	}
	if flipped {
		kind := corev1.EventTypeNormal
		if cond.Status != metav1.ConditionTrue {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Event(&st, kind, cond.Reason, cond.Message)
	}
	interval := r.Interval
	if interval == 0 {
		interval = 5 * time.Minute
	}
	if cond.Status != metav1.ConditionTrue {
		interval /= 4
	}
	return ctrl.Result{RequeueAfter: interval}, nil
}

// check checks that the storage's bucket is reachable with its credentials,
// as its Ready condition.
func (r *Reconciler) check(ctx context.Context, st *v1.BackupStorage) metav1.Condition {
	cond := metav1.Condition{Type: v1.ConditionReady, ObservedGeneration: st.Generation, Status: metav1.ConditionFalse}
	reason, message := v1.ReasonReachable, "bucket "+st.Spec.S3.Bucket+" is reachable with the credentials"
	if backend, err := storageref.Open(ctx, r.Client, st, r.Timeout); errors.Is(err, storageref.ErrEndpointNotAllowed) {
		reason, message = v1.ReasonEndpointNotAllowed, err.Error()
	} else if err != nil {
		reason, message = v1.ReasonCredentialsError, err.Error()
	} else {
		if err := backend.CheckBucket(ctx); errors.Is(err, storageref.ErrEndpointNotAllowed) {
			reason, message = v1.ReasonEndpointNotAllowed, err.Error()
		} else if errors.Is(err, stagestorage.ErrAccessDenied) {
			reason, message = v1.ReasonReadOnly, fmt.Sprintf("the credentials may not list bucket %s (%v): Backups, which write, list and rotate, cannot use them; a Restore needs only s3:GetObject and runs regardless", st.Spec.S3.Bucket, err)
		} else if err != nil {
			reason, message = v1.ReasonUnreachable, err.Error()
		} else {
			cond.Status = metav1.ConditionTrue
		}
	}
	cond.Reason, cond.Message = string(reason), message
	return cond
}

// SecretIndex indexes BackupStorages by the Secrets they read: the
// credentials and the CA bundle.
const SecretIndex = "backflow.dev/storage-secret"

// secretsOf is what SecretIndex files a BackupStorage under.
func secretsOf(o client.Object) []string {
	s3 := o.(*v1.BackupStorage).Spec.S3
	secrets := []string{s3.Credentials.SecretRef.Name}
	if s3.TLS != nil && s3.TLS.CASecretRef != nil {
		secrets = append(secrets, s3.TLS.CASecretRef.Name)
	}
	return secrets
}

// SetupWithManager watches BackupStorages and their credentials Secrets.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1.BackupStorage{}, SecretIndex, secretsOf); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.BackupStorage{}).
		Named("backupstorage").
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.storagesReading), builder.OnlyMetadata).
		Complete(r)
}

// storagesReading are the storages that read a Secret that changed.
func (r *Reconciler) storagesReading(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1.BackupStorageList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{SecretIndex: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing the BackupStorages of a Secret", "secret", client.ObjectKeyFromObject(o))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, st := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&st)})
	}
	return reqs
}
