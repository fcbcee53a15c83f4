package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// RunStatus is the observed state of one run, a Backup or a Restore: what
// its Workflow reports, mirrored. Both kinds embed it inline, so its fields
// are top-level fields of their status.
type RunStatus struct {
	// Generation of the spec the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase: Pending, Running, Succeeded or Failed.
	// +optional
	Phase RunPhase `json:"phase,omitempty"`
	// Name of the Argo Workflow that runs the backup or restore.
	// +optional
	WorkflowName string `json:"workflowName,omitempty"`
	// UID of that Workflow: the one backflow created for this run (or, for
	// a scheduled Backup, the one the schedule's CronWorkflow started). Only
	// the Workflow with this UID is mirrored, so that a Workflow someone else
	// created under the same name cannot write the status.
	// +optional
	WorkflowUID types.UID `json:"workflowUID,omitempty"`
	// When the Workflow started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// When the Workflow finished, or the run failed without one.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// Where the backup is stored: the object written, or the one restored.
	// +optional
	Location *ObjectLocation `json:"location,omitempty"`
	// Stored size in bytes of the object (compressed and encrypted).
	// +optional
	Size *int64 `json:"size,omitempty"`
	// Stored size for people, such as 12.3MiB.
	// +optional
	DisplaySize string `json:"displaySize,omitempty"`
	// Size in bytes of the stream: the one the source wrote, or the one fed
	// to the restore target.
	// +optional
	RawSize *int64 `json:"rawSize,omitempty"`
	// sha256 of the stored object, as sha256:<hex>.
	// +optional
	Checksum string `json:"checksum,omitempty"`
	// Steps of the Workflow and their states, in DAG order.
	// +optional
	Stages []StageStatus `json:"stages,omitempty"`
	// What the notify step reported about each notification it sent.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=24
	Notifications []NotificationStatus `json:"notifications,omitempty"`
	// Progress of the step that moves the data (a Backup's dump or verify,
	// a Restore's verify or restore) for people: its share done, the bytes
	// and the time left, such as "dump 37% (1.2GiB of 3.3GiB), about 4m
	// left"; "100%" once the run succeeded. The same as numbers in
	// stepProgress.
	// +optional
	Progress string `json:"progress,omitempty"`
	// StepProgress is how far the step that moves the data is, as Argo's
	// executor last reported it.
	// +optional
	StepProgress *StepProgress `json:"stepProgress,omitempty"`
	// Human-readable summary; on failure, the failing step and why.
	// +optional
	Message string `json:"message,omitempty"`
	// Conditions: Succeeded, and for a Backup Verified.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RunPhase is the phase of a Backup or Restore.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type RunPhase string

const (
	// PhasePending: accepted, the Workflow has not started yet.
	PhasePending RunPhase = "Pending"
	// PhaseRunning: the Workflow is running.
	PhaseRunning RunPhase = "Running"
	// PhaseSucceeded: every required step succeeded.
	PhaseSucceeded RunPhase = "Succeeded"
	// PhaseFailed: a step failed or the spec could not be run.
	PhaseFailed RunPhase = "Failed"
)

// Reasons of a run's Succeeded and Verified conditions (besides the shared
// ReasonInvalidSpec, ReasonStorageNotFound and ReasonStorageForbidden).
const (
	// ReasonPending: the run waits, for Argo to start its Workflow or, for a
	// Restore, for the Backup it restores.
	ReasonPending ConditionReason = "Pending"
	// ReasonWorkflowCreated: backflow created the Workflow of the run.
	ReasonWorkflowCreated ConditionReason = "WorkflowCreated"
	// ReasonRunning: the Workflow runs (Succeeded), or the verify step has
	// not finished (Verified).
	ReasonRunning ConditionReason = "Running"
	// ReasonSucceeded: every required step of the Workflow succeeded.
	ReasonSucceeded ConditionReason = "Succeeded"
	// ReasonFailed: a step of the Workflow, or the Workflow, failed.
	ReasonFailed ConditionReason = "Failed"
	// ReasonWorkflowMissing: the Workflow was deleted before it finished.
	ReasonWorkflowMissing ConditionReason = "WorkflowMissing"
	// ReasonVerified: the stored backup was read back and its checksums
	// matched.
	ReasonVerified ConditionReason = "Verified"
	// ReasonVerifyFailed: the verify step failed.
	ReasonVerifyFailed ConditionReason = "VerifyFailed"
	// ReasonVerifySkipped: the backup finished without being verified.
	ReasonVerifySkipped ConditionReason = "VerifySkipped"
	// ReasonCredentialsNotMinted: a run in a namespace other than its
	// storage's needs scoped credentials (the storage's spec.sharing is
	// ScopedCredentials) and the storage's STS did not give them; its owner
	// may set spec.sharing BucketCredentials for a provider without
	// AssumeRole. The run waits; a change to the storage tries again.
	ReasonCredentialsNotMinted ConditionReason = "CredentialsNotMinted"
)

// Reasons of the Events recorded on a Backup or Restore.
const (
	// EventWorkflowCreated: backflow created the Workflow of the run.
	EventWorkflowCreated EventReason = "WorkflowCreated"
	// EventCredentialsMinted: backflow wrote the storage credentials of the
	// run's steps into the run's Secret (minted by the storage's STS, or
	// copied from the storage's Secret), or renewed them.
	EventCredentialsMinted EventReason = "CredentialsMinted"
	// EventStarted: the Workflow started.
	EventStarted EventReason = "Started"
	// EventUploaded: the dump step stored the backup.
	EventUploaded EventReason = "Uploaded"
	// EventVerified: the verify step read the backup back successfully.
	EventVerified EventReason = "Verified"
	// EventRotated: retention was applied to the backup's series.
	EventRotated EventReason = "Rotated"
	// EventRestored: the restore finished successfully.
	EventRestored EventReason = "Restored"
	// EventStepFailed: a step of the Workflow failed (a Warning).
	EventStepFailed EventReason = "StepFailed"
	// EventFailed: the run failed, but not in a step: its Workflow failed,
	// or backflow could not run it (a Warning).
	EventFailed EventReason = "Failed"
)
