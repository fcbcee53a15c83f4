package compiler

import (
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
)

// DumpRecipients are the age recipients a Workflow compiled from a Backup or
// a schedule's CronWorkflow gives its dump step: the dump task's argument in
// the inline mode, the run's argument in the Strict mode. They are what the
// Backup's status.encryption reports, for a scheduled run too, whose
// Workflow its CronWorkflow made.
func DumpRecipients(wf *wfv1.Workflow) []string {
	value := ""
	for _, p := range wf.Spec.Arguments.Parameters {
		if p.Name == stepParam(StepDump, ParamRecipients) && p.Value != nil {
			value = p.Value.String()
		}
	}
	for _, t := range wf.Spec.Templates {
		if t.DAG == nil {
			continue
		}
		for _, task := range t.DAG.Tasks {
			if task.Name != StepDump || task.TemplateRef == nil {
				continue
			}
			for _, p := range task.Arguments.Parameters {
				if p.Name == ParamRecipients && p.Value != nil {
					value = p.Value.String()
				}
			}
		}
	}
	return strings.Fields(value)
}
