package schedule

import (
	"context"
	"fmt"
	"sort"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/robfig/cron/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/metrics"
)

// adoptWorkflows gives every Workflow of the schedule a Backup of the same
// name, so that scheduled backups appear in `kubectl get backups` like
// one-shot ones; the Backup reconciler mirrors the Workflow into it. Only
// runs of the schedule (IsRunOf; cron is its CronWorkflow, nil when there is
// none) are adopted, not every Workflow that carries its label.
func (r *Reconciler) adoptWorkflows(ctx context.Context, s *v1.BackupSchedule, cron *wfv1.CronWorkflow) error {
	var wfs wfv1.WorkflowList
	if err := r.List(ctx, &wfs, client.InNamespace(s.Namespace), client.MatchingLabels{v1.LabelSchedule: s.Name}); err != nil {
		return err
	}
	backups, err := r.runs(ctx, s)
	if err != nil {
		return err
	}
	adopted := map[string]bool{}
	for _, b := range backups {
		adopted[b.Name] = true
	}
	for i := range wfs.Items {
		wf := &wfs.Items[i]
		if adopted[wf.Name] || !wf.DeletionTimestamp.IsZero() || !IsRunOf(wf, s.UID, cron) {
			continue
		}
		if gone, err := r.workflowGone(ctx, wf); err != nil {
			return err
		} else if gone {
			continue
		}
		b := &v1.Backup{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: s.Namespace, Name: wf.Name,
				Labels:      map[string]string{},
				Annotations: map[string]string{},
			},
			Spec: *s.Spec.Template.Spec.DeepCopy(),
		}
		for k, v := range s.Spec.Template.Metadata.Labels {
			b.Labels[k] = v
		}
		for k, v := range s.Spec.Template.Metadata.Annotations {
			b.Annotations[k] = v
		}
		b.Labels[v1.LabelSchedule] = s.Name
		if err := controllerutil.SetControllerReference(s, b, r.Scheme()); err != nil {
			return err
		}
		if err := r.Create(ctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Backup %s for Workflow %s: %w", b.Name, wf.Name, err)
		}
	}
	return nil
}

// workflowGone says whether a Workflow the cache shows is gone or going on
// the API server: the history limit deletes a run's Workflow and then its
// Backup, and a cache that has seen only the second would otherwise give
// the pruned run its Backup again.
func (r *Reconciler) workflowGone(ctx context.Context, wf *wfv1.Workflow) (bool, error) {
	var live wfv1.Workflow
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(wf), &live); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
	return live.UID != wf.UID || !live.DeletionTimestamp.IsZero(), nil
}

// applyHistoryLimits deletes the oldest finished Backups of the schedule
// beyond its history limits, with their Workflows, and returns the rest.
// Their stored objects stay, whatever the template's deletionPolicy says:
// retention removes those.
func (r *Reconciler) applyHistoryLimits(ctx context.Context, s *v1.BackupSchedule) ([]v1.Backup, error) {
	backups, err := r.runs(ctx, s)
	if err != nil {
		return nil, err
	}
	sort.Slice(backups, func(i, j int) bool { return newer(&backups[i], &backups[j]) })
	limits := map[v1.RunPhase]int{v1.PhaseSucceeded: int(valueOr(s.Spec.SuccessfulBackupsHistoryLimit, 3)), v1.PhaseFailed: int(valueOr(s.Spec.FailedBackupsHistoryLimit, 1))}
	seen := map[v1.RunPhase]int{}
	var kept []v1.Backup
	for i := range backups {
		b := &backups[i]
		if !b.DeletionTimestamp.IsZero() {
			continue
		}
		if limit, ok := limits[b.Status.Phase]; ok {
			seen[b.Status.Phase]++
			if seen[b.Status.Phase] > limit {
				if err := r.deleteRun(ctx, s, b); err != nil {
					return nil, err
				}
				continue
			}
		}
		kept = append(kept, *b)
	}
	return kept, nil
}

