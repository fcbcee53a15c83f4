// Package argotest runs the real Argo workflow-controller against an envtest
// control plane, with KWOK faking a node whose pods end the way the test
// says. No kubelet runs: the test stands in for Argo's executor by reporting
// step outputs as WorkflowTaskResults, as Argo's wait container would.
package argotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/test/envtest"
	"github.com/backflow-dev/backflow/test/servers"
	"github.com/backflow-dev/backflow/test/tools"
)

// NodeName is the fake node every step pod is placed on.
const NodeName = "kwok-node"

// labelWorkflow names the Workflow of a pod Argo created.
const labelWorkflow = "workflows.argoproj.io/workflow"

// Annotations the pod driver sets for KWOK's stages.
const (
	annotationOutcome  = "backflow.test/outcome"
	annotationMessage  = "backflow.test/message"
	annotationExitCode = "backflow.test/exit-code"
	annotationEviction = "backflow.test/pod-message"
)

// Stack is envtest plus Argo's workflow-controller plus KWOK.
type Stack struct {
	*envtest.Cluster
	Driver *PodDriver
	dir    string
	procs  []*exec.Cmd
	cancel context.CancelFunc
	done   chan struct{}
}

// CRDDir is where the argo module keeps its CRDs.
func CRDDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-workflows/v3").Output()
	if err != nil {
		return "", fmt.Errorf("locating the argo-workflows module: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "manifests", "base", "crds", "minimal"), nil
}

func here() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Dir(file)
}

// Option changes how Argo's workflow-controller is configured.
type Option func(config map[string]string)

// WithTemplateReferencing sets Argo's workflowRestrictions.templateReferencing
// (Strict or Secure).
func WithTemplateReferencing(mode string) Option {
	return func(config map[string]string) {
		config["workflowRestrictions"] = "templateReferencing: " + mode + "\n"
	}
}

// Start starts the control plane with backflow's and Argo's CRDs, Argo's
// workflow-controller and KWOK.
func Start(opts ...Option) (*Stack, error) {
	argo, err := tools.Cached("workflow-controller")
	if err != nil {
		return nil, err
	}
	kwok, err := tools.Cached("kwok")
	if err != nil {
		return nil, err
	}
	crds, err := CRDDir()
	if err != nil {
		return nil, err
	}
	cluster, err := envtest.Start(envtest.WithCRDs(crds), envtest.WithScheme(controller.Scheme()),
		// Without kube-controller-manager nothing would lift the not-ready taint
		// this plugin puts on new nodes.
		envtest.WithAPIServerArg("disable-admission-plugins", "TaintNodesByCondition"))
	if err != nil {
		return nil, err
	}
	s := &Stack{Cluster: cluster, done: make(chan struct{})}
	fail := func(err error) (*Stack, error) { s.Stop(); return nil, err }
	if s.dir, err = os.MkdirTemp("", "backflow-argotest-"); err != nil {
		return fail(err)
	}
	// Argo's controller reads its configmap from its context's namespace.
	kubeconfig, err := cluster.WriteKubeconfig(s.dir, "argo")
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	c := cluster.Client
	config := map[string]string{
		// No scheduler runs: Argo places every pod on the fake node.
		"workflowDefaults": fmt.Sprintf("spec:\n  podSpecPatch: '{\"nodeName\": %q}'\n", NodeName),
		"metricsConfig":    "enabled: false\n",
		"telemetryConfig":  "enabled: false\n",
	}
	for _, o := range opts {
		o(config)
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "argo"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "argo", Name: "workflow-controller-configmap"}, Data: config},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName, Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{"kubernetes.io/hostname": NodeName, "type": "kwok"}}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			return fail(err)
		}
	}
	if err := s.start("workflow-controller", argo, []string{"--kubeconfig", kubeconfig, "--executor-image", "quay.io/argoproj/argoexec:v3.7.18",
		"--loglevel", "warn", "--workflow-workers", "4", "--pod-cleanup-workers", "2"},
		"LEADER_ELECTION_DISABLE=true", "DEFAULT_REQUEUE_TIME=200ms"); err != nil {
		return fail(err)
	}
	if err := s.start("kwok", kwok, []string{"--kubeconfig", kubeconfig, "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
		"--config", filepath.Join(here(), "stages.yaml"), "-v", "WARN"}); err != nil {
		return fail(err)
	}
	driverCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.Driver = &PodDriver{client: c, rules: map[string]Outcome{}, ended: map[string][]StepRun{}}
	go func() { defer close(s.done); s.Driver.run(driverCtx) }()
	return s, nil
}

