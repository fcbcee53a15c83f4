package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupSource is what a Backup dumps: exactly one of its fields is set.
// +kubebuilder:validation:XValidation:rule="[has(self.postgresql), has(self.mysql), has(self.mongodb), has(self.pvc), has(self.command)].filter(x, x).size() == 1",message="source: set exactly one of postgresql, mysql, mongodb, pvc and command"
type BackupSource struct {
	// PostgreSQL dumps one database with pg_dump.
	// +optional
	PostgreSQL *PostgreSQLSource `json:"postgresql,omitempty"`
	// MySQL dumps MySQL or MariaDB databases with mysqldump or mariadb-dump.
	// +optional
	MySQL *MySQLSource `json:"mysql,omitempty"`
	// MongoDB dumps databases in mongodump's archive format.
	// +optional
	MongoDB *MongoDBSource `json:"mongodb,omitempty"`
	// PVC archives paths of a PersistentVolumeClaim as tar.
	// +optional
	PVC *PVCSource `json:"pvc,omitempty"`
	// Command runs a command whose standard output is the data.
	// +optional
	Command *CommandSource `json:"command,omitempty"`
	// Accept an empty dump as a backup. Otherwise a source that writes no
	// bytes fails the dump, because it usually means the source is broken.
	// +optional
	AllowEmpty bool `json:"allowEmpty,omitempty"`
}

// BackupStorageTarget says where a backup is written.
type BackupStorageTarget struct {
	StorageReference `json:",inline"`
	// Path is the object key, relative to the storage prefix, as a Go template
	// with sprig functions (but none that read the environment or the
	// network). Data: .Namespace, .Name (of the Backup), .Series (the
	// BackupSchedule's name, or the Backup's for a one-shot backup), .Source
	// (postgresql, mysql, mongodb, pvc or command), .Database, .Timestamp (the
	// start of the dump, UTC) and .Extension (such as .pgdump.zst.age).
	// Dates format in UTC. Retention lists the directory that stays the same
	// from run to run (its scope: "apps/nightly/" for the default) and
	// rotates the backups whose manifests name the series, so several series
	// may share a directory, and one may spread over dated directories.
	// Every key it renders must lie inside the namespace's prefix in the
	// storage (BackupStorage spec.namespacePrefix, by default
	// "{{ .Namespace }}/"); the controller checks it before anything runs.
	// Defaults to that prefix followed by
	// {{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}.
	// Each {{ }} must be an action on this data ({{ .Name }}, {{ .Timestamp |
	// date "2006" }}, a function with arguments, end or else): Argo
	// substitutes its own tags in a Workflow's parameters, and a path it
	// would read ({{workflow.name}}, {{= ... }}) is refused.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="storage.path must be relative to the storage prefix: remove the leading '/'"
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s.trim() == '..')",message="storage.path must not contain a '..' segment"
	// +kubebuilder:validation:XValidation:rule=`self.matches('^(?:[^{]|\\{[^{])*(?:\\{\\{\\s*(?:[-.$("/][^{}]*|[A-Za-z_][A-Za-z0-9_]*\\s+[^{}\\s][^{}]*|(?:end|else|now|break|continue)\\s*)\\}\\}(?:[^{]|\\{[^{])*)*\\{?$')`,message="storage.path: each {{ }} must be a Go template action on the path's data, such as {{ .Namespace }} or {{ .Timestamp | date \"2006\" }}, without braces inside; an action Argo would substitute itself ({{workflow.name}}, {{inputs.parameters.x}}, {{= expr }}) is refused"
	Path string `json:"path,omitempty"`
}

// VerifySpec says how a backup is checked after it was written.
type VerifySpec struct {
	// Read the object back, decrypt and decompress it, and compare sizes and
	// sha256 checksums with what the dump recorded. Turning it off drops the
	// verify step; retention then never deletes anything, because no backup
	// counts as verified.
	// +optional
	// +kubebuilder:default=true
	Checksum *bool `json:"checksum,omitempty"`
	// Restore the backup into a scratch database and run a check query.
	// +optional
	RestoreTest *RestoreTest `json:"restoreTest,omitempty"`
}

// RestoreTest restores a backup where it does no harm, to prove it restores.
type RestoreTest struct {
	// Scratch database to restore into. Its contents are replaced. Without it
	// only a structural check is done, which PostgreSQL custom and tar formats
	// support (pg_restore --list).
	// +optional
	Connection *DatabaseConnection `json:"connection,omitempty"`
	// Query run against the scratch database after the restore; it must
	// succeed and return at least one row. For MongoDB it is a JSON document
	// {"collection": "orders", "filter": {"status": "paid"}} that must match
	// at least one document; without it every restored collection must hold
	// as many documents as the backup did. A MongoDB scratch database is
	// dropped after the check.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	CheckQuery string `json:"checkQuery,omitempty"`
}

