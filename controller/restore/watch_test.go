package restore

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/internal/fakeclient"
)

// A change to a Backup reaches the Restores without a Workflow in its
// namespace that restore from it or from its schedule; no others.
func TestWaitingRestores(t *testing.T) {
	restore := func(ns, name string, from v1.RestoreSource, workflow string) *v1.Restore {
		rs := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.RestoreSpec{From: from}}
		rs.Status.WorkflowName = workflow
		return rs
	}
	nightly := v1.RestoreSource{BackupRef: &v1.LocalObjectReference{Name: "nightly-1"}}
	hourly := v1.RestoreSource{ScheduleRef: &v1.LocalObjectReference{Name: "hourly"}}
	object := v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: "minio"}, Key: "apps/x"}}
	c := fakeclient.NewBuilder().WithIndex(&v1.Restore{}, BackupIndex, sourceOf).WithObjects(
		restore("apps", "from-backup", nightly, ""),
		restore("apps", "from-schedule", hourly, ""),
		restore("apps", "from-object", object, ""),
		restore("apps", "started", nightly, "started"),
		restore("other", "other-namespace", nightly, ""),
		restore("apps", "other-backup", v1.RestoreSource{BackupRef: &v1.LocalObjectReference{Name: "weekly"}}, ""),
	).Build()
	r := &Reconciler{Client: c}
	for _, tc := range []struct {
		name   string
		backup *v1.Backup
		want   []string
	}{
		{"one-shot", &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "nightly-1"}}, []string{"apps/from-backup"}},
		{"scheduled", &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "nightly-1", Labels: map[string]string{v1.LabelSchedule: "hourly"}}},
			[]string{"apps/from-backup", "apps/from-schedule"}},
		{"unreferenced", &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "monthly"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fakeclient.RequestNames(r.waitingRestores(context.Background(), tc.backup))
			if !slices.Equal(got, tc.want) {
				t.Errorf("enqueued %v, want %v", got, tc.want)
			}
		})
	}
}
