package compiler

import (
	"fmt"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// RestoreInput is a Restore with what the reconciler resolved for it: the
// object to restore and the identity that decrypts it.
type RestoreInput struct {
	Restore *v1.Restore
	Storage StorageAccess
	Key     string
	// Checksum is the sha256 the Backup recorded for the object, which the
	// Restore pins: a manifest or object replaced in the bucket since is
	// refused. Empty when restoring an object no Backup names.
	Checksum string
	Identity *v1.SecretKeySelector
}

// Restore compiles a Restore into the Workflow that runs it: pre-hook ->
// verify (the whole object is read, decrypted and checked before the target
// sees a byte) -> restore -> post-hook.
func Restore(in RestoreInput, opts Options) (*wfv1.Workflow, error) {
	r := in.Restore
	if err := checkArgoLiterals(r.Spec.Pod, r.Spec.Hooks); err != nil {
		return nil, err
	}
	target, err := argoJSON(r.Spec.Target)
	if err != nil {
		return nil, err
	}
	patch := newPodPatch()
	patch.storageCA(in.Storage)
	patch.resources(r.Spec.Pod)
	patch.identity(in.Identity)
	engine, err := source.ForTarget(r.Spec.Target)
	if err != nil {
		return nil, err
	}
	restorePod := engine.RestorePod(r.Spec.Target)
	image := engineImage(restorePod, opts)
	patch.enginePod(restorePod)

	choices := runChoices{verify: r.Spec.VerifyBeforeRestore == nil || *r.Spec.VerifyBeforeRestore}
	if h := r.Spec.Hooks; h != nil {
		choices.preHook, choices.postHook = h.Pre, h.Post
	}
	deadlines := r.Spec.StepDeadlineSeconds
	if deadlines == nil {
		deadlines = &v1.RestoreStepDeadlines{}
	}
	tasks := map[string]func() wfv1.DAGTask{
		StepPreHook:  func() wfv1.DAGTask { return hookTask(choices.preHook, defaultRetries, opts) },
		StepPostHook: func() wfv1.DAGTask { return hookTask(choices.postHook, defaultRetries, opts) },
		StepVerify: func() wfv1.DAGTask {
			verifyPatch := newPodPatch()
			verifyPatch.storageCA(in.Storage)
			verifyPatch.identity(in.Identity)
			return wfv1.DAGTask{
				TemplateRef: &wfv1.TemplateRef{Name: TemplateVerify, Template: EntryVerify, ClusterScope: true},
				Arguments: wfv1.Arguments{Parameters: concat(in.Storage.params(), stepArgs(opts.Image, verifyPatch, defaultRetries, deadline(EntryVerify, deadlines.Verify), opts),
					value(ParamKey, in.Key), value(ParamNamespace, r.Namespace), value(ParamExpectChecksum, in.Checksum),
					// A restore needs read access only: the manifest stays as
					// the Backup's own verify left it.
					value(ParamMarkVerified, "false"),
				)},
			}
		},
		StepRestore: func() wfv1.DAGTask {
			return wfv1.DAGTask{
				TemplateRef: &wfv1.TemplateRef{Name: TemplateRestore, Template: EntryRestore, ClusterScope: true},
				Arguments: wfv1.Arguments{Parameters: concat(in.Storage.params(), stepArgs(image, patch, defaultRetries, deadline(EntryRestore, deadlines.Restore), opts),
					value(ParamKey, in.Key), value(ParamExpectChecksum, in.Checksum),
					value(ParamTarget, target), value(ParamNamespace, r.Namespace),
					// The verify step has read the object whole; the restore still
					// checks the checksums as it streams and holds back the end
					// until they match.
					value(ParamVerifyFirst, "false"),
				)},
			}
		},
	}
	templates, err := restoreSteps.plan(choices).inline(func(step string) (wfv1.DAGTask, error) { return tasks[step](), nil })
	if err != nil {
		return nil, err
	}
	ws := workflowSpec(r.Spec.ServiceAccountName, r.Spec.ActiveDeadlineSeconds, r.Spec.Pod, opts)
	ws.Entrypoint = templates[0].Name
	ws.Templates = templates
	if opts.TemplateReferencing == TemplateReferencingStrict {
		if ws, err = restoreSteps.referencing(ws, opts); err != nil {
			return nil, err
		}
	}
	return &wfv1.Workflow{
		TypeMeta: argoTypeMeta(workflow.WorkflowKind),
		ObjectMeta: metav1.ObjectMeta{
			Name: WorkflowName(r.Name), Namespace: r.Namespace,
			Labels: map[string]string{v1.LabelRestore: r.Name, v1.LabelNamespace: r.Namespace},
			Annotations: uiAnnotations(fmt.Sprintf("Restore %s/%s", r.Namespace, r.Name),
				fmt.Sprintf("%s from s3://%s/%s", engine.DescribeTarget(r.Spec.Target), in.Storage.Storage.Spec.S3.Bucket, in.Key)),
		},
		Spec: *ws,
	}, nil
}