// Retention says which backups of a series rotate keeps. A backup belongs to
// the series when its manifest names the Backup's namespace, its series and
// its BackupStorage; nothing else is ever deleted, wherever it lies. A backup
// is kept when any rule keeps it, and deleted when none does. The newest
// verified backup is never deleted, and nothing is deleted while the series
// has no verified backup, nor a backup newer than the newest verified one.
// keepLast and the keep* rules count verified backups only; days keeps
// every backup younger than it, verified or not. The keep* rules work as
// restic's forget does: for the last N hours, days, ISO weeks, months or
// years that have a verified backup, the newest verified backup of each is
// kept, with the calendar of the schedule's spec.timezone (UTC for a
// one-shot Backup or a schedule without one).
// +kubebuilder:validation:XValidation:rule="has(self.days) || has(self.keepLast) || has(self.keepHourly) || has(self.keepDaily) || has(self.keepWeekly) || has(self.keepMonthly) || has(self.keepYearly)",message="retention: set at least one of days, keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly and keepYearly"
type Retention struct {
	// Keep backups younger than this many days (of 24 hours), verified or
	// not.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=36500
	Days *int32 `json:"days,omitempty"`
	// Keep this many newest verified backups.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	KeepLast *int32 `json:"keepLast,omitempty"`
	// For the last N clock hours that have a verified backup, keep the newest
	// of each. The hour repeated when clocks go back counts as two.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	KeepHourly *int32 `json:"keepHourly,omitempty"`
	// For the last N days that have a verified backup, keep the newest of
	// each.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=36500
	KeepDaily *int32 `json:"keepDaily,omitempty"`
	// For the last N ISO 8601 weeks (Monday to Sunday) that have a verified
	// backup, keep the newest of each.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=5218
	KeepWeekly *int32 `json:"keepWeekly,omitempty"`
	// For the last N months that have a verified backup, keep the newest of
	// each.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1200
	KeepMonthly *int32 `json:"keepMonthly,omitempty"`
	// For the last N years that have a verified backup, keep the newest of
	// each.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	KeepYearly *int32 `json:"keepYearly,omitempty"`
}

// DeletionPolicy says what happens to the stored object when its Backup is
// deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionPolicyRetain keeps the object; retention removes it later.
	DeletionPolicyRetain DeletionPolicy = "Retain"
	// DeletionPolicyDelete deletes the object and its manifest too.
	DeletionPolicyDelete DeletionPolicy = "Delete"
)

// BackupSpec is what to back up, where to, and how.
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || !has(self.verify.restoreTest) || has(self.source.postgresql) || has(self.source.mysql) || has(self.source.mongodb)",message="verify.restoreTest needs a postgresql, mysql or mongodb source"
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || !has(self.verify.restoreTest) || has(self.verify.restoreTest.connection) || (has(self.source.postgresql) && self.source.postgresql.format != 'plain')",message="verify.restoreTest.connection is required unless the source is PostgreSQL in custom or tar format"
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || !has(self.verify.restoreTest) || !has(self.verify.checksum) || self.verify.checksum",message="verify.restoreTest needs verify.checksum"
// +kubebuilder:validation:XValidation:rule="!has(self.retention) || !has(self.verify) || !has(self.verify.checksum) || self.verify.checksum",message="retention needs verify.checksum: rotate deletes only after a verified backup"
// +kubebuilder:validation:XValidation:rule="!has(self.activeDeadlineSeconds) || !has(self.stepDeadlineSeconds) || [has(self.stepDeadlineSeconds.dump) ? self.stepDeadlineSeconds.dump : 0, has(self.stepDeadlineSeconds.verify) ? self.stepDeadlineSeconds.verify : 0, has(self.stepDeadlineSeconds.rotate) ? self.stepDeadlineSeconds.rotate : 0].all(d, d <= self.activeDeadlineSeconds)",message="stepDeadlineSeconds: a step's deadline cannot be longer than activeDeadlineSeconds, the whole run's"
type BackupSpec struct {
	// Source is what to back up.
	Source BackupSource `json:"source"`
	// Storage is where to write the backup.
	Storage BackupStorageTarget `json:"storage"`
	// Compression of the stream.
	// +optional
	// +kubebuilder:default={}
	Compression *Compression `json:"compression,omitempty"`
	// Encryption of the stream. Without it backups are stored in the clear.
	// +optional
	Encryption *Encryption `json:"encryption,omitempty"`
	// Hooks run before and after the dump.
	// +optional
	Hooks *Hooks `json:"hooks,omitempty"`
	// Verify says how the backup is checked after it was written.
	// +optional
	// +kubebuilder:default={}
	Verify *VerifySpec `json:"verify,omitempty"`
	// Retention applied to the series after a verified backup.
	// +optional
	Retention *Retention `json:"retention,omitempty"`
	// Seconds the whole run may take before Argo stops it.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// Seconds each step may run before Argo stops it and fails it, so that a
	// stalled step cannot hold up the run, or a schedule whose
	// concurrencyPolicy is Forbid. Hooks have their own timeoutSeconds.
	// +optional
	StepDeadlineSeconds *BackupStepDeadlines `json:"stepDeadlineSeconds,omitempty"`
	// Retries of a step that failed for a transient reason (pod evicted, node
	// lost, storage unreachable: the step exits with 75). An exit 1 and an
	// error no retry fixes (forbidden, not found, invalid) fail at once.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Retries *int32 `json:"retries,omitempty"`
	// Service account the step pods run as, for a cloud identity (IRSA,
	// workload identity): the steps get no token of it. Argo's executor
	// runs as backflow-workflow and exec hooks as backflow-hook, which the
	// controller provides in the namespace. Defaults to backflow-workflow.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self != 'backflow-hook'",message="serviceAccountName: backflow-hook is the exec hooks' own account; name another one"
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// Overrides for the step pods.
	// +optional
	Pod *PodOverrides `json:"pod,omitempty"`
	// What happens to the stored object when this Backup is deleted. Retain
	// keeps it (retention removes it later); Delete removes the object and
	// its manifest, but only when the manifest names this Backup and the key
	// lies under the namespace's prefix (<namespace>/). A BackupSchedule's
	// history limit never deletes a stored object, whatever this says.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
	// Where the run reports when it starts, succeeds or fails.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Notify []NotifyTarget `json:"notify,omitempty"`
}