func (s *Stack) start(name, bin string, args []string, env ...string) error {
	log, err := os.Create(filepath.Join(s.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	s.procs = append(s.procs, cmd)
	return nil
}

// Logs returns what a started process logged, for failure messages.
func (s *Stack) Logs(name string) string {
	data, _ := os.ReadFile(filepath.Join(s.dir, name+".log"))
	return string(data)
}

// Stop stops KWOK and Argo first (they would otherwise hold the apiserver's
// shutdown up), then the control plane.
func (s *Stack) Stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	for _, p := range s.procs {
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		_ = p.Wait()
	}
	if s.Cluster != nil {
		_ = s.Cluster.Stop()
	}
	if s.dir != "" && os.Getenv("BACKFLOW_KEEP_LOGS") == "" {
		os.RemoveAll(s.dir)
	}
}

// Outcome says how a step's pod ends and what it reports.
type Outcome struct {
	Fail    bool
	Message string
	// ExitCode of the main container of a failing pod; 1 when zero.
	ExitCode int
	// Evicted fails the pod as the kubelet evicts one: reason Evicted, with
	// this message on the pod.
	Evicted string
	// Outputs are the step's output parameters, reported as Argo's executor
	// would.
	Outputs map[string]string
	// Hold keeps the pod running until the rule changes.
	Hold bool
	// Then is how the step's next pods end, once one pod ended this way
	// (the next attempt of a retried step); nil keeps this outcome.
	Then *Outcome
}

// PodDriver ends the pods of Workflows: by default they succeed; rules set
// per Workflow and step make them fail, report outputs or wait.
type PodDriver struct {
	client client.Client
	mu     sync.Mutex
	rules  map[string]Outcome   // "<workflow>/<step>"
	ended  map[string][]StepRun // "<namespace>/<workflow>"
	// DefaultOutputs gives the outputs of a step without a rule.
	DefaultOutputs func(namespace, workflow, step string) map[string]string
}

// Set says how the pods of one step of one Workflow end.
func (d *PodDriver) Set(workflow, step string, o Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rules[workflow+"/"+step] = o
}

func (d *PodDriver) outcome(namespace, workflow, step string) Outcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.rules[workflow+"/"+step]; ok {
		return o
	}
	o := Outcome{}
	if d.DefaultOutputs != nil {
		o.Outputs = d.DefaultOutputs(namespace, workflow, step)
	}
	return o
}

// next is how a pod of the step ends, moving the step's rule on to its Then.
func (d *PodDriver) next(namespace, workflow, step string) Outcome {
	o := d.outcome(namespace, workflow, step)
	if o.Then != nil && !o.Hold {
		d.Set(workflow, step, *o.Then)
	}
	return o
}

// StepRun is a step's pod that the driver ended.
type StepRun struct {
	Step   string
	Failed bool
}

// Ended lists the pods of a Workflow that the driver ended, in the order it
// ended them: the steps that ran, each attempt of a retried one.
func (d *PodDriver) Ended(namespace, workflow string) []StepRun {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.ended[namespace+"/"+workflow])
}

func (d *PodDriver) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Only running pods wait for the driver: the ended ones, which
			// Argo keeps when they failed, are not read again.
			var pods corev1.PodList
			if err := d.client.List(ctx, &pods, client.HasLabels{labelWorkflow},
				client.MatchingFields{"status.phase": string(corev1.PodRunning)}); err != nil {
				continue
			}
			for i := range pods.Items {
				if err := d.drive(ctx, &pods.Items[i]); err != nil && !errors.Is(err, context.Canceled) {
					fmt.Fprintln(os.Stderr, "pod driver:", err)
				}
			}
		}
	}
}

// stepOf is the step (the DAG task) a pod runs.
func stepOf(pod *corev1.Pod) (workflow, step string) {
	workflow = pod.Labels[labelWorkflow]
	return workflow, StepOfNode(workflow, pod.Annotations["workflows.argoproj.io/node-name"])
}

// StepOfNode is the step (the DAG task) of a node of a Workflow: its name is
// <workflow>.<step>, with "(N)" after the step for an attempt of a retried
// step, or "[N].<name>" for a template the step calls (a run template's hook).
func StepOfNode(workflow, nodeName string) string {
	name := strings.TrimPrefix(nodeName, workflow+".")
	if i := strings.IndexAny(name, "(["); i >= 0 {
		name = name[:i]
	}
	return name
}

