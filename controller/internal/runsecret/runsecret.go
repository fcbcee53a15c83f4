// Package runsecret holds what the Secrets backflow writes for one Workflow
// (the storage credentials of storageref, the notification targets of
// notifyref) have in common: which of them backflow wrote, their deletion
// once the run is over, and the watch that reconciles a run when one of
// them reaches the controller's cache.
package runsecret

import (
	"context"
	"slices"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Label marks every run Secret backflow writes, of either kind, beside the
// label of its kind; Labels gives both. Arrived keys on it. Run Secrets
// written by a version before it (say, an old leader's during an upgrade)
// lack it, so their arrival reconciles nothing; Written still knows them by
// their kind's label, so the next reconcile of their run deletes them (every
// controller start reconciles every run), and the garbage collector
// deletes them with their Workflow in any case.
const Label = "backflow.dev/run-secret"

// Labels are the labels of a run Secret whose kind is marked by kindLabel
// with value.
func Labels(kindLabel, value string) map[string]string {
	return map[string]string{Label: "true", kindLabel: value}
}

// Written says whether backflow wrote secret (a Secret, or only its
// metadata) for wf: it carries label, which backflow sets on the Secrets of
// that kind, and wf owns it. A Secret of the same name that anyone else
// made is neither read as backflow's nor deleted.
func Written(secret metav1.Object, wf *wfv1.Workflow, label string) bool {
	if _, ok := secret.GetLabels()[label]; !ok {
		return false
	}
	return slices.ContainsFunc(secret.GetOwnerReferences(), func(o metav1.OwnerReference) bool { return o.UID == wf.UID })
}

// Delete deletes the Secret name of wf if backflow wrote it (Written with
// label), and only the one it saw (a UID precondition). It reads the
// Secret's metadata from secrets, the controller's cache of Secret metadata
// (see the manager), so that the reconcile of a finished run, which every
// restart repeats for every run, asks the API server nothing when the
// Secret is gone.
//
// A cache behind the API server is harmless. A Secret it still holds but
// that is gone makes the Delete find nothing; one replaced by another of
// that name fails the precondition, and the reconcile is retried once the
// cache has caught up. A Secret it has not seen yet (written moments before
// the run finished) is not deleted now, but its arrival in the cache
// reconciles the run again (Arrived), and that reconcile deletes it; and
// the Workflow owns it, so the garbage collector deletes it with the
// Workflow in any case.
func Delete(ctx context.Context, secrets client.Reader, c client.Writer, wf *wfv1.Workflow, name, label string) error {
	seen := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
	if err := secrets.Get(ctx, client.ObjectKey{Namespace: wf.Namespace, Name: name}, seen); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !Written(seen, wf, label) {
		return nil
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: seen.Namespace, Name: seen.Name}}
	return client.IgnoreNotFound(c.Delete(ctx, secret, client.Preconditions{UID: &seen.UID}))
}

// Arrived passes the creation events of run Secrets (Label): the moment
// one reaches the cache, which Delete reads. Their updates (renewals) and
// deletions change nothing a reconcile would do.
func Arrived() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { _, ok := e.Object.GetLabels()[Label]; return ok },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// RunOf is the run a run Secret was written for: the Workflow that owns it,
// whose name is that of the Backup or Restore it runs
// (compiler.WorkflowName).
func RunOf(_ context.Context, secret client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, o := range secret.GetOwnerReferences() {
		if o.Kind == workflow.WorkflowKind && o.APIVersion == wfv1.SchemeGroupVersion.String() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: secret.GetNamespace(), Name: o.Name}})
		}
	}
	return reqs
}
