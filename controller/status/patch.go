// Package status writes the status subresource of backflow's resources: the
// one way every reconciler does it.
package status

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Patch applies mutate to obj and merge-patches obj's status subresource
// with what changed, from a copy taken before mutate. When mutate changed
// nothing it writes nothing, so that a reconcile that learns nothing new does
// not touch the resource (and does not trigger another reconcile). It says
// whether it wrote.
func Patch(ctx context.Context, c client.Client, obj client.Object, mutate func()) (bool, error) {
	base := obj.DeepCopyObject().(client.Object)
	mutate()
	if equality.Semantic.DeepEqual(base, obj) {
		return false, nil
	}
	return true, c.Status().Patch(ctx, obj, client.MergeFrom(base))
}