func (d *PodDriver) drive(ctx context.Context, pod *corev1.Pod) error {
	if pod.Status.Phase != corev1.PodRunning || pod.Annotations[annotationOutcome] != "" || !pod.DeletionTimestamp.IsZero() {
		return nil
	}
	workflow, step := stepOf(pod)
	o := d.next(pod.Namespace, workflow, step)
	if o.Hold {
		return nil
	}
	result := &wfv1.WorkflowTaskResult{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, Name: pod.Annotations["workflows.argoproj.io/node-id"],
			Labels: map[string]string{labelWorkflow: workflow, "workflows.argoproj.io/report-outputs-completed": "true"},
		},
	}
	if len(o.Outputs) > 0 && !o.Fail {
		result.Outputs = &wfv1.Outputs{}
		global := globalNames(pod)
		for k, v := range o.Outputs {
			result.Outputs.Parameters = append(result.Outputs.Parameters, wfv1.Parameter{Name: k, Value: wfv1.AnyStringPtr(v), GlobalName: global[k]})
		}
	}
	if err := d.client.Create(ctx, result); apierrors.IsAlreadyExists(err) {
		// The step reported progress while it ran (ReportProgress): the
		// executor's last report completes that result, as Argo's does.
		var existing wfv1.WorkflowTaskResult
		if err := d.client.Get(ctx, client.ObjectKeyFromObject(result), &existing); err != nil {
			return err
		}
		existing.Labels, existing.Outputs = result.Labels, result.Outputs
		if err := d.client.Update(ctx, &existing); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	patch := client.MergeFrom(pod.DeepCopy())
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[annotationOutcome] = "succeed"
	if o.Fail {
		pod.Annotations[annotationOutcome] = "fail"
		pod.Annotations[annotationMessage] = o.Message
		if o.ExitCode != 0 {
			pod.Annotations[annotationExitCode] = strconv.Itoa(o.ExitCode)
		}
		if o.Evicted != "" {
			pod.Annotations[annotationEviction] = o.Evicted
		}
	}
	if err := d.client.Patch(ctx, pod, patch); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := pod.Namespace + "/" + workflow
	d.ended[key] = append(d.ended[key], StepRun{Step: step, Failed: o.Fail})
	return nil
}

// ReportProgress reports a running step's progress (N/M) as Argo's
// executor does from the step's progress file: in the WorkflowTaskResult
// of the step's pod, which Argo's controller copies into the node.
func (s *Stack) ReportProgress(t testing.TB, namespace, workflow, step string, progress wfv1.Progress) {
	t.Helper()
	ctx := context.Background()
	pod := s.StepPod(t, namespace, workflow, step)
	key := client.ObjectKey{Namespace: namespace, Name: pod.Annotations["workflows.argoproj.io/node-id"]}
	var result wfv1.WorkflowTaskResult
	err := s.Client.Get(ctx, key, &result)
	switch {
	case apierrors.IsNotFound(err):
		result = wfv1.WorkflowTaskResult{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels: map[string]string{labelWorkflow: workflow, "workflows.argoproj.io/report-outputs-completed": "false"}},
			NodeResult: wfv1.NodeResult{Progress: progress},
		}
		err = s.Client.Create(ctx, &result)
	case err == nil:
		result.Progress = progress
		err = s.Client.Update(ctx, &result)
	}
	if err != nil {
		t.Fatalf("reporting the progress of %s/%s %s: %v", namespace, workflow, step, err)
	}
}

// globalNames are the global names of the output parameters of a pod's
// template, which Argo's executor reports with their values (Argo then
// makes them Workflow outputs), by parameter name.
func globalNames(pod *corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		for _, e := range c.Env {
			if e.Name != "ARGO_TEMPLATE" {
				continue
			}
			var tmpl wfv1.Template
			if json.Unmarshal([]byte(e.Value), &tmpl) != nil {
				continue
			}
			for _, p := range tmpl.Outputs.Parameters {
				if p.GlobalName != "" {
					out[p.Name] = p.GlobalName
				}
			}
		}
	}
	return out
}

