package status

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/internal/fakeclient"
	"github.com/backflow-dev/backflow/controller/storageref"
)

func events(r *record.FakeRecorder) []string {
	var out []string
	for len(r.Events) > 0 {
		out = append(out, <-r.Events)
	}
	return out
}

// Both kinds of run report a storage problem and a failure the same way:
// the status once, an Event when it is news.
func TestRunReports(t *testing.T) {
	for _, run := range []Run{
		&v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "nightly", Generation: 1}},
		&v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "back", Generation: 1}},
	} {
		t.Run(fmt.Sprintf("%T", run), func(t *testing.T) {
			c := fakeclient.NewBuilder().WithObjects(run).WithStatusSubresource(run).Build()
			recorder := record.NewFakeRecorder(10)
			ctx := context.Background()

			forbidden := fmt.Errorf("%w: BackupStorage store/minio does not list namespace apps", storageref.ErrForbidden)
			for range 2 {
				res, err := StorageProblem(ctx, c, recorder, run, forbidden)
				if err != nil || res.RequeueAfter != storageref.RetryAfter {
					t.Fatalf("StorageProblem: %+v, %v", res, err)
				}
			}
			cond := meta.FindStatusCondition(run.GetRunStatus().Conditions, v1.ConditionSucceeded)
			if run.GetRunStatus().Phase != v1.PhasePending || cond == nil || v1.ConditionReason(cond.Reason) != v1.ReasonStorageForbidden {
				t.Errorf("status %+v", run.GetRunStatus())
			}
			if got := events(recorder); len(got) != 1 || got[0] != "Warning StorageForbidden "+forbidden.Error() {
				t.Errorf("events %q, want one StorageForbidden", got)
			}
			if _, err := StorageProblem(ctx, c, recorder, run, fmt.Errorf("connection refused")); err == nil {
				t.Error("another error is not passed on")
			}

			for i, wantFirst := range []bool{true, false} {
				first, err := Fail(ctx, c, recorder, run, v1.ReasonWorkflowMissing, "the Workflow was deleted")
				if err != nil || first != wantFirst {
					t.Errorf("Fail #%d: first %v, %v", i+1, first, err)
				}
			}
			if got := events(recorder); len(got) != 1 || got[0] != "Warning Failed the Workflow was deleted" {
				t.Errorf("events %q, want one Failed", got)
			}
			if st := run.GetRunStatus(); st.Phase != v1.PhaseFailed || st.CompletedAt == nil {
				t.Errorf("status %+v", st)
			}
		})
	}
}
