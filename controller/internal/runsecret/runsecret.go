// Package runsecret holds what the Secrets backflow writes for one Workflow
// (the storage credentials of storageref, the notification targets of
// notifyref) have in common: which of them backflow wrote, and their
// deletion once the run is over.
package runsecret

import (
	"context"
	"slices"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Written says whether backflow wrote secret for wf: it carries label, which
// backflow sets on the Secrets of that kind, and wf owns it. A Secret of the
// same name that anyone else made is neither read as backflow's nor deleted.
func Written(secret *corev1.Secret, wf *wfv1.Workflow, label string) bool {
	if _, ok := secret.Labels[label]; !ok {
		return false
	}
	return slices.ContainsFunc(secret.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == wf.UID })
}

// Delete deletes the Secret name of wf if backflow wrote it (Written with
// label), and only the one it read (a UID precondition).
func Delete(ctx context.Context, c client.Client, wf *wfv1.Workflow, name, label string) error {
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: wf.Namespace, Name: name}, &secret); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !Written(&secret, wf, label) {
		return nil
	}
	return client.IgnoreNotFound(c.Delete(ctx, &secret, client.Preconditions{UID: &secret.UID}))
}
