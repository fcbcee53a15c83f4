package compiler

import (
	"fmt"
	"strconv"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/storage"
)

// ClusterWorkflowTemplates are the stage templates compiled Workflows call
// by templateRef. `make generate` writes them to workflowtemplates/.
func ClusterWorkflowTemplates(opts Options) []*wfv1.ClusterWorkflowTemplate {
	cwt := func(name, description string, templates ...wfv1.Template) *wfv1.ClusterWorkflowTemplate {
		return clusterWorkflowTemplate(name, description, wfv1.WorkflowSpec{Templates: templates})
	}
	return []*wfv1.ClusterWorkflowTemplate{
		cwt(TemplateHook, "backflow hooks: run a command in a container of a running pod (exec-hook), or in a container of its own (container-hook).",
			execHookTemplate(opts), containerHookTemplate()),
		cwt(TemplateDump, "backflow dump: stream a database, volume or command through compression, age encryption and sha256 into S3, and write a manifest beside the object.",
			dumpTemplate(opts)),
		cwt(TemplateVerify, "backflow verify: read a backup back, decrypt, decompress and re-check its checksums; optionally restore it into a scratch database.",
			verifyTemplate(opts)),
		cwt(TemplateRestore, "backflow restore: stream a backup back into a database, a volume or a command's standard input, checking its checksum first.",
			restoreTemplate(opts)),
		cwt(TemplateRotate, "backflow rotate: apply retention (days, keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly) to the backups whose manifest names one series; never deletes the newest verified backup, nor anything of another series.",
			rotateTemplate(opts)),
		cwt(TemplateNotify, "backflow notify: send a run's notifications (a signed JSON webhook, a Slack message, dead man's switch pings) from its exit handler or running hook; the targets' URLs come from a Secret, never from a parameter.",
			notifyTemplate(opts)),
		backupSteps.clusterTemplate(opts),
		restoreSteps.clusterTemplate(opts),
	}
}

// clusterWorkflowTemplate is one of the ClusterWorkflowTemplates backflow
// installs, described for the Argo UI.
func clusterWorkflowTemplate(name, description string, spec wfv1.WorkflowSpec) *wfv1.ClusterWorkflowTemplate {
	return &wfv1.ClusterWorkflowTemplate{
		TypeMeta: argoTypeMeta(workflow.ClusterWorkflowTemplateKind),
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{labelPartOf: partOfBackflow},
			Annotations: map[string]string{annotationDescription: description},
		},
		Spec: spec,
	}
}

// argoTypeMeta is the type of an Argo object: the compiler's output is
// marshalled, into golden files and workflowtemplates/, with its type.
func argoTypeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: workflow.APIVersion, Kind: kind}
}

// uiAnnotations are the title and description the Argo UI shows for a
// Workflow or CronWorkflow.
func uiAnnotations(title, description string) map[string]string {
	return map[string]string{annotationTitle: title, annotationDescription: description}
}

func param(name string, def ...string) wfv1.Parameter {
	p := wfv1.Parameter{Name: name}
	if len(def) > 0 {
		p.Default = wfv1.AnyStringPtr(def[0])
	}
	return p
}

func in(name string) string { return fmt.Sprintf("{{inputs.parameters.%s}}", name) }

// cliFlag passes an input parameter as --name=value, one argument whatever the
// value holds: nothing is ever run through a shell.
func cliFlag(flagName, paramName string) string { return "--" + flagName + "=" + in(paramName) }

// storageParams are the parameters of every template that reads or writes
// storage: the storage URL, the Secret and keys of the credentials, and the
// key prefix. backflow's Workflows pass the run Secret and the step's own
// keys (RunCredentialsSecret, CredentialKeys); the defaults are the AWS
// names, for a Secret of one's own. The session token is optional: the step
// runs without one when the Secret lacks its key. The key prefix confines the
// step's keys to a namespace's prefix; empty (a platform team's own
// Workflow) confines nothing.
func storageParams() []wfv1.Parameter {
	return []wfv1.Parameter{
		param(ParamStorage), param(ParamStorageSecret),
		param(ParamAccessKeyKey, v1.DefaultAccessKeyIDKey), param(ParamSecretKeyKey, v1.DefaultSecretAccessKeyKey),
		param(ParamSessionTokenKey, storage.EnvSessionToken),
		param(ParamKeyPrefix, ""),
	}
}

