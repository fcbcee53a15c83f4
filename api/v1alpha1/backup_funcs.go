package v1alpha1

import "fmt"

// FormatSize renders a byte count for people, in binary units: 512B, 1.5KiB,
// 41.2MiB.
func FormatSize(bytes int64) string {
	const unit = 1024
	if bytes < unit {
		return fmt.Sprintf("%dB", bytes)
	}
	value, exp := float64(bytes)/unit, 0
	for value >= unit && exp < 5 {
		value /= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", value, "KMGTPE"[exp])
}

// SeriesName is the name of the series a Backup belongs to: its schedule's
// name, or its own for a one-shot backup.
func (b *Backup) SeriesName() string {
	if s := b.Labels[LabelSchedule]; s != "" {
		return s
	}
	return b.Name
}

// StorageNamespace is the namespace of the BackupStorage a reference names,
// defaulting to the referring resource's.
func (r StorageReference) StorageNamespace(own string) string {
	if r.Namespace != "" {
		return r.Namespace
	}
	return own
}
