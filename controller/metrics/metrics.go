// Package metrics defines backflow's Prometheus metrics, served on the
// controller-runtime metrics endpoint beside its reconcile metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Labels of the series: the prometheus rules of the chart and the dashboards
// select by them.
const (
	LabelNamespace = "namespace"
	LabelSchedule  = "schedule"
	LabelSeries    = "series"
	LabelStatus    = "status"
)

var (
	// BackupTotal counts finished backups.
	BackupTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backflow_backup_total",
		Help: "Backups that finished, by namespace, schedule (empty for one-shot backups) and status (succeeded or failed).",
	}, []string{LabelNamespace, LabelSchedule, LabelStatus})
	// BackupDuration observes how long backups ran.
	BackupDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "backflow_backup_duration_seconds",
		Help:    "Duration of finished backups, from the Workflow's start to its end.",
		Buckets: prometheus.ExponentialBuckets(5, 2, 14), // 5 s to ~11 h
	}, []string{LabelNamespace, LabelSchedule, LabelStatus})
	// BackupSize is the stored size of the latest successful backup.
	BackupSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "backflow_backup_size_bytes",
		Help: "Stored (compressed, encrypted) size of the latest successful backup of a series.",
	}, []string{LabelNamespace, LabelSchedule, LabelSeries})
	// ScheduleLastSuccess is when a schedule last produced a good backup.
	ScheduleLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "backflow_schedule_last_success_timestamp_seconds",
		Help: "Unix time of the last successful backup of a BackupSchedule.",
	}, []string{LabelNamespace, LabelSchedule})
	// ScheduleNextRun is when a schedule runs next.
	ScheduleNextRun = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "backflow_schedule_next_run_timestamp_seconds",
		Help: "Unix time of the next run of a BackupSchedule (absent while suspended).",
	}, []string{LabelNamespace, LabelSchedule})
	// ScheduleIntervalSeconds is the interval between runs, for alerting on missed backups.
	ScheduleIntervalSeconds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "backflow_schedule_interval_seconds",
		Help: "Seconds between two runs of a BackupSchedule.",
	}, []string{LabelNamespace, LabelSchedule})
	// RestoreTotal counts finished restores.
	RestoreTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backflow_restore_total",
		Help: "Restores that finished, by namespace and status (succeeded or failed).",
	}, []string{LabelNamespace, LabelStatus})
	// VerifyFailedTotal counts backups whose verification failed.
	VerifyFailedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backflow_verify_failed_total",
		Help: "Backups whose verify step failed, by namespace and schedule.",
	}, []string{LabelNamespace, LabelSchedule})
	// CredentialsIssuedTotal counts the step credentials the controller
	// wrote into run Secrets: minted by a storage's STS, or copied from its
	// Secret.
	CredentialsIssuedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backflow_credentials_issued_total",
		Help: "Storage credentials of a step written into a run's Secret, by namespace and kind (minted by the storage's STS, or copied from its Secret).",
	}, []string{LabelNamespace, LabelKind})
)

// NotificationFailuresTotal counts notifications a run's notify step could
// not deliver, once each: by namespace, kind of resource (Backup, Restore)
// and type of target (webhook, slack, deadMansSwitch; notify-step when the
// step itself failed).
var NotificationFailuresTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "backflow_notification_failures_total",
	Help: "Notifications that could not be delivered, by namespace, kind of resource and target type.",
}, []string{LabelNamespace, LabelKind, LabelTargetType})

// LabelTargetType is the label of NotificationFailuresTotal.
const LabelTargetType = "target_type"

// LabelKind is the label of CredentialsIssuedTotal, with its values.
const (
	LabelKind         = "kind"
	CredentialsMinted = "minted"
	CredentialsCopied = "copied"
)

func init() {
	metrics.Registry.MustRegister(BackupTotal, BackupDuration, BackupSize, ScheduleLastSuccess, ScheduleNextRun,
		ScheduleIntervalSeconds, RestoreTotal, VerifyFailedTotal, CredentialsIssuedTotal, NotificationFailuresTotal)
}

// The values of the status label of BackupTotal, BackupDuration and
// RestoreTotal.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// ForgetBackup removes the series that belong to a deleted Backup: the size
// of a one-shot Backup's series, which is the Backup's own. The counters and
// durations are by namespace and schedule, not by Backup, and stay; the
// series of a scheduled Backup belong to its schedule (see ForgetSchedule).
func ForgetBackup(namespace, name string) {
	BackupSize.DeleteLabelValues(namespace, "", name)
}

// ForgetSchedule removes the series that belong to a deleted BackupSchedule:
// its own, and those of the Backups it ran (by schedule label).
func ForgetSchedule(namespace, name string) {
	labels := prometheus.Labels{LabelNamespace: namespace, LabelSchedule: name}
	for _, vec := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{BackupTotal, BackupDuration, BackupSize, VerifyFailedTotal, ScheduleLastSuccess, ScheduleNextRun, ScheduleIntervalSeconds} {
		vec.DeletePartialMatch(labels)
	}
}