// storageArgs are the arguments of a stage command that reads or writes
// storage: the command, the flags of storageParams, then the stage's own.
func storageArgs(command string, args ...string) []string {
	return append([]string{command, cliFlag("storage", ParamStorage), cliFlag("key-prefix", ParamKeyPrefix)}, args...)
}

// storageEnv gives the step the storage credentials, by reference. The
// access keys are required: the container starts only once the run Secret
// exists, which the controller writes after creating the Workflow.
func storageEnv() []corev1.EnvVar {
	ref := func(env, keyParam string, optional bool) corev1.EnvVar {
		sel := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: in(ParamStorageSecret)}, Key: in(keyParam)}
		if optional {
			sel.Optional = ptr(true)
		}
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: sel}}
	}
	return []corev1.EnvVar{
		ref(storage.EnvAccessKeyID, ParamAccessKeyKey, false), ref(storage.EnvSecretAccessKey, ParamSecretKeyKey, false),
		ref(storage.EnvSessionToken, ParamSessionTokenKey, true),
	}
}

// stepTemplate is a container template running `backflow ARGS` in the image
// parameter, with the backflow binary copied in by an init container from
// the backflow image, so that any image with the client tools can run it.
func stepTemplate(opts Options, name string, params []wfv1.Parameter, env []corev1.EnvVar, args ...string) wfv1.Template {
	mount := corev1.VolumeMount{Name: binaryVolume, MountPath: BinaryDir}
	return wfv1.Template{
		Name: name,
		Inputs: wfv1.Inputs{Parameters: append([]wfv1.Parameter{
			param(ParamImage, opts.Image), param(ParamBackflowImage, opts.Image),
			param(ParamPodSpecPatch, defaultPodSpecPatch), param(ParamRetries, defaultRetries),
			param(ParamDeadline, deadline(name, nil)),
		}, params...)},
		InitContainers: []wfv1.UserContainer{{Container: corev1.Container{
			Name:            installContainer,
			Image:           in(ParamBackflowImage),
			ImagePullPolicy: opts.ImagePullPolicy,
			Command:         []string{binaryName, "install", BinaryPath},
			VolumeMounts:    []corev1.VolumeMount{mount},
		}}},
		Container: &corev1.Container{
			Image:           in(ParamImage),
			ImagePullPolicy: opts.ImagePullPolicy,
			Command:         []string{BinaryPath},
			Args:            args,
			Env:             env,
			VolumeMounts:    []corev1.VolumeMount{mount},
		},
		Volumes:      []corev1.Volume{{Name: binaryVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		PodSpecPatch: in(ParamPodSpecPatch),
		// A stalled step fails instead of holding up its run and, under a
		// schedule whose concurrencyPolicy is Forbid, every run after it.
		ActiveDeadlineSeconds: ptr(intstr.FromString(in(ParamDeadline))),
		RetryStrategy:         retryStrategy(),
		// The step's container never calls the Kubernetes API: it gets no
		// token (a cloud identity's own projected token, which its webhook
		// mounts, is not this one).
		AutomountServiceAccountToken: ptr(false),
		Executor:                     executor(),
	}
}

// executor is Argo's executor's account, set on every template (and every
// compiled Workflow) beside automountServiceAccountToken: Argo mounts its
// token into the wait container alone, which reports the step's outputs as
// WorkflowTaskResults, and refuses a template without a token and without an
// executor account. On each template, so that a Workflow of a platform team
// calling the stage templates gets the same.
func executor() *wfv1.ExecutorConfig {
	return &wfv1.ExecutorConfig{ServiceAccountName: ExecutorServiceAccount}
}

func outputs(names ...string) wfv1.Outputs {
	var o wfv1.Outputs
	for _, n := range names {
		o.Parameters = append(o.Parameters, wfv1.Parameter{Name: n, ValueFrom: &wfv1.ValueFrom{Path: OutputsDir + "/" + n}})
	}
	return o
}

// storageStepTemplate is the stepTemplate of a stage that reads or writes
// storage: the credentials come from the storage Secret (storageEnv), and
// so does the storage's CA bundle, under RunCAKey. Its volume is optional: a
// Secret without that key mounts an empty directory, and the storage URL
// names the CA file only for a storage with a CA. Nothing of it is a pod
// spec patch, so that no Argo tag has to pass through one (the run Secret's
// name is RunCredentialsSecret).
func storageStepTemplate(opts Options, name string, params []wfv1.Parameter, args ...string) wfv1.Template {
	t := stepTemplate(opts, name, params, storageEnv(), args...)
	t.Volumes = append(t.Volumes, corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: in(ParamStorageSecret), Items: []corev1.KeyToPath{{Key: RunCAKey, Path: RunCAKey}}, Optional: ptr(true),
	}}})
	t.Container.VolumeMounts = append(t.Container.VolumeMounts, corev1.VolumeMount{Name: caVolume, MountPath: CADir, ReadOnly: true})
	return t
}