// InstallWorkflowTemplates installs backflow's ClusterWorkflowTemplates from
// workflowtemplates/, as a user does.
func (s *Stack) InstallWorkflowTemplates() error {
	files, err := filepath.Glob(filepath.Join(envtest.RepoRoot(), "workflowtemplates", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no workflowtemplates: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var cwt wfv1.ClusterWorkflowTemplate
		if err := yaml.UnmarshalStrict(data, &cwt); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := s.Client.Create(context.Background(), &cwt); err != nil {
			return err
		}
	}
	return nil
}

// InstallCompiledTemplates installs the ClusterWorkflowTemplates the
// compiler makes for opts, as the chart renders them for its images
// (test/chart checks that they are the same).
func (s *Stack) InstallCompiledTemplates(opts compiler.Options) error {
	for _, cwt := range compiler.ClusterWorkflowTemplates(opts) {
		if err := s.Client.Create(context.Background(), cwt); err != nil {
			return err
		}
	}
	return nil
}

// StorageName is the BackupStorage, and its credentials Secret, that
// NewNamespace makes in each namespace.
const StorageName = "minio"

// Workflows is the controller's namespace configuration in the tests: all
// namespaces admitted, and the chart's ClusterRoles under the names of the
// accounts (binding one that does not exist is allowed; the steps' API calls
// are Argo's executor's, which the tests stand in for).
func Workflows() namespace.Config {
	return namespace.Config{Policy: namespace.AdmitAll(), WorkflowClusterRole: compiler.ExecutorServiceAccount, HookClusterRole: compiler.HookServiceAccount}
}

// NewNamespace makes a namespace with a BackupStorage StorageName on the
// given MinIO; the controller provides the workflow's service accounts.
func (s *Stack) NewNamespace(t testing.TB, minio *servers.MinIO) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ctrl-"}}
	if err := s.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: StorageName}, StringData: map[string]string{
			"AWS_ACCESS_KEY_ID": minio.AccessKey, "AWS_SECRET_ACCESS_KEY": minio.SecretKey,
		}},
		&v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: StorageName}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
			Endpoint: minio.Endpoint, Bucket: minio.Bucket, ForcePathStyle: true,
			Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: StorageName}},
		}}},
	} {
		if err := s.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	return ns.Name
}

// CompilerOptions are the compiler's default options with the tests' own
// backflow image, which the stack's templates are installed for.
func CompilerOptions() compiler.Options {
	opts := compiler.DefaultOptions()
	opts.Image = "backflow.test/backflow:dev"
	return opts
}

// Events are the Events of the object name in namespace ns, by reason (the
// latest of each).
func (s *Stack) Events(t testing.TB, ns, name string) map[string]corev1.Event {
	t.Helper()
	var list corev1.EventList
	if err := s.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.Event{}
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			out[e.Reason] = e
		}
	}
	return out
}

// OwnAccounts creates in a namespace, as a user running Workflows of their
// own does, the executor's account that backflow's templates name and its
// token Secret. They are not backflow's: the controller, which removes its
// own from a namespace without backflow resources, leaves them.
func (s *Stack) OwnAccounts(t testing.TB, ns string) {
	t.Helper()
	for _, obj := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: compiler.ExecutorServiceAccount}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: namespace.TokenSecret,
			Annotations: map[string]string{corev1.ServiceAccountNameKey: compiler.ExecutorServiceAccount}}, Type: corev1.SecretTypeServiceAccountToken},
	} {
		if err := s.Client.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
}

// StartManager runs the backflow controller in this process against the
// stack and returns its stop, which waits for it to end.
func (s *Stack) StartManager(opts controller.Options) (func(), error) {
	return s.StartManagerWithConfig(s.Config, opts)
}

