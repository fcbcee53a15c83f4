package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/retention"
	"github.com/backflow-dev/backflow/test/argotest"
)

// What the rotate step decided reaches the Backup's status and a Rotated
// Event: the counts and the deleted keys, from the report the stage writes
// as its output parameter.
func TestRotationReachesStatusAndEvent(t *testing.T) {
	ns := newNamespace(t)
	base := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	var backups []retention.Backup
	for day := range 30 {
		at := base.AddDate(0, 0, day)
		backups = append(backups, retention.Backup{Key: fmt.Sprintf("%s/rotated/%s.bin.zst", ns, at.Format("20060102T150405Z")), Time: at, Verified: true})
	}
	decisions := retention.Decide(backups, retention.Rules{KeepDaily: ptr(3)}, base.AddDate(0, 0, 30), time.UTC)
	res := &stages.RotateResult{Decisions: decisions, Kept: 3, Deleted: 27}
	report, err := json.Marshal(res.Report())
	if err != nil {
		t.Fatal(err)
	}
	stack.Driver.Set("rotated", compiler.StepRotate, argotest.Outcome{Outputs: map[string]string{compiler.OutputRotation: string(report)}})

	spec := backupSpec()
	spec.Retention = &v1.Retention{KeepDaily: ptr(int32(3))}
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rotated"}, Spec: spec}
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "rotated", v1.PhaseSucceeded)
	r := b.Status.Rotation
	if r == nil || r.Kept != 3 || r.Deleted != 27 || len(r.DeletedKeys) != v1.MaxRotationKeys {
		t.Fatalf("status.rotation %+v", r)
	}
	// The oldest backups went: the first listed is one of them.
	if r.DeletedKeys[0] != backups[26].Key {
		t.Errorf("deleted keys %v, want %s first", r.DeletedKeys, backups[26].Key)
	}
	argotest.WaitFor(t, "a Rotated event", 10*time.Second, func() (bool, string) {
		e := events(t, ns, "rotated")["Rotated"]
		return strings.HasPrefix(e, "Normal: Retention kept 3 and deleted 27 of the series: "+backups[26].Key) && strings.HasSuffix(e, " more"), e
	})
}
