package schedule

import (
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

var now = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)

func ago(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }

func run(name string, phase v1.RunPhase, completed *metav1.Time, message string) v1.Backup {
	b := v1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: *ago(5 * time.Hour)}}
	b.Status.Phase, b.Status.CompletedAt, b.Status.Message = phase, completed, message
	return b
}

func hourly() *v1.BackupSchedule {
	s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "hourly", Generation: 4, CreationTimestamp: *ago(48 * time.Hour)}}
	s.Spec.Schedule, s.Spec.MissingAfterIntervals = "0 * * * *", 2
	return s
}

func TestComputeStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		schedule func() *v1.BackupSchedule
		backups  []v1.Backup // newest first
		// wanted
		missing     metav1.ConditionStatus
		reason      v1.ConditionReason
		message     string
		next        bool
		requeue     time.Duration
		active      []string
		lastSuccess *metav1.Time
		lastFailed  *metav1.Time
	}{{
		name:     "recent success, one running",
		schedule: hourly,
		backups:  []v1.Backup{run("c", v1.PhaseRunning, nil, ""), run("b", v1.PhaseSucceeded, ago(20*time.Minute), ""), run("a", v1.PhaseFailed, nil, "x")},
		missing:  metav1.ConditionFalse, reason: v1.ReasonBackupRecent,
		next: true, requeue: 30*time.Minute + time.Second, active: []string{"c"},
		lastSuccess: ago(20 * time.Minute), lastFailed: ago(5 * time.Hour), // a failed run without completedAt counts from its creation
	}, {
		// The requeue comes before the next run when the last success
		// grows too old first.
		name:     "success about to be too old",
		schedule: hourly,
		backups:  []v1.Backup{run("b", v1.PhaseSucceeded, ago(110*time.Minute), "")},
		missing:  metav1.ConditionFalse, reason: v1.ReasonBackupRecent,
		next: true, requeue: 10*time.Minute + time.Second, lastSuccess: ago(110 * time.Minute),
	}, {
		name:     "last run failed",
		schedule: hourly,
		backups:  []v1.Backup{run("b", v1.PhaseFailed, ago(time.Minute), "step dump failed: refused"), run("a", v1.PhaseSucceeded, ago(61*time.Minute), "")},
		missing:  metav1.ConditionFalse, reason: v1.ReasonBackupRecent, message: "the last backup b failed: step dump failed: refused",
		next: true, requeue: 30*time.Minute + time.Second, lastSuccess: ago(61 * time.Minute), lastFailed: ago(time.Minute),
	}, {
		name:     "no success for more than two intervals",
		schedule: hourly,
		backups:  []v1.Backup{run("a", v1.PhaseSucceeded, ago(3*time.Hour), "")},
		missing:  metav1.ConditionTrue, reason: v1.ReasonBackupMissing, message: "no successful backup for 3h0m0s, more than 2 schedule intervals (1h0m0s)",
		next: true, requeue: 30*time.Minute + time.Second, lastSuccess: ago(3 * time.Hour),
	}, {
		name:     "never succeeded, created long ago",
		schedule: hourly,
		missing:  metav1.ConditionTrue, reason: v1.ReasonBackupMissing, message: "no successful backup for 48h0m0s, more than 2 schedule intervals (1h0m0s)",
		next: true, requeue: 30*time.Minute + time.Second,
	}, {
		name:     "suspended",
		schedule: func() *v1.BackupSchedule { s := hourly(); s.Spec.Suspend = true; return s },
		missing:  metav1.ConditionFalse, reason: v1.ReasonSuspended,
		requeue: 30*time.Minute + time.Second,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.schedule()
			before := s.DeepCopy()
			got := computeStatus(s, nil, tc.backups, now)
			st := got.status
			if st.ObservedGeneration != 4 || st.Message != tc.message || (st.NextScheduleTime != nil) != tc.next || got.requeue != tc.requeue || got.interval != time.Hour {
				t.Errorf("generation %d, message %q, next %v, requeue %v, interval %v", st.ObservedGeneration, st.Message, st.NextScheduleTime, got.requeue, got.interval)
			}
			if tc.next && !st.NextScheduleTime.Equal(&metav1.Time{Time: now.Add(30 * time.Minute)}) {
				t.Errorf("next run %v, want 11:00", st.NextScheduleTime)
			}
			if strings.Join(st.Active, ",") != strings.Join(tc.active, ",") || len(st.RecentRuns) != len(tc.backups) {
				t.Errorf("active %v, recent runs %v", st.Active, st.RecentRuns)
			}
			if !st.LastSuccessfulTime.Equal(tc.lastSuccess) || !st.LastFailedTime.Equal(tc.lastFailed) {
				t.Errorf("last success %v, last failure %v", st.LastSuccessfulTime, st.LastFailedTime)
			}
			c := meta.FindStatusCondition(st.Conditions, v1.ConditionBackupMissing)
			if c == nil || c.Status != tc.missing || v1.ConditionReason(c.Reason) != tc.reason || c.ObservedGeneration != 4 {
				t.Errorf("BackupMissing %+v", c)
			}
			if !equality.Semantic.DeepEqual(before, s) {
				t.Error("computeStatus changed the schedule it read")
			}
		})
	}
}

// The BackupMissing message holds an age: it is kept while the state stays,
// so that the status does not change on every reconcile.
func TestComputeStatusKeepsTheAgeWhileTheStateStays(t *testing.T) {
	s := hourly()
	backups := []v1.Backup{run("a", v1.PhaseSucceeded, ago(20*time.Minute), "")}
	first := computeStatus(s, nil, backups, now)
	s.Status = first.status
	second := computeStatus(s, nil, backups, now.Add(5*time.Minute))
	if a, b := meta.FindStatusCondition(first.status.Conditions, v1.ConditionBackupMissing), meta.FindStatusCondition(second.status.Conditions, v1.ConditionBackupMissing); a.Message != b.Message {
		t.Errorf("the message changed from %q to %q", a.Message, b.Message)
	}
}

func TestComputeStatusLastScheduleTime(t *testing.T) {
	cron := &wfv1.CronWorkflow{}
	cron.Status.LastScheduledTime = ago(30 * time.Minute)
	if got := computeStatus(hourly(), cron, nil, now).status.LastScheduleTime; !got.Equal(cron.Status.LastScheduledTime) {
		t.Errorf("lastScheduleTime %v, want the CronWorkflow's", got)
	}
}

func TestComputeStatusInvalidSchedule(t *testing.T) {
	s := hourly()
	s.Spec.Timezone = "Mars/Olympus"
	s.Status.NextScheduleTime = ago(0)
	got := computeStatus(s, nil, nil, now)
	if got.status.NextScheduleTime != nil || !strings.Contains(got.status.Message, "Mars/Olympus") || got.requeue != 0 || got.interval != 0 {
		t.Errorf("status %+v, requeue %v, interval %v", got.status, got.requeue, got.interval)
	}
}