// deleteRun deletes a Backup of the schedule and the Workflow that ran it;
// the Workflow first, so that it is not adopted again. The Backup is first
// annotated as pruned (AnnotationPrunedBy), and the Backup finalizer keeps
// the stored object of an annotated Backup. The annotation is written with
// the Backup's resourceVersion and deleted by UID, so the deletion is of
// the annotated Backup: unlike taking the finalizer off, nothing the Backup
// reconciler does in between (such as adding its finalizer again) can undo
// it.
func (r *Reconciler) deleteRun(ctx context.Context, s *v1.BackupSchedule, b *v1.Backup) error {
	if b.Annotations[v1.AnnotationPrunedBy] != s.Name {
		patch := client.MergeFromWithOptions(b.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if b.Annotations == nil {
			b.Annotations = map[string]string{}
		}
		b.Annotations[v1.AnnotationPrunedBy] = s.Name
		if err := r.Patch(ctx, b, patch); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	wf := &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: b.Name}}
	if err := r.Delete(ctx, wf, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return err
	}
	return client.IgnoreNotFound(r.Delete(ctx, b, client.Preconditions{UID: &b.UID}))
}

// runs are the schedule's Backups, as the cache has them.
func (r *Reconciler) runs(ctx context.Context, s *v1.BackupSchedule) ([]v1.Backup, error) {
	var list v1.BackupList
	if err := r.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabels{v1.LabelSchedule: s.Name}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// lastVerifiedRawSize is the raw size of the newest verified run (by when
// it completed), which the next dump's progress counts against; 0 when no
// run the history limits kept is verified.
func lastVerifiedRawSize(backups []v1.Backup) int64 {
	var newest *v1.Backup
	for i := range backups {
		b := &backups[i]
		if b.Status.RawSize == nil || b.Status.CompletedAt == nil || !meta.IsStatusConditionTrue(b.Status.Conditions, v1.ConditionVerified) {
			continue
		}
		if newest == nil || b.Status.CompletedAt.After(newest.Status.CompletedAt.Time) {
			newest = b
		}
	}
	if newest == nil {
		return 0
	}
	return *newest.Status.RawSize
}

func newer(a, b *v1.Backup) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.After(b.CreationTimestamp.Time)
	}
	return a.Name > b.Name
}

// recentRunsShown is how many runs status.recentRuns lists.
const recentRunsShown = 10

// computedStatus is what computeStatus works out.
type computedStatus struct {
	status v1.BackupScheduleStatus
	// requeue is when to look again: at the next run, or when the last
	// backup becomes too old.
	requeue time.Duration
	// interval is the time between two runs; zero when the schedule does
	// not parse.
	interval time.Duration
}

