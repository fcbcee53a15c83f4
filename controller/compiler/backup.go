package compiler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/apis/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
	_ "github.com/backflow-dev/backflow/stages/source/engines"
	"github.com/backflow-dev/backflow/stages/storage"
)

// StorageAccess is the BackupStorage a resource uses, as the reconciler
// resolved it. Its steps read the credentials, and the CA bundle, from the
// run's Secret (RunCredentialsSecret), whatever namespace the storage is in.
type StorageAccess struct {
	Storage *v1.BackupStorage
}

// S3Config is the backend configuration of a storage spec, without the
// credentials and the CA bundle, which the controller and the steps each
// read from where they find them.
func S3Config(s3 v1.S3Storage) storage.S3Config {
	cfg := storage.S3Config{
		Endpoint: s3.Endpoint, Bucket: s3.Bucket, Prefix: s3.Prefix, Region: s3.Region,
		PathStyle: s3.ForcePathStyle, PartSizeMiB: int(s3.PartSizeMiB),
	}
	if s3.TLS != nil {
		cfg.InsecureSkipVerify = s3.TLS.InsecureSkipVerify
	}
	return cfg
}

// HasCA says whether the storage names a CA bundle, which the run Secret
// then holds under RunCAKey.
func (a StorageAccess) HasCA() bool {
	tls := a.Storage.Spec.S3.TLS
	return tls != nil && (tls.CASecretRef != nil || tls.CAConfigMapRef != nil)
}

// URL is the storage URL the stages open.
func (a StorageAccess) URL() string {
	cfg := S3Config(a.Storage.Spec.S3)
	if a.HasCA() {
		cfg.CAFile = CAFile
	}
	return cfg.URL()
}

// ID names the storage as the manifest records it (v1alpha1.BackupStorage.ID).
func (a StorageAccess) ID() string { return a.Storage.ID() }

// params are the storage arguments of a step of a resource in namespace:
// the storage URL, where in the run Secret the step's own credentials are
// (stepCredentials), and the namespace's prefix, which the step checks every
// key against again.
func (a StorageAccess) params(namespace, step string) []wfv1.Parameter {
	params := []wfv1.Parameter{value(ParamStorage, a.URL()), value(ParamKeyPrefix, a.Storage.NamespacePrefix(namespace))}
	for _, name := range []string{ParamStorageSecret, ParamAccessKeyKey, ParamSecretKeyKey, ParamSessionTokenKey} {
		params = append(params, value(name, stepCredentials(step)[name]))
	}
	return params
}

// stepCredentials are the arguments that point a step at its credentials in
// the run Secret: the same in every run, fixed arguments of the run
// templates.
func stepCredentials(step string) map[string]string {
	id, secret, token := CredentialKeys(step)
	return map[string]string{ParamStorageSecret: RunCredentialsSecret, ParamAccessKeyKey: id, ParamSecretKeyKey: secret, ParamSessionTokenKey: token}
}

// BackupInput is a Backup with what the reconciler resolved for it.
type BackupInput struct {
	Backup  *v1.Backup
	Storage StorageAccess
	// AgeRecipient is the recipient of the identity in the Secret of
	// spec.encryption.age.generate, which the reconciler found or created.
	AgeRecipient string
	// ExpectedSize is the raw size of the series' previous verified
	// backup, which the dump's progress counts against; 0 when there is
	// none (the dump asks the source for an estimate).
	ExpectedSize int64
}

// WorkflowName is the name of the Workflow that runs a Backup or Restore:
// the resource's own name, so that a restarted controller finds it, and so
// that the Workflows a CronWorkflow starts name their Backups.
func WorkflowName(resourceName string) string { return resourceName }

