package schedule

import (
	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// IsRunOf says whether a Workflow is a run of the BackupSchedule with UID
// schedule: its controller is the schedule's CronWorkflow cron (itself
// controlled by the schedule; nil when there is none), which starts the
// scheduled runs, or the schedule itself, which starts the runs its trigger
// annotation asks for. A Workflow that only carries the schedule's label is
// not one: anyone who may create Workflows in the namespace can set labels.
func IsRunOf(wf *wfv1.Workflow, schedule types.UID, cron *wfv1.CronWorkflow) bool {
	owner := metav1.GetControllerOf(wf)
	if owner == nil {
		return false
	}
	switch {
	case owner.Kind == "BackupSchedule" && owner.APIVersion == v1.GroupVersion.String():
		return owner.UID == schedule
	case owner.Kind == workflow.CronWorkflowKind && cron != nil:
		cronOwner := metav1.GetControllerOf(cron)
		return owner.UID == cron.UID && cronOwner != nil && cronOwner.UID == schedule
	}
	return false
}