// StartManagerWithConfig is StartManager with a config of the caller's, a
// copy of the stack's Config (one that counts the controller's requests,
// say).
func (s *Stack) StartManagerWithConfig(cfg *rest.Config, opts controller.Options) (func(), error) {
	mgr, err := controller.NewManager(cfg, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// Workflow reads a Workflow, failing the test when it cannot.
func (s *Stack) Workflow(t testing.TB, namespace, name string) *wfv1.Workflow {
	t.Helper()
	var wf wfv1.Workflow
	if err := s.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &wf); err != nil {
		t.Fatal(err)
	}
	return &wf
}

// WaitFor polls until cond holds, failing the test after timeout; cond
// returns its state for the failure message.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

// StepOutputs are the outputs a step of a Workflow reports, as Argo's
// executor would from a real run: the object a dump wrote (and verify and
// restore read), and rotate's report, which its template declares, so that
// Argo leaves the step Running until it is there. Other steps report none.
func StepOutputs(namespace, workflow, step string) map[string]string {
	switch step {
	case compiler.StepDump, compiler.StepVerify, compiler.StepRestore:
		return map[string]string{
			// Inside the namespace's default prefix, as the dump's check
			// makes it.
			compiler.OutputKey:         namespace + "/" + workflow + "/20261122T030000Z.bin.zst",
			compiler.OutputSize:        "43200000",
			compiler.OutputRawSize:     "250000000",
			compiler.OutputChecksum:    "sha256:" + strings.Repeat("ab", 32),
			compiler.OutputRawChecksum: "sha256:" + strings.Repeat("cd", 32),
		}
	case compiler.StepRotate:
		report, _ := json.Marshal((&stages.RotateResult{Kept: 1}).Report())
		return map[string]string{compiler.OutputRotation: string(report)}
	}
	return nil
}

// StepPod waits for a pod of a step of a Workflow, as Argo created it, and
// returns it.
func (s *Stack) StepPod(t testing.TB, namespace, workflow, step string) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	WaitFor(t, "a pod of step "+step+" of "+workflow, 60*time.Second, func() (bool, string) {
		var pods corev1.PodList
		if err := s.Client.List(context.Background(), &pods, client.InNamespace(namespace), client.MatchingLabels{labelWorkflow: workflow}); err != nil {
			return false, err.Error()
		}
		for i := range pods.Items {
			if _, got := stepOf(&pods.Items[i]); got == step {
				found = &pods.Items[i]
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d pods", len(pods.Items))
	})
	return found
}

// SecretReferences are the Secrets the main container of a pod reads, as
// "env NAME: secret/key" and "volume NAME: secret/key" (optional ones
// marked), in the pod's order.
func SecretReferences(pod *corev1.Pod) []string {
	var refs []string
	for _, c := range pod.Spec.Containers {
		if c.Name != "main" {
			continue
		}
		for _, e := range c.Env {
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				ref := fmt.Sprintf("env %s: %s/%s", e.Name, r.SecretKeyRef.Name, r.SecretKeyRef.Key)
				if r.SecretKeyRef.Optional != nil && *r.SecretKeyRef.Optional {
					ref += " (optional)"
				}
				refs = append(refs, ref)
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		for _, item := range v.Secret.Items {
			refs = append(refs, fmt.Sprintf("volume %s: %s/%s", v.Name, v.Secret.SecretName, item.Key))
		}
	}
	return refs
}

// ServiceAccountTokenDir is where a container finds a service-account
// token, mounted by Kubernetes (automountServiceAccountToken) or by Argo
// (the executor's token, into its own containers).
const ServiceAccountTokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// MountsToken says whether a container of a pod has a service-account token
// mounted.
func MountsToken(pod *corev1.Pod, container string) bool {
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name != container {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.MountPath == ServiceAccountTokenDir {
				return true
			}
		}
	}
	return false
}

// InspectSteps holds each of the steps of a Workflow in turn, in the order
// given, until its pod runs, hands the pod to inspect, and lets it succeed
// with the step's StepOutputs: Argo deletes a succeeded pod, so a step's pod
// is read while it is held.
func (s *Stack) InspectSteps(t testing.TB, namespace, workflow string, steps []string, inspect func(step string, pod *corev1.Pod)) {
	t.Helper()
	for _, step := range steps {
		s.Driver.Set(workflow, step, Outcome{Hold: true})
	}
	for _, step := range steps {
		var pod *corev1.Pod
		WaitFor(t, "a running pod of step "+step+" of "+workflow, 60*time.Second, func() (bool, string) {
			var pods corev1.PodList
			if err := s.Client.List(context.Background(), &pods, client.InNamespace(namespace),
				client.MatchingLabels{labelWorkflow: workflow}); err != nil {
				return false, err.Error()
			}
			var seen []string
			for i := range pods.Items {
				p := &pods.Items[i]
				_, st := stepOf(p)
				seen = append(seen, st+":"+string(p.Status.Phase))
				if st == step && p.Status.Phase == corev1.PodRunning {
					pod = p
					return true, ""
				}
			}
			return false, fmt.Sprint(seen)
		})
		inspect(step, pod)
		s.Driver.Set(workflow, step, Outcome{Outputs: StepOutputs(namespace, workflow, step)})
	}
}