// Backup compiles a Backup into the Workflow that runs it.
func Backup(in BackupInput, opts Options) (*wfv1.Workflow, error) {
	b := in.Backup
	if err := CheckBackupImages("spec.", b.Spec, opts); err != nil {
		return nil, err
	}
	// A one-shot Backup has no schedule whose time zone its retention's
	// calendar could follow: it uses UTC.
	spec, err := backupWorkflowSpec(b.Namespace, b.Spec, b.SeriesName(), defaultTimezone, value(ParamName, b.Name), in.Storage, in.AgeRecipient, in.ExpectedSize, opts)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{v1.LabelBackup: b.Name, v1.LabelNamespace: b.Namespace}
	if s := b.Labels[v1.LabelSchedule]; s != "" {
		labels[v1.LabelSchedule] = s
	}
	return &wfv1.Workflow{
		TypeMeta: argoTypeMeta(workflow.WorkflowKind),
		ObjectMeta: metav1.ObjectMeta{
			Name: WorkflowName(b.Name), Namespace: b.Namespace, Labels: labels,
			Annotations: uiAnnotations(fmt.Sprintf("Backup %s/%s", b.Namespace, b.Name), describeBackup(b.Spec, in.Storage)),
		},
		Spec: *spec,
	}, nil
}

// backupWorkflowSpec is the DAG pre-hook -> dump -> verify -> post-hook ->
// rotate, with the steps the spec does not need left out. name is the
// backup-name argument: the Backup's name, or {{workflow.name}} in a
// CronWorkflow; timezone is the one of retention's calendar; ageRecipient
// the recipient of encryption.age.generate's identity; expectedSize the
// dump's expected raw size (0 for none).
func backupWorkflowSpec(namespace string, spec v1.BackupSpec, series, timezone string, name wfv1.Parameter, st StorageAccess, ageRecipient string, expectedSize int64, opts Options) (*wfv1.WorkflowSpec, error) {
	if err := checkExecHooks(spec.Hooks, opts); err != nil {
		return nil, err
	}
	engine, err := source.ForSource(spec.Source)
	if err != nil {
		return nil, err
	}
	var sourceEnv map[string]any
	if c := spec.Source.Command; c != nil {
		sourceEnv = map[string]any{"source.command.env": c.Env}
	}
	if err := checkArgoLiterals(spec.Pod, spec.Hooks, sourceEnv); err != nil {
		return nil, err
	}
	if err := engine.CheckSource(spec.Source); err != nil {
		return nil, fmt.Errorf("spec.source.%w", err)
	}
	sourceJSON, err := argoJSON(spec.Source)
	if err != nil {
		return nil, err
	}
	compression, level := defaultCompression, defaultCompressLevel
	if c := spec.Compression; c != nil {
		if c.Algorithm != "" {
			compression = string(c.Algorithm)
		}
		if c.Level != nil {
			level = strconv.Itoa(int(*c.Level))
		}
	}
	retries := defaultRetries
	if spec.Retries != nil {
		retries = strconv.Itoa(int(*spec.Retries))
	}
	var recipients []string
	var recipientsSecret *v1.SecretKeySelector
	var identity *v1.SecretKeySelector
	if e := spec.Encryption; e != nil && e.Age != nil {
		recipients, recipientsSecret, identity = e.Age.Recipients, e.Age.RecipientsSecretRef, e.Age.Identity()
		if e.Age.Generate != nil {
			// Only the public half reaches the dump: the identity stays in
			// its Secret, which verify (and a Restore) mount.
			if ageRecipient == "" {
				return nil, fmt.Errorf("spec.encryption.age.generate: the recipient of Secret %s was not resolved", e.Age.Generate.SecretName)
			}
			recipients = append(slices.Clone(recipients), ageRecipient)
		}
	}

	dumpPatch := newPodPatch()
	dumpPatch.progress = true
	dumpPatch.resources(spec.Pod)
	dumpPatch.recipientsSecret = recipientsSecret
	dumpPod := engine.DumpPod(spec.Source)
	image := engineImage(dumpPod, opts)
	dumpPatch.enginePod(dumpPod)
	path, err := backupPath(spec.Storage.Path, namespace, series, st)
	if err != nil {
		return nil, err
	}

	choices := backupChoices(spec)
	deadlines := spec.StepDeadlineSeconds
	if deadlines == nil {
		deadlines = &v1.BackupStepDeadlines{}
	}
	// The pod patch of each step, for the Strict run template's parameters.
	patches := map[string]*podPatch{StepDump: dumpPatch}
	hook := func(step string) (wfv1.DAGTask, error) {
		task, patch := hookTask(choices.hook(step), retries, opts)
		patches[step] = patch
		return task, nil
	}
	tasks := map[string]func() (wfv1.DAGTask, error){
		StepPreHook:  func() (wfv1.DAGTask, error) { return hook(StepPreHook) },
		StepPostHook: func() (wfv1.DAGTask, error) { return hook(StepPostHook) },
		StepDump: func() (wfv1.DAGTask, error) {
			return wfv1.DAGTask{
				TemplateRef: &wfv1.TemplateRef{Name: TemplateDump, Template: EntryDump, ClusterScope: true},
				Arguments: wfv1.Arguments{Parameters: concat(st.params(namespace, StepDump), stepArgs(image, dumpPatch, retries, deadline(EntryDump, deadlines.Dump), opts),
					value(ParamSource, sourceJSON), value(ParamPath, path), value(ParamNamespace, namespace),
					name, value(ParamSeries, series), value(ParamStorageID, st.ID()), value(ParamCompression, compression), value(ParamLevel, level),
					value(ParamRecipients, strings.Join(recipients, "\n")), value(ParamExpectedSize, strconv.FormatInt(max(expectedSize, 0), 10)),
				)},
			}, nil
		},
		StepVerify: func() (wfv1.DAGTask, error) {
			verifyPatch := newPodPatch()
			verifyPatch.progress = true
			patches[StepVerify] = verifyPatch
			verifyPatch.resources(spec.Pod)
			verifyPatch.identity(identity)
			verifyImage, restoreTest, scratchEngine := opts.Image, "", ""
			if spec.Verify != nil && spec.Verify.RestoreTest != nil {
				rt := spec.Verify.RestoreTest
				data, err := argoJSON(rt)
				if err != nil {
					return wfv1.DAGTask{}, err
				}
				restoreTest = data
				verifyImage = image
				if rt.Connection != nil {
					tester, ok := engine.(source.RestoreTester)
					if !ok {
						return wfv1.DAGTask{}, fmt.Errorf("spec.verify.restoreTest: a %s source has no scratch database to restore into", engine.Name())
					}
					verifyPatch.connection(*rt.Connection)
					scratchEngine = tester.ScratchEngine(spec.Source)
				}
			}
			return wfv1.DAGTask{
				TemplateRef: &wfv1.TemplateRef{Name: TemplateVerify, Template: EntryVerify, ClusterScope: true},
				Arguments: wfv1.Arguments{Parameters: concat(st.params(namespace, StepVerify), stepArgs(verifyImage, verifyPatch, retries, deadline(EntryVerify, deadlines.Verify), opts),
					value(ParamKey, dumpedKey), value(ParamExpectChecksum, dumpedChecksum), value(ParamRestoreTest, restoreTest), value(ParamEngine, scratchEngine), value(ParamNamespace, namespace),
				)},
			}, nil
		},
		StepRotate: func() (wfv1.DAGTask, error) {
			r := spec.Retention
			set := map[string]*int32{
				ParamDays: r.Days, ParamKeepLast: r.KeepLast, ParamKeepHourly: r.KeepHourly, ParamKeepDaily: r.KeepDaily,
				ParamKeepWeekly: r.KeepWeekly, ParamKeepMonthly: r.KeepMonthly, ParamKeepYearly: r.KeepYearly,
			}
			var rules []wfv1.Parameter
			for _, name := range retentionParams {
				if n := set[name]; n != nil {
					rules = append(rules, value(name, strconv.Itoa(int(*n))))
				}
			}
			rotatePatch := newPodPatch()
			patches[StepRotate] = rotatePatch
			return wfv1.DAGTask{
				TemplateRef: &wfv1.TemplateRef{Name: TemplateRotate, Template: EntryRotate, ClusterScope: true},
				Arguments: wfv1.Arguments{Parameters: concat(st.params(namespace, StepRotate), stepArgs(opts.Image, rotatePatch, retries, deadline(EntryRotate, deadlines.Rotate), opts),
					append([]wfv1.Parameter{value(ParamKey, dumpedKey), value(ParamPath, path), value(ParamNamespace, namespace),
						value(ParamSeries, series), value(ParamStorageID, st.ID()), value(ParamTimezone, timezone)}, rules...)...,
				)},
			}, nil
		},
	}
	templates, err := backupSteps.plan(choices).inline(func(step string) (wfv1.DAGTask, error) { return tasks[step]() })
	if err != nil {
		return nil, err
	}
	if err := checkPatches(patches); err != nil {
		return nil, err
	}
	ws := workflowSpec(spec.ServiceAccountName, spec.ActiveDeadlineSeconds, spec.Pod, opts)
	ws.Entrypoint = templates[0].Name
	ws.Templates = templates
	return backupSteps.withNotify(ws, spec.Notify, patches, opts)
}

