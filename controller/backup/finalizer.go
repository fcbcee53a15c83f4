package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/storageref"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/storage"
)

// deleteRetryInterval is how soon the finalizer tries again after the
// storage failed, within the DeleteTimeout.
const deleteRetryInterval = 10 * time.Second

// finalize runs when a Backup that carries the finalizer (deletionPolicy
// Delete) is deleted: it deletes the stored object and its manifest when
// they provably are this Backup's, leaves them with an Event saying why
// otherwise, and then removes the finalizer. It never holds a Backup (and
// so its namespace) in deletion for longer than the DeleteTimeout.
func (r *Reconciler) finalize(ctx context.Context, b *v1.Backup) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(b, Finalizer) {
		return ctrl.Result{}, nil
	}
	if loc := b.Status.Location; loc != nil && loc.Key != "" {
		if retry := r.deleteStored(ctx, b, loc.Key); retry > 0 {
			return ctrl.Result{RequeueAfter: retry}, nil
		}
	}
	controllerutil.RemoveFinalizer(b, Finalizer)
	return ctrl.Result{}, r.Update(ctx, b)
}

// leftError says why the finalizer leaves an object: trying again would not
// change it.
type leftError struct{ reason string }

func (e *leftError) Error() string { return e.reason }

func leave(format string, args ...any) error { return &leftError{fmt.Sprintf(format, args...)} }

// errGone says the object and its manifest are gone already (retention, or
// a person, removed them).
var errGone = errors.New("gone")

// deleteStored deletes the Backup's object at key, or leaves it, recording
// an Event either way. It returns how soon to try again when the storage
// failed and the DeleteTimeout has not passed; zero when it is done.
func (r *Reconciler) deleteStored(ctx context.Context, b *v1.Backup, key string) time.Duration {
	if by := b.Annotations[v1.AnnotationPrunedBy]; by != "" {
		r.Recorder.Eventf(b, corev1.EventTypeNormal, string(v1.EventObjectKept),
			"Kept %s: the history limit of BackupSchedule %s removed this Backup, not its data; retention removes the object", key, by)
		return 0
	}
	err := r.deleteOwnObject(ctx, b, key)
	var left *leftError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errGone):
		r.Recorder.Eventf(b, corev1.EventTypeNormal, string(v1.EventDeleted), "Nothing to delete: %s and its manifest are gone already", key)
		return 0
	case errors.As(err, &left):
		r.Recorder.Eventf(b, corev1.EventTypeWarning, string(v1.EventObjectLeft), "Left %s in storage: %s", key, left.reason)
		return 0
	}
	timeout := r.DeleteTimeout
	if timeout <= 0 {
		timeout = DefaultDeleteTimeout
	}
	if remaining := time.Until(b.DeletionTimestamp.Add(timeout)); remaining > 0 {
		r.Recorder.Eventf(b, corev1.EventTypeWarning, string(v1.EventDeleteFailed), "Deleting %s: %v; trying again for %s", key, err, remaining.Round(time.Second))
		return min(remaining, deleteRetryInterval)
	}
	r.Recorder.Eventf(b, corev1.EventTypeWarning, string(v1.EventObjectLeft),
		"Left %s in storage: the storage failed for longer than the controller's --delete-timeout (%s): %v", key, timeout, err)
	return 0
}

// deleteOwnObject deletes the object at key and its manifest when they are
// this Backup's: the key lies inside the prefix of the Backup's namespace,
// and the manifest beside it names this Backup, this key and the checksum
// the Backup recorded. The object goes first, so that a failure in between
// leaves the manifest that lets the next try prove the same again. A
// leftError says why it leaves them; any other error is the storage's (or
// the API server's) and worth another try.
func (r *Reconciler) deleteOwnObject(ctx context.Context, b *v1.Backup, key string) error {
	var st v1.BackupStorage
	stKey := storageref.Key(b.Spec.Storage.StorageReference, b.Namespace)
	if err := r.Get(ctx, stKey, &st); err != nil {
		if apierrors.IsNotFound(err) {
			return leave("BackupStorage %s is gone", stKey)
		}
		return err
	}
	if !st.AllowsNamespace(b.Namespace) {
		return leave("BackupStorage %s no longer lists namespace %s in spec.allowedNamespaces", stKey, b.Namespace)
	}
	// The prefix as the storage renders it now (spec.namespacePrefix).
	if prefix := st.NamespacePrefix(b.Namespace); pathtemplate.Confine(prefix, key) != nil {
		return leave("the key is not inside %s, the prefix namespace %s may delete under", prefix, b.Namespace)
	}
	backend, err := storageref.Open(ctx, r.Client, &st, r.StorageTimeout)
	if apierrors.IsNotFound(err) {
		return leave("the credentials of BackupStorage %s are gone: %v", stKey, err)
	}
	if err != nil {
		return err
	}
	m, err := backend.ReadManifest(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		if _, err := backend.Stat(ctx, key); errors.Is(err, storage.ErrNotFound) {
			return errGone
		} else if err != nil {
			return err
		}
		return leave("it has no manifest (%s), so nothing proves that this Backup wrote it", stages.ManifestSuffix)
	}
	if err != nil {
		return err
	}
	switch {
	case m.Namespace != b.Namespace || m.Name != b.Name:
		return leave("its manifest names Backup %s/%s, not this one", m.Namespace, m.Name)
	case m.Key != key:
		return leave("its manifest is that of %s", m.Key)
	case m.Storage != "" && m.Storage != st.ID():
		// A manifest from before manifests named their storage passes on the
		// checks above alone.
		return leave("its manifest names BackupStorage %s, not %s", m.Storage, st.ID())
	case b.Status.Checksum != "" && m.Checksum != b.Status.Checksum:
		return leave("its manifest records checksum %s, not the %s this Backup stored: the object was replaced", m.Checksum, b.Status.Checksum)
	}
	for _, k := range []string{key, key + stages.ManifestSuffix} {
		if err := backend.Delete(ctx, k); err != nil {
			return err
		}
	}
	r.Recorder.Eventf(b, corev1.EventTypeNormal, string(v1.EventDeleted), "Deleted %s and its manifest from %s", key, backend)
	return nil
}
