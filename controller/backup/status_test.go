package backup

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/runstatus"
)

func TestSetStatus(t *testing.T) {
	dumped := map[string]map[string]string{compiler.StepDump: {compiler.OutputKey: "apps/nightly/x.zst", compiler.OutputSize: "1536", compiler.OutputChecksum: "sha256:ab"}}
	for _, tc := range []struct {
		name      string
		run       *runstatus.Run
		succeeded string                 // the Succeeded condition's message
		verified  metav1.ConditionStatus // "" when there is no Verified condition
		reason    v1.ConditionReason
	}{
		{"verified", &runstatus.Run{Phase: v1.PhaseSucceeded, Outputs: dumped, Stages: []v1.StageStatus{{Name: "dump", Phase: "Succeeded"}, {Name: "verify", Phase: "Succeeded"}}},
			"1.5KiB stored at apps/nightly/x.zst", metav1.ConditionTrue, v1.ReasonVerified},
		{"verify failed", &runstatus.Run{Phase: v1.PhaseFailed, Outputs: dumped, Message: "step verify failed: mismatch", Stages: []v1.StageStatus{{Name: "verify", Phase: "Failed", Message: "mismatch"}}},
			"step verify failed: mismatch", metav1.ConditionFalse, v1.ReasonVerifyFailed},
		{"verify omitted", &runstatus.Run{Phase: v1.PhaseFailed, Message: "step dump failed: x", Stages: []v1.StageStatus{{Name: "dump", Phase: "Failed"}, {Name: "verify", Phase: "Omitted"}}},
			"step dump failed: x", metav1.ConditionFalse, v1.ReasonVerifySkipped},
		{"no verify step", &runstatus.Run{Phase: v1.PhaseSucceeded, Outputs: dumped, Stages: []v1.StageStatus{{Name: "dump", Phase: "Succeeded"}}},
			"1.5KiB stored at apps/nightly/x.zst", metav1.ConditionFalse, v1.ReasonVerifySkipped},
		{"verify running", &runstatus.Run{Phase: v1.PhaseRunning, Outputs: dumped, Stages: []v1.StageStatus{{Name: "dump", Phase: "Succeeded"}, {Name: "verify", Phase: "Running"}}},
			"running verify", metav1.ConditionUnknown, v1.ReasonRunning},
		{"verify not reached", &runstatus.Run{Phase: v1.PhaseRunning, Stages: []v1.StageStatus{{Name: "dump", Phase: "Running"}}},
			"running dump", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Generation: 1}}
			b.Spec.Storage.Name = "minio"
			setStatus(b, "nightly", tc.run, "backups")
			if c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionSucceeded); c == nil || c.Message != tc.succeeded {
				t.Errorf("Succeeded %+v, want message %q", c, tc.succeeded)
			}
			c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionVerified)
			switch {
			case tc.verified == "" && c != nil:
				t.Errorf("Verified %+v before the verify step exists", c)
			case tc.verified != "" && (c == nil || c.Status != tc.verified || v1.ConditionReason(c.Reason) != tc.reason):
				t.Errorf("Verified %+v, want %s %s", c, tc.verified, tc.reason)
			}
			if tc.run.Outputs != nil {
				loc := b.Status.Location
				if loc == nil || *loc != (v1.ObjectLocation{Storage: "minio", Bucket: "backups", Key: "apps/nightly/x.zst"}) || b.Status.DisplaySize != "1.5KiB" || b.Status.Checksum != "sha256:ab" {
					t.Errorf("location %+v, size %q, checksum %q", loc, b.Status.DisplaySize, b.Status.Checksum)
				}
			}
		})
	}
}

// The Rotated Event names the counts and as many deleted keys as fit.
func TestRotatedMessageIsBounded(t *testing.T) {
	r := &v1.RotationStatus{Kept: 7, Deleted: 500}
	for i := range v1.MaxRotationKeys {
		r.DeletedKeys = append(r.DeletedKeys, fmt.Sprintf("apps/nightly/%03d-%s.bin", i, strings.Repeat("k", 100)))
	}
	msg := rotatedMessage(r)
	if len(msg) > maxEventMessage || !strings.HasPrefix(msg, "Retention kept 7 and deleted 500 of the series: apps/nightly/000-") || !strings.HasSuffix(msg, " more") {
		t.Errorf("%d bytes: %s", len(msg), msg)
	}
	r = &v1.RotationStatus{Kept: 2, Deleted: 2, DeletedKeys: []string{"a", "b"}}
	if msg := rotatedMessage(r); msg != "Retention kept 2 and deleted 2 of the series: a, b" {
		t.Error(msg)
	}
	if msg := rotatedMessage(&v1.RotationStatus{Kept: 1}); msg != "Retention kept 1 and deleted 0 of the series" {
		t.Error(msg)
	}
}