// computeStatus works out the schedule's status from its current status,
// its CronWorkflow and its Backups (newest first) at time now.
func computeStatus(s *v1.BackupSchedule, cronWf *wfv1.CronWorkflow, backups []v1.Backup, now time.Time) computedStatus {
	st := s.Status.DeepCopy()
	st.ObservedGeneration = s.Generation
	if cronWf != nil && cronWf.Status.LastScheduledTime != nil {
		st.LastScheduleTime = cronWf.Status.LastScheduledTime
	}
	st.Active, st.RecentRuns = nil, nil
	for _, b := range backups {
		switch b.Status.Phase {
		case v1.PhaseSucceeded:
			if t := b.Status.CompletedAt; t != nil && (st.LastSuccessfulTime == nil || t.After(st.LastSuccessfulTime.Time)) {
				st.LastSuccessfulTime = t
			}
		case v1.PhaseFailed:
			t := b.Status.CompletedAt
			if t == nil {
				t = &b.CreationTimestamp
			}
			if st.LastFailedTime == nil || t.After(st.LastFailedTime.Time) {
				st.LastFailedTime = t
			}
		default:
			st.Active = append(st.Active, b.Name)
		}
		if len(st.RecentRuns) < recentRunsShown {
			st.RecentRuns = append(st.RecentRuns, v1.ScheduledRun{
				Name: b.Name, Phase: b.Status.Phase, Size: b.Status.Size, Checksum: b.Status.Checksum,
				StartedAt: b.Status.StartedAt, CompletedAt: b.Status.CompletedAt,
			})
		}
	}
	sched, err := parseSchedule(s.Spec.Schedule, s.Spec.Timezone)
	if err != nil {
		st.NextScheduleTime = nil
		st.Message = err.Error()
		return computedStatus{status: *st}
	}
	next := sched.Next(now)
	interval := sched.Next(next).Sub(next)
	requeue := next.Sub(now)
	if s.Spec.Suspend {
		st.NextScheduleTime = nil
	} else {
		st.NextScheduleTime = &metav1.Time{Time: next}
	}

	// A schedule misses its backup when the last success (or, without one,
	// the schedule's creation) is older than missingAfterIntervals intervals.
	threshold := time.Duration(max(s.Spec.MissingAfterIntervals, 1)) * interval
	since := s.CreationTimestamp.Time
	if st.LastSuccessfulTime != nil {
		since = st.LastSuccessfulTime.Time
	}
	missing := metav1.Condition{Type: v1.ConditionBackupMissing, ObservedGeneration: s.Generation}
	switch age := now.Sub(since); {
	case s.Spec.Suspend:
		missing.Status, missing.Reason, missing.Message = metav1.ConditionFalse, string(v1.ReasonSuspended), "the schedule is suspended"
	case age > threshold:
		missing.Status, missing.Reason = metav1.ConditionTrue, string(v1.ReasonBackupMissing)
		missing.Message = fmt.Sprintf("no successful backup for %s, more than %d schedule intervals (%s)", age.Round(time.Second), max(s.Spec.MissingAfterIntervals, 1), interval)
	default:
		missing.Status, missing.Reason = metav1.ConditionFalse, string(v1.ReasonBackupRecent)
		missing.Message = fmt.Sprintf("last successful backup %s ago", age.Round(time.Second))
		requeue = min(requeue, threshold-age)
	}
	// The message holds an age; update it only when the state changes, or the
	// status would change on every reconcile.
	if c := meta.FindStatusCondition(st.Conditions, v1.ConditionBackupMissing); c == nil || c.Status != missing.Status || c.Reason != missing.Reason {
		meta.SetStatusCondition(&st.Conditions, missing)
	}

	switch {
	case len(st.RecentRuns) > 0 && st.RecentRuns[0].Phase == v1.PhaseFailed:
		st.Message = fmt.Sprintf("the last backup %s failed", st.RecentRuns[0].Name)
		for _, b := range backups {
			if b.Name == st.RecentRuns[0].Name && b.Status.Message != "" {
				st.Message += ": " + b.Status.Message
			}
		}
	case missing.Status == metav1.ConditionTrue:
		st.Message = missing.Message
	default:
		st.Message = ""
	}
	return computedStatus{status: *st, requeue: max(requeue, time.Second) + time.Second, interval: interval}
}

// recordMetrics sets the schedule's series from its status; interval is
// zero when the schedule does not parse.
func recordMetrics(s *v1.BackupSchedule, interval time.Duration) {
	labels := []string{s.Namespace, s.Name}
	if t := s.Status.LastSuccessfulTime; t != nil {
		metrics.ScheduleLastSuccess.WithLabelValues(labels...).Set(float64(t.Unix()))
	}
	if interval == 0 {
		return
	}
	metrics.ScheduleIntervalSeconds.WithLabelValues(labels...).Set(interval.Seconds())
	if t := s.Status.NextScheduleTime; t != nil {
		metrics.ScheduleNextRun.WithLabelValues(labels...).Set(float64(t.Unix()))
	} else {
		metrics.ScheduleNextRun.DeleteLabelValues(labels...)
	}
}

// parseSchedule parses a cron schedule as Argo does, in its time zone.
func parseSchedule(spec, timezone string) (cron.Schedule, error) {
	if timezone != "" {
		if _, err := time.LoadLocation(timezone); err != nil {
			return nil, fmt.Errorf("unknown time zone %q", timezone)
		}
		spec = "CRON_TZ=" + timezone + " " + spec
	}
	return cron.ParseStandard(spec)
}

func valueOr(v *int32, def int32) int32 {
	if v == nil {
		return def
	}
	return *v
}
