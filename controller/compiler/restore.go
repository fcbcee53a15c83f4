package compiler

import (
	"cmp"
	"fmt"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/source"
)

// RestoreInput is a Restore with what the reconciler resolved for it: the
// object to restore and the identity that decrypts it.
type RestoreInput struct {
	Restore *v1.Restore
	Storage StorageAccess
	Key     string
	// KeyField names where Key comes from, for the message when it lies
	// outside the namespace's prefix: spec.from.object.key, or the status
	// of the Backup restored from.
	KeyField string
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
	if err := CheckRestoreImages(r.Spec, opts); err != nil {
		return nil, err
	}
	if err := pathtemplate.Confine(in.Storage.Storage.NamespacePrefix(r.Namespace), in.Key); err != nil {
		return nil, keyError(cmp.Or(in.KeyField, "the key"), err)
	}
	if err := checkExecHooks(r.Spec.Hooks, opts); err != nil {
		return nil, err
	}
	var targetEnv map[string]any
	if c := r.Spec.Target.Command; c != nil {
		targetEnv = map[string]any{"target.command.env": c.Env}
	}
	if err := checkArgoLiterals(r.Spec.Pod, r.Spec.Hooks, targetEnv); err != nil {
		return nil, err
	}
	target, err := argoJSON(r.Spec.Target)
	if err != nil {
		return nil, err
	}
	patch := newPodPatch()
	patch.progress = true
	patch.resources(r.Spec.Pod)
	patch.identity(in.Identity)
	engine, err := source.ForTarget(r.Spec.Target)
	if err != nil {
		return nil, err
	}
	restorePod := engine.RestorePod(r.Spec.Target)
	image := engineImage(restorePod, opts)
	patch.enginePod(restorePod)

	choices := restoreChoices(r.Spec)
	deadlines := r.Spec.StepDeadlineSeconds
	if deadlines == nil {
		deadlines = &v1.RestoreStepDeadlines{}
	}
	// The pod patch of each step, for the Strict run template's parameters.
	patches := map[string]*podPatch{StepRestore: patch}
	hook := func(step string) wfv1.DAGTask {
		task, patch := hookTask(choices.hook(step), defaultRetries, opts)
		patches[step] = patch
		return task
	}
	tasks := map[string]func() wfv1.DAGTask{
		StepPreHook:  func() wfv1.DAGTask { return hook(StepPreHook) },
		StepPostHook: func() wfv1.DAGTask { return hook(StepPostHook) },
		StepVerify: func() wfv1.DAGTask {
			verifyPatch := newPodPatch()
			verifyPatch.progress = true
			patches[StepVerify] = verifyPatch
			verifyPatch.identity(in.Identity)
			return wfv1.DAGTask{
				TemplateRef: &wfv1.TemplateRef{Name: TemplateVerify, Template: EntryVerify, ClusterScope: true},
				Arguments: wfv1.Arguments{Parameters: concat(in.Storage.params(r.Namespace, StepVerify), stepArgs(opts.Image, verifyPatch, defaultRetries, deadline(EntryVerify, deadlines.Verify), opts),
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
				Arguments: wfv1.Arguments{Parameters: concat(in.Storage.params(r.Namespace, StepRestore), stepArgs(image, patch, defaultRetries, deadline(EntryRestore, deadlines.Restore), opts),
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
	if err := checkPatches(patches); err != nil {
		return nil, err
	}
	ws := workflowSpec(r.Spec.ServiceAccountName, r.Spec.ActiveDeadlineSeconds, r.Spec.Pod, opts)
	ws.Entrypoint = templates[0].Name
	ws.Templates = templates
	if ws, err = restoreSteps.withNotify(ws, r.Spec.Notify, patches, opts); err != nil {
		return nil, err
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

// restoreChoices are what a Restore's spec decides about its run's steps.
func restoreChoices(spec v1.RestoreSpec) runChoices {
	choices := runChoices{verify: spec.VerifyBeforeRestore == nil || *spec.VerifyBeforeRestore}
	if h := spec.Hooks; h != nil {
		choices.preHook, choices.postHook = h.Pre, h.Post
	}
	return choices
}

// RestoreStorageSteps are the steps of a Restore's run that use its storage,
// in the order they run.
func RestoreStorageSteps(spec v1.RestoreSpec) []StorageStep {
	d := spec.StepDeadlineSeconds
	if d == nil {
		d = &v1.RestoreStepDeadlines{}
	}
	return restoreSteps.plan(restoreChoices(spec)).storageSteps(map[string]*int32{StepVerify: d.Verify, StepRestore: d.Restore})
}
