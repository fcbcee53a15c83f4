package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConcurrencyPolicy says what happens when a run is due while another runs.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

const (
	// ConcurrencyAllow runs both.
	ConcurrencyAllow ConcurrencyPolicy = "Allow"
	// ConcurrencyForbid skips the new run.
	ConcurrencyForbid ConcurrencyPolicy = "Forbid"
	// ConcurrencyReplace stops the running one and starts the new one.
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// BackupTemplate is the Backup each run of a schedule creates.
type BackupTemplate struct {
	// Labels and annotations of the Backups.
	// +optional
	Metadata BackupTemplateMetadata `json:"metadata,omitempty"`
	// Spec of the Backups.
	Spec BackupSpec `json:"spec"`
}

// BackupTemplateMetadata holds the labels and annotations copied onto each
// Backup of a schedule.
type BackupTemplateMetadata struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// BackupScheduleSpec is when to back up and what each run does.
type BackupScheduleSpec struct {
	// Schedule in cron format: five fields (minute hour day-of-month month
	// day-of-week), or @hourly, @daily, @weekly, @monthly, @yearly.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule=`self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$') || self.matches('^(\\*|\\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?(,(\\*|\\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?)*(\\s+(\\*|\\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?(,(\\*|\\?|[0-9]{1,2}(-[0-9]{1,2})?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/[0-9]{1,2})?)*){4}$')`,message="schedule must be a cron expression with five fields (minute hour day-of-month month day-of-week), such as '0 3 * * *', or one of @hourly, @daily, @weekly, @monthly, @yearly"
	Schedule string `json:"schedule"`
	// Time zone the schedule is read in, as an IANA name such as Europe/Berlin.
	// Defaults to the workflow-controller's time zone (usually UTC).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule=`self.matches('^(UTC|Local|[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+){0,2})$') && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0`,message="timezone must be an IANA time zone name such as UTC or Europe/Berlin"
	Timezone string `json:"timezone,omitempty"`
	// Suspend stops new runs; running ones finish.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// What happens when a run is due while another runs.
	// +optional
	// +kubebuilder:default=Forbid
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`
	// Seconds after its due time a missed run may still start.
	// +optional
	// +kubebuilder:validation:Minimum=0
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`
	// Successful Backups to keep as resources. Deleting a Backup resource does
	// not delete its stored object (see spec.deletionPolicy); retention does.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	SuccessfulBackupsHistoryLimit *int32 `json:"successfulBackupsHistoryLimit,omitempty"`
	// Failed Backups to keep as resources.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	FailedBackupsHistoryLimit *int32 `json:"failedBackupsHistoryLimit,omitempty"`
	// The schedule reports BackupMissing when its last successful backup is
	// older than this many schedule intervals.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MissingAfterIntervals int32 `json:"missingAfterIntervals,omitempty"`
	// Template of the Backups each run creates.
	Template BackupTemplate `json:"template"`
}

// ScheduledRun is one run of a schedule.
type ScheduledRun struct {
	// Name of the Backup.
	Name string `json:"name"`
	// Phase of the Backup.
	// +optional
	Phase RunPhase `json:"phase,omitempty"`
	// Stored size in bytes.
	// +optional
	Size *int64 `json:"size,omitempty"`
	// sha256 of the stored object.
	// +optional
	Checksum string `json:"checksum,omitempty"`
	// When the run started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// When the run finished.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// BackupScheduleStatus is the observed state of a BackupSchedule.
type BackupScheduleStatus struct {
	// Generation of the spec the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Name of the Argo CronWorkflow.
	// +optional
	CronWorkflowName string `json:"cronWorkflowName,omitempty"`
	// When a run was last started.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// When a run last succeeded.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`
	// When a run last failed.
	// +optional
	LastFailedTime *metav1.Time `json:"lastFailedTime,omitempty"`
	// When the next run is due; empty while suspended.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
	// Backups running now.
	// +optional
	Active []string `json:"active,omitempty"`
	// Most recent runs, newest first.
	// +optional
	RecentRuns []ScheduledRun `json:"recentRuns,omitempty"`
	// Human-readable summary.
	// +optional
	Message string `json:"message,omitempty"`
	// Conditions: Ready (the CronWorkflow is in place) and BackupMissing.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BackupSchedule runs a Backup on a cron schedule, as an Argo CronWorkflow.
// Each run appears as a Backup labelled backflow.dev/schedule=<name>.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bksched,categories=backflow
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Last-Success",type=date,JSONPath=`.status.lastSuccessfulTime`
// +kubebuilder:printcolumn:name="Next",type=date,JSONPath=`.status.nextScheduleTime`,priority=1
// +kubebuilder:printcolumn:name="Storage",type=string,JSONPath=`.spec.template.spec.storage.name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackupScheduleSpec   `json:"spec"`
	Status BackupScheduleStatus `json:"status,omitempty"`
}

// BackupScheduleList is a list of BackupSchedules.
//
// +kubebuilder:object:root=true
type BackupScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupSchedule `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BackupSchedule{}, &BackupScheduleList{})
}

// Reasons of a BackupSchedule's conditions (besides the shared
// ReasonInvalidSpec, ReasonStorageNotFound and ReasonStorageForbidden of
// Ready). A Ready condition that turns false is also recorded as an Event
// with its reason.
const (
	// ReasonScheduled: the CronWorkflow is in place and runs on the schedule
	// (Ready).
	ReasonScheduled ConditionReason = "Scheduled"
	// ReasonSuspended: the schedule is suspended (Ready and BackupMissing).
	ReasonSuspended ConditionReason = "Suspended"
	// ReasonBackupMissing: no successful backup for longer than
	// spec.missingAfterIntervals intervals (BackupMissing).
	ReasonBackupMissing ConditionReason = "NoRecentBackup"
	// ReasonBackupRecent: the last successful backup is recent enough
	// (BackupMissing).
	ReasonBackupRecent ConditionReason = "RecentBackup"
)

// EventTriggered: a run was started by the trigger annotation.
const EventTriggered EventReason = "Triggered"
