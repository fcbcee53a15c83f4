package backup

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/internal/fakeclient"
)

// A change to a storage reaches the Backups that reference it, in any
// namespace, and that have no Workflow yet; no others.
func TestBackupsWaitingFor(t *testing.T) {
	backup := func(ns, name string, ref v1.StorageReference, workflow string) *v1.Backup {
		b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		b.Spec.Storage.StorageReference = ref
		b.Status.WorkflowName = workflow
		return b
	}
	c := fakeclient.NewBuilder().WithIndex(&v1.Backup{}, StorageIndex, storageOf).WithObjects(
		backup("apps", "cross", v1.StorageReference{Name: "minio", Namespace: "store"}, ""),
		backup("store", "local", v1.StorageReference{Name: "minio"}, ""),
		backup("apps", "same-name-own-namespace", v1.StorageReference{Name: "minio"}, ""),
		backup("store", "started", v1.StorageReference{Name: "minio"}, "started"),
		backup("store", "other-storage", v1.StorageReference{Name: "other"}, ""),
	).Build()
	r := &Reconciler{Client: c}
	storage := &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "minio"}}
	got := fakeclient.RequestNames(r.backupsWaitingFor(context.Background(), storage))
	if want := []string{"apps/cross", "store/local"}; !slices.Equal(got, want) {
		t.Errorf("enqueued %v, want %v", got, want)
	}
}