// BackupStepDeadlines are the deadlines of a backup's steps, in seconds.
type BackupStepDeadlines struct {
	// The dump step; 21600 (6 hours) by default.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=604800
	Dump *int32 `json:"dump,omitempty"`
	// The verify step; 21600 (6 hours) by default.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=604800
	Verify *int32 `json:"verify,omitempty"`
	// The rotate step; 1800 (30 minutes) by default.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=604800
	Rotate *int32 `json:"rotate,omitempty"`
}

// BackupStatus is the observed state of a Backup.
type BackupStatus struct {
	RunStatus `json:",inline"`
	// Checksum of the stream the source wrote, naming its algorithm:
	// blake3:<hex> (sha256:<hex> for backups of backflow before BLAKE3).
	// +optional
	RawChecksum string `json:"rawChecksum,omitempty"`
	// What the rotate step decided for the series, once it ran.
	// +optional
	Rotation *RotationStatus `json:"rotation,omitempty"`
	// Encryption says what the backup was encrypted to, from its Workflow.
	// +optional
	Encryption *EncryptionStatus `json:"encryption,omitempty"`
}

// RotationStatus is what retention did to a Backup's series after it.
type RotationStatus struct {
	// Backups of the series kept.
	Kept int32 `json:"kept"`
	// Objects of the series deleted: backups, objects whose manifest was
	// missing, manifests whose object was.
	Deleted int32 `json:"deleted"`
	// Keys deleted, the first MaxRotationKeys of them; the rotate step's
	// output (Argo) has the whole decision, with the reason for each backup.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	DeletedKeys []string `json:"deletedKeys,omitempty"`
}

// MaxRotationKeys is how many deleted keys a Backup's status lists.
const MaxRotationKeys = 20

// Backup is one backup: a dump streamed through compression and encryption
// into a BackupStorage, verified, with retention applied to its series.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bk,categories=backflow
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.displaySize`
// +kubebuilder:printcolumn:name="Progress",type=string,JSONPath=`.status.progress`,priority=1
// +kubebuilder:printcolumn:name="Storage",type=string,JSONPath=`.spec.storage.name`,priority=1
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.metadata.labels.backflow\.dev/schedule`,priority=1
// +kubebuilder:printcolumn:name="Checksum",type=string,JSONPath=`.status.checksum`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: a Backup is one run; create a new Backup instead"
	Spec   BackupSpec   `json:"spec"`
	Status BackupStatus `json:"status,omitempty"`
}

// BackupList is a list of Backups.
//
// +kubebuilder:object:root=true
type BackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backup `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Backup{}, &BackupList{})
}

// Reasons of the Events recorded when a Backup whose deletionPolicy is
// Delete is deleted.
const (
	// EventDeleted: the stored object and its manifest were deleted.
	EventDeleted EventReason = "Deleted"
	// EventDeleteFailed: deleting the stored object failed; it is retried
	// until the controller's --delete-timeout (a Warning).
	EventDeleteFailed EventReason = "DeleteFailed"
	// EventObjectKept: the stored object stays although deletionPolicy is
	// Delete, because the schedule's history limit pruned the Backup (Normal).
	EventObjectKept EventReason = "ObjectKept"
	// EventObjectLeft: the finalizer gave up and left the stored object, and
	// the message says why: the key is outside the namespace's prefix, the
	// manifest does not name this Backup, the storage or its Secret is gone,
	// or the storage stayed unreachable (a Warning).
	EventObjectLeft EventReason = "ObjectLeft"
)