func dumpTemplate(opts Options) wfv1.Template {
	params := append(storageParams(),
		param(ParamSource), param(ParamPath, DefaultPath), param(ParamNamespace, "{{workflow.namespace}}"),
		param(ParamName), param(ParamSeries), param(ParamStorageID, ""), param(ParamCompression, defaultCompression), param(ParamLevel, defaultCompressLevel),
		param(ParamRecipients, ""), param(ParamExpectedSize, "0"))
	t := storageStepTemplate(opts, EntryDump, params, storageArgs("dump",
		cliFlag("source", ParamSource), cliFlag("path", ParamPath),
		cliFlag("namespace", ParamNamespace), cliFlag("name", ParamName), cliFlag("series", ParamSeries), cliFlag("storage-id", ParamStorageID),
		cliFlag("compression", ParamCompression), cliFlag("level", ParamLevel), cliFlag("recipient", ParamRecipients),
		cliFlag("expected-size", ParamExpectedSize), "--recipients-env="+envRecipients, "--volume-root="+VolumeRoot, "--outputs-dir="+OutputsDir)...)
	t.Outputs = outputs(OutputKey, OutputSize, OutputRawSize, OutputChecksum, OutputRawChecksum)
	return withGlobalOutputs(reportsProgress(t))
}

// reportsProgress makes the default pod spec patch of a stage template
// that moves data the one that has Argo's executor report its progress
// every ProgressReportInterval; backflow's own Workflows pass a patch that
// does the same.
func reportsProgress(t wfv1.Template) wfv1.Template {
	for i, p := range t.Inputs.Parameters {
		if p.Name == ParamPodSpecPatch {
			t.Inputs.Parameters[i].Default = wfv1.AnyStringPtr(progressPodSpecPatch())
		}
	}
	return t
}

func verifyTemplate(opts Options) wfv1.Template {
	params := append(storageParams(), param(ParamKey), param(ParamRestoreTest, ""), param(ParamEngine, ""),
		param(ParamNamespace, "{{workflow.namespace}}"), param(ParamExpectChecksum, ""), param(ParamMarkVerified, "true"))
	t := storageStepTemplate(opts, EntryVerify, params, storageArgs("verify",
		cliFlag("key", ParamKey), cliFlag("restore-test", ParamRestoreTest), cliFlag("engine", ParamEngine),
		cliFlag("namespace", ParamNamespace), cliFlag("expect-checksum", ParamExpectChecksum), cliFlag("mark-verified", ParamMarkVerified),
		"--identity-dir="+IdentityDir, "--outputs-dir="+OutputsDir)...)
	t.Outputs = outputs(OutputKey, OutputSize, OutputRawSize, OutputChecksum, OutputRawChecksum)
	return reportsProgress(t)
}

