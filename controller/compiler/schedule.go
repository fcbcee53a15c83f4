package compiler

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// ScheduleInput is a BackupSchedule with what the reconciler resolved for it.
type ScheduleInput struct {
	Schedule *v1.BackupSchedule
	Storage  StorageAccess
	// AgeRecipient is as BackupInput's, for the template's encryption.
	AgeRecipient string
	// ExpectedSize is the raw size of the schedule's newest verified run,
	// for the dump's progress; 0 when it has none. The controller updates
	// the CronWorkflow when a newer run is verified.
	ExpectedSize int64
}

// Schedule compiles a BackupSchedule into an Argo CronWorkflow. Each Workflow
// it starts runs one backup, named after the Workflow, in the schedule's
// series; the controller mirrors it into a Backup of the same name.
func Schedule(in ScheduleInput, opts Options) (*wfv1.CronWorkflow, error) {
	s := in.Schedule
	if err := CheckBackupImages("spec.template.spec.", s.Spec.Template.Spec, opts); err != nil {
		return nil, err
	}
	// Retention's calendar is the schedule's: keepDaily's days are the days
	// the cron expression counts in.
	ws, err := backupWorkflowSpec(s.Namespace, s.Spec.Template.Spec, s.Name, cmp.Or(s.Spec.Timezone, defaultTimezone),
		value(ParamName, "{{workflow.name}}"), in.Storage, in.AgeRecipient, in.ExpectedSize, opts)
	var ke *KeyError
	if errors.As(err, &ke) {
		// The Backup spec is the schedule's template.
		ke.Field = "spec.template." + ke.Field
	}
	if err != nil {
		return nil, err
	}
	labels := map[string]string{v1.LabelSchedule: s.Name, v1.LabelNamespace: s.Namespace}
	policy := wfv1.ForbidConcurrent
	switch s.Spec.ConcurrencyPolicy {
	case v1.ConcurrencyAllow:
		policy = wfv1.AllowConcurrent
	case v1.ConcurrencyReplace:
		policy = wfv1.ReplaceConcurrent
	}
	return &wfv1.CronWorkflow{
		TypeMeta: argoTypeMeta(workflow.CronWorkflowKind),
		ObjectMeta: metav1.ObjectMeta{
			Name: s.Name, Namespace: s.Namespace, Labels: labels,
			Annotations: uiAnnotations(fmt.Sprintf("BackupSchedule %s/%s", s.Namespace, s.Name),
				fmt.Sprintf("%s, on %q", describeBackup(s.Spec.Template.Spec, in.Storage), s.Spec.Schedule)),
		},
		Spec: wfv1.CronWorkflowSpec{
			Schedules:                  []string{s.Spec.Schedule},
			Timezone:                   s.Spec.Timezone,
			Suspend:                    s.Spec.Suspend,
			ConcurrencyPolicy:          policy,
			StartingDeadlineSeconds:    s.Spec.StartingDeadlineSeconds,
			SuccessfulJobsHistoryLimit: s.Spec.SuccessfulBackupsHistoryLimit,
			FailedJobsHistoryLimit:     s.Spec.FailedBackupsHistoryLimit,
			// Every Workflow the CronWorkflow starts carries the links back to
			// the schedule, for the Argo UI and for the controller.
			WorkflowMetadata: &metav1.ObjectMeta{
				Labels:      labels,
				Annotations: uiAnnotations(fmt.Sprintf("Backup of schedule %s/%s", s.Namespace, s.Name), describeBackup(s.Spec.Template.Spec, in.Storage)),
			},
			WorkflowSpec: *ws,
		},
	}, nil
}
