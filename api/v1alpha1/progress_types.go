package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// StepProgress is how far a step that moves a run's data is: a Backup's dump
// (against the raw size of the series' previous verified backup, or the
// source's estimate on a first run) or verify, a Restore's verify or
// restore (against the stored object's size). The steps report it to Argo
// in MiB, so bytes are in whole MiB until the step ended.
type StepProgress struct {
	// Step whose progress this is: dump, verify or restore.
	Step string `json:"step"`
	// Percent of the expected bytes done: at most 99 while the step runs
	// (the expected size is an estimate), 100 once it succeeded.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
	// BytesDone is how many bytes the step has read so far.
	// +optional
	BytesDone *int64 `json:"bytesDone,omitempty"`
	// ExpectedBytes is the size the step counts against; it grows with a
	// stream that outgrows it. Unset when the step has no expected size
	// (a command's first dump).
	// +optional
	ExpectedBytes *int64 `json:"expectedBytes,omitempty"`
	// EstimatedCompletion is when the step should end at its pace so far,
	// worked out when its progress last moved.
	// +optional
	EstimatedCompletion *metav1.Time `json:"estimatedCompletion,omitempty"`
}