// backupChoices are what a Backup's spec decides about its run's steps.
func backupChoices(spec v1.BackupSpec) runChoices {
	verify := spec.Verify == nil || spec.Verify.Checksum == nil || *spec.Verify.Checksum
	choices := runChoices{verify: verify, rotate: spec.Retention != nil}
	if h := spec.Hooks; h != nil {
		choices.preHook, choices.postHook = h.Pre, h.Post
	}
	return choices
}

// StorageStep is a step of a run that uses the storage, with its deadline:
// the controller gives each such step credentials of its own
// (CredentialKeys) that last at least that long.
type StorageStep struct {
	Name     string
	Deadline time.Duration
}

// BackupStorageSteps are the steps of a Backup's run that use its storage,
// in the order they run.
func BackupStorageSteps(spec v1.BackupSpec) []StorageStep {
	d := spec.StepDeadlineSeconds
	if d == nil {
		d = &v1.BackupStepDeadlines{}
	}
	return backupSteps.plan(backupChoices(spec)).storageSteps(map[string]*int32{StepDump: d.Dump, StepVerify: d.Verify, StepRotate: d.Rotate})
}

// workflowSpec holds what every compiled Workflow sets: who the steps run
// as, for how long, where, and how long Argo keeps the Workflow. The steps'
// pods run as the resource's account (a cloud identity) without its token;
// Argo's executor as ExecutorServiceAccount, the exec hook as
// HookServiceAccount (its template says so).
func workflowSpec(serviceAccount string, deadline *int64, pod *v1.PodOverrides, opts Options) *wfv1.WorkflowSpec {
	ws := &wfv1.WorkflowSpec{
		ServiceAccountName:           cmp.Or(serviceAccount, ExecutorServiceAccount),
		AutomountServiceAccountToken: ptr(false),
		Executor:                     executor(),
		ActiveDeadlineSeconds:        deadline,
		// Failed pods stay for their logs until the Workflow goes.
		PodGC: &wfv1.PodGC{Strategy: wfv1.PodGCOnPodSuccess},
		TTLStrategy: &wfv1.TTLStrategy{
			SecondsAfterSuccess: ptr(opts.SuccessTTLSeconds),
			SecondsAfterFailure: ptr(opts.FailureTTLSeconds),
		},
	}
	if pod != nil {
		ws.NodeSelector = pod.NodeSelector
		ws.Tolerations = pod.Tolerations
		ws.SecurityContext = pod.SecurityContext
		ws.PodPriorityClassName = pod.PriorityClassName
		if len(pod.Labels) > 0 || len(pod.Annotations) > 0 {
			ws.PodMetadata = &wfv1.Metadata{Labels: pod.Labels, Annotations: pod.Annotations}
		}
	}
	return ws
}

