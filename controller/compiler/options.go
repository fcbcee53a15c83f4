// Package compiler turns backflow's resources into Argo Workflows,
// CronWorkflows and the ClusterWorkflowTemplates they call. It is pure: the
// spec and what the reconciler resolved go in, Argo objects come out, and no
// client is called, so golden files pin its output.
package compiler

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/backflow-dev/backflow/stages/source"
)

// Options are the controller-wide settings of the compiler.
type Options struct {
	// Image is the backflow image: it runs the steps that need no client
	// tools and provides the binary copied into those that do.
	Image string
	// ImagePullPolicy of every step container.
	ImagePullPolicy corev1.PullPolicy
	// ClientImages are the images with the database client tools, by the
	// key an engine names (postgresql, mysql, mariadb; see
	// source.Planner.ClientImages). MongoDB needs none: backflow dumps and
	// restores it itself.
	ClientImages map[string]string
	// ExecHooks says whether exec hooks may run (the chart's hooks.exec):
	// without, the controller provides no HookServiceAccount and a spec
	// with an exec hook does not compile.
	ExecHooks bool
	// AllowedImages are the user images a resource may name (a command's,
	// a container hook's, a database source's or target's own image)
	// besides Image and ClientImages. Empty, inline mode allows any image
	// and Strict mode none: the run templates list them for Argo.
	AllowedImages []string
	// SuccessTTLSeconds and FailureTTLSeconds keep finished Workflows for
	// the Argo UI before Argo deletes them.
	SuccessTTLSeconds int32
	FailureTTLSeconds int32
	// TemplateReferencing is Strict for an Argo that runs only Workflows
	// referencing a template.
	TemplateReferencing TemplateReferencing
}

// DefaultOptions are the options of a controller started without flags.
func DefaultOptions() Options {
	return Options{
		Image:             "ghcr.io/backflow-dev/backflow:latest",
		ImagePullPolicy:   corev1.PullIfNotPresent,
		ClientImages:      source.ClientImages(),
		ExecHooks:         true,
		SuccessTTLSeconds: 24 * 3600,
		FailureTTLSeconds: 7 * 24 * 3600,
	}
}
