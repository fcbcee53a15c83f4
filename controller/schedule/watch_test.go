package schedule

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/internal/fakeclient"
)

// A change to a storage reaches the schedules whose template references it,
// in any namespace; no others.
func TestSchedulesUsing(t *testing.T) {
	schedule := func(ns, name string, ref v1.StorageReference) *v1.BackupSchedule {
		s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		s.Spec.Template.Spec.Storage.StorageReference = ref
		return s
	}
	c := fakeclient.NewBuilder().WithIndex(&v1.BackupSchedule{}, StorageIndex, storageOf).WithObjects(
		schedule("apps", "cross", v1.StorageReference{Name: "minio", Namespace: "store"}),
		schedule("store", "local", v1.StorageReference{Name: "minio"}),
		schedule("apps", "same-name-own-namespace", v1.StorageReference{Name: "minio"}),
		schedule("store", "other-storage", v1.StorageReference{Name: "other"}),
	).Build()
	r := &Reconciler{Client: c}
	got := fakeclient.RequestNames(r.schedulesUsing(context.Background(), &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "minio"}}))
	if want := []string{"apps/cross", "store/local"}; !slices.Equal(got, want) {
		t.Errorf("enqueued %v, want %v", got, want)
	}
}