func restoreTemplate(opts Options) wfv1.Template {
	params := append(storageParams(), param(ParamKey), param(ParamTarget), param(ParamVerifyFirst, "true"),
		param(ParamNamespace, "{{workflow.namespace}}"), param(ParamExpectChecksum, ""))
	t := storageStepTemplate(opts, EntryRestore, params, storageArgs("restore",
		cliFlag("key", ParamKey), cliFlag("target", ParamTarget), cliFlag("verify-first", ParamVerifyFirst),
		cliFlag("namespace", ParamNamespace), cliFlag("expect-checksum", ParamExpectChecksum), "--identity-dir="+IdentityDir, "--volume-root="+VolumeRoot, "--outputs-dir="+OutputsDir)...)
	t.Outputs = outputs(OutputKey, OutputSize, OutputRawSize, OutputChecksum)
	return withGlobalOutputs(reportsProgress(t))
}

// retentionParams are the rotate step's rules, one parameter each, named
// after its flag; noRule for a rule the spec does not set.
var retentionParams = []string{ParamDays, ParamKeepLast, ParamKeepHourly, ParamKeepDaily, ParamKeepWeekly, ParamKeepMonthly, ParamKeepYearly}

func rotateTemplate(opts Options) wfv1.Template {
	params := append(storageParams(), param(ParamKey), param(ParamPath, DefaultPath), param(ParamNamespace, "{{workflow.namespace}}"),
		param(ParamSeries), param(ParamStorageID, ""), param(ParamTimezone, defaultTimezone))
	args := storageArgs("rotate", cliFlag("key", ParamKey), cliFlag("path", ParamPath),
		cliFlag("namespace", ParamNamespace), cliFlag("series", ParamSeries), cliFlag("storage-id", ParamStorageID), cliFlag("timezone", ParamTimezone))
	for _, name := range retentionParams {
		params = append(params, param(name, noRule))
		args = append(args, cliFlag(name, name))
	}
	t := storageStepTemplate(opts, EntryRotate, params, append(args, "--outputs-dir="+OutputsDir)...)
	t.Outputs = outputs(OutputRotation)
	return t
}

func execHookTemplate(opts Options) wfv1.Template {
	params := []wfv1.Parameter{
		param(ParamNamespace, "{{workflow.namespace}}"), param(ParamHookPod, ""), param(ParamHookSelector, ""),
		param(ParamHookContainer, ""), param(ParamHookCommand), param(ParamTimeout, strconv.Itoa(defaultHookTimeout)),
		param(ParamHookOnError, "Fail"),
	}
	t := stepTemplate(opts, EntryExecHook, params, nil, "hook",
		cliFlag("namespace", ParamNamespace), cliFlag("pod", ParamHookPod), cliFlag("selector", ParamHookSelector),
		cliFlag("container", ParamHookContainer), cliFlag("command-json", ParamHookCommand), cliFlag("timeout-seconds", ParamTimeout),
		cliFlag("on-error", ParamHookOnError))
	// The one step that calls the API (it finds the pod and execs into it)
	// runs as an account of its own, with its token; the template's account
	// comes before the Workflow's, so a resource's serviceAccountName does
	// not reach it.
	t.ServiceAccountName = HookServiceAccount
	t.AutomountServiceAccountToken = ptr(true)
	return t
}

// containerHookTemplate runs the user's own container; the pod spec patch
// sets its command, arguments and environment.
func containerHookTemplate() wfv1.Template {
	return wfv1.Template{
		Name: EntryContainerHook,
		Inputs: wfv1.Inputs{Parameters: []wfv1.Parameter{
			param(ParamImage), param(ParamPodSpecPatch, defaultPodSpecPatch), param(ParamTimeout, strconv.Itoa(defaultHookTimeout)),
			param(ParamRetries, defaultRetries),
		}},
		Container:             &corev1.Container{Image: in(ParamImage)},
		PodSpecPatch:          in(ParamPodSpecPatch),
		ActiveDeadlineSeconds: ptr(intstr.FromString(in(ParamTimeout))),
		// The user's container follows the steps' contract: exit
		// ExitCodeRetry to be tried again.
		RetryStrategy:                retryStrategy(),
		AutomountServiceAccountToken: ptr(false),
		Executor:                     executor(),
	}
}

func ptr[T any](v T) *T { return &v }