// checkExecHooks refuses an exec hook when the controller runs without them
// (the chart's hooks.exec is false): no account may exec into pods then, and
// the hook would fail only once its pod asked the API.
func checkExecHooks(hooks *v1.Hooks, opts Options) error {
	if hooks == nil || opts.ExecHooks {
		return nil
	}
	for _, h := range []struct {
		field string
		hook  *v1.Hook
	}{{"pre", hooks.Pre}, {"post", hooks.Post}} {
		if h.hook != nil && h.hook.Exec != nil {
			return fmt.Errorf("spec.hooks.%s.exec: exec hooks are turned off in this installation (the chart's hooks.exec is false): use a container hook, or ask for hooks.exec=true", h.field)
		}
	}
	return nil
}

// hookTask runs a hook: an exec into a pod with the backflow image, or the
// user's container, with its pod patch (nil for an exec hook).
func hookTask(h *v1.Hook, retries string, opts Options) (wfv1.DAGTask, *podPatch) {
	timeout := cmp.Or(h.TimeoutSeconds, defaultHookTimeout)
	var task wfv1.DAGTask
	if e := h.Exec; e != nil {
		// A []string always marshals.
		command, _ := argoJSON(e.Command)
		selector := ""
		if e.PodSelector != nil {
			selector = metav1.FormatLabelSelector(e.PodSelector)
		}
		task.TemplateRef = &wfv1.TemplateRef{Name: TemplateHook, Template: EntryExecHook, ClusterScope: true}
		// The Strict run template builds its own patch, with nothing for an
		// exec hook: the patch is for an inline Workflow only.
		patch := newPodPatch()
		patch.inBackflowImage = true
		task.Arguments.Parameters = []wfv1.Parameter{
			value(ParamImage, opts.Image), value(ParamBackflowImage, opts.Image), value(ParamPodSpecPatch, patch.String()),
			value(ParamHookPod, e.PodName), value(ParamHookSelector, selector), value(ParamHookContainer, e.Container),
			value(ParamHookCommand, command), value(ParamTimeout, strconv.Itoa(int(timeout))), value(ParamHookOnError, string(cmp.Or(string(h.OnError), "Fail"))),
			value(ParamRetries, retries), value(ParamDeadline, strconv.Itoa(int(timeout+hookDeadlineMargin))),
		}
		return task, nil
	}
	c := h.Container
	patch := newPodPatch()
	patch.command, patch.args, patch.env = c.Command, c.Args, c.Env
	task.TemplateRef = &wfv1.TemplateRef{Name: TemplateHook, Template: EntryContainerHook, ClusterScope: true}
	task.Arguments.Parameters = []wfv1.Parameter{
		value(ParamImage, c.Image), value(ParamPodSpecPatch, patch.String()), value(ParamTimeout, strconv.Itoa(int(timeout))),
		value(ParamRetries, retries),
	}
	return task, patch
}

