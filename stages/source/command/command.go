// Package command is the engine of a user's command: its standard output is
// the backup, and a restore feeds the stream to its standard input, in the
// command's own image.
package command

import (
	"context"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// FormatRaw is whatever the command writes.
var FormatRaw = source.Format{Name: "raw", Extension: ".bin"}

func init() { source.Register(Engine{}) }

// Engine is the command engine.
type Engine struct{}

func (Engine) Name() string  { return "command" }
func (Engine) Title() string { return "a command" }

func (Engine) Formats() []source.Format { return []source.Format{FormatRaw} }

func (Engine) ClientImages() map[string]string { return nil }

func (Engine) CheckSource(v1.BackupSource) error { return nil }

// DumpPod runs the command's image with its environment; values from
// Secrets are resolved by Kubernetes, on the container.
func (Engine) DumpPod(src v1.BackupSource) source.Pod {
	return source.Pod{Image: src.Command.Image, Env: src.Command.Env}
}

func (Engine) RestorePod(target v1.RestoreTarget) source.Pod {
	return source.Pod{Image: target.Command.Image, Env: target.Command.Env}
}

func (Engine) DescribeSource(src v1.BackupSource) string {
	return "output of " + strings.Join(src.Command.Command, " ")
}

func (Engine) DescribeTarget(target v1.RestoreTarget) string {
	return "into the input of " + target.Command.Image
}

func (Engine) Format(v1.BackupSource) source.Format { return FormatRaw }

func (Engine) DatabaseName(v1.BackupSource, source.Options) string { return "" }

// EstimateSize: a command's output cannot be known before it runs.
func (Engine) EstimateSize(context.Context, v1.BackupSource, source.Options) (int64, error) {
	return 0, nil
}

func (Engine) StartDump(ctx context.Context, src v1.BackupSource, _ source.Options, stderr io.Writer) (*source.Producer, error) {
	c := src.Command
	return process(c.Command, c.Args, c.Env).StartProducer(ctx, stderr)
}

// Accepts any format: the command knows what it reads.
func (Engine) Accepts(string) bool { return true }

func (Engine) StartRestore(ctx context.Context, target v1.RestoreTarget, _ string, _ source.Options, stdout, stderr io.Writer) (*source.Consumer, error) {
	c := target.Command
	proc := process(c.Command, c.Args, c.Env)
	proc.Stdout = stdout
	return proc.StartConsumer(ctx, stderr)
}

// process runs a command with its arguments and the literal values of its
// environment. Values from Secrets are set on the container by the
// controller and inherited from there.
func process(command, args []string, env []corev1.EnvVar) source.Process {
	var literal []string
	for _, e := range env {
		if e.ValueFrom == nil {
			literal = append(literal, e.Name+"="+e.Value)
		}
	}
	return source.Process{Args: append(append([]string(nil), command...), args...), Env: literal}
}
