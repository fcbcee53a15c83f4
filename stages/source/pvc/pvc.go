// Package pvc is the volume engine: a tar of paths of a PersistentVolumeClaim,
// unpacked into a directory of one on restore.
package pvc

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// FormatTar is a tar archive of the paths.
var FormatTar = source.Format{Name: "tar", Extension: ".tar"}

func init() { source.Register(Engine{}) }

// Engine is the volume engine. Its steps run in the backflow image, with the
// claim mounted at the stages' volume root: read-only for the dump.
type Engine struct{}

func (Engine) Name() string  { return "pvc" }
func (Engine) Title() string { return "a volume" }

func (Engine) Formats() []source.Format { return []source.Format{FormatTar} }

func (Engine) ClientImages() map[string]string { return nil }

func (Engine) CheckSource(v1.BackupSource) error { return nil }

func (Engine) DumpPod(src v1.BackupSource) source.Pod {
	return source.Pod{Volume: &corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
		ClaimName: src.PVC.ClaimName, ReadOnly: true,
	}}, VolumeReadOnly: true}
}

func (Engine) RestorePod(target v1.RestoreTarget) source.Pod {
	return source.Pod{Volume: &corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
		ClaimName: target.PVC.ClaimName,
	}}}
}

func (Engine) DescribeSource(src v1.BackupSource) string {
	paths := src.PVC.Paths
	if len(paths) == 0 {
		paths = []string{"."}
	}
	return fmt.Sprintf("volume %s (%s)", src.PVC.ClaimName, strings.Join(paths, ", "))
}

func (Engine) DescribeTarget(target v1.RestoreTarget) string {
	return "into volume " + target.PVC.ClaimName
}

func (Engine) Format(v1.BackupSource) source.Format { return FormatTar }

func (Engine) DatabaseName(v1.BackupSource, source.Options) string { return "" }

// EstimateSize is the size of the files to archive, walked before the dump.
func (Engine) EstimateSize(_ context.Context, src v1.BackupSource, opts source.Options) (int64, error) {
	return source.TreeSize(opts.VolumeRoot, src.PVC.Paths), nil
}

func (Engine) StartDump(_ context.Context, src v1.BackupSource, opts source.Options, _ io.Writer) (*source.Producer, error) {
	r := source.TarPaths(opts.VolumeRoot, src.PVC.Paths)
	return source.NewProducer(r, func() { _ = r.Close() }), nil
}

// Accepts any format: what is unpacked is the stream's business, and a
// stream that is no tar archive fails as it is read.
func (Engine) Accepts(string) bool { return true }

func (Engine) StartRestore(ctx context.Context, target v1.RestoreTarget, _ string, opts source.Options, _, _ io.Writer) (*source.Consumer, error) {
	dir := filepath.Join(opts.VolumeRoot, filepath.FromSlash(target.PVC.Path))
	return source.Consume(ctx, func(_ context.Context, r io.Reader) error { return source.Untar(r, dir) }), nil
}