func describeBackup(spec v1.BackupSpec, st StorageAccess) string {
	// Backup compiled the spec: its source names an engine.
	engine, _ := source.ForSource(spec.Source)
	how := defaultCompression
	if spec.Compression != nil && spec.Compression.Algorithm != "" {
		how = string(spec.Compression.Algorithm)
	}
	if spec.Encryption != nil && spec.Encryption.Age != nil {
		how += ", age-encrypted"
	}
	s3 := st.Storage.Spec.S3
	return fmt.Sprintf("%s to s3://%s/%s (BackupStorage %s), %s", engine.DescribeSource(spec.Source), s3.Bucket, s3.Prefix, st.Storage.Name, how)
}

// engineImage is the image an engine's step runs in: the spec's own, or the
// controller's client image the engine names, or the backflow image.
func engineImage(pod source.Pod, opts Options) string {
	switch {
	case pod.Image != "":
		return pod.Image
	case pod.ClientImage != "":
		return opts.ClientImages[pod.ClientImage]
	}
	return opts.Image
}

// stepArgs are the arguments every backflow step takes: the image to run in,
// the backflow image to copy the binary from, the pod spec patch, the
// retries and the deadline.
func stepArgs(image string, patch *podPatch, retries, deadline string, opts Options) []wfv1.Parameter {
	patch.inBackflowImage = image == opts.Image
	return []wfv1.Parameter{
		value(ParamImage, image), value(ParamBackflowImage, opts.Image),
		value(ParamPodSpecPatch, patch.String()), value(ParamRetries, retries), value(ParamDeadline, deadline),
	}
}

func concat(lists []wfv1.Parameter, more []wfv1.Parameter, rest ...wfv1.Parameter) []wfv1.Parameter {
	out := append(append(append([]wfv1.Parameter(nil), lists...), more...), rest...)
	return out
}

func value(name, v string) wfv1.Parameter {
	return wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr(v)}
}
