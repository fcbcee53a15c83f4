package strict_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

// A Workflow author in a Strict cluster writes their own Workflow that
// references backflow's templates, with whatever arguments they like. These
// tests are theirs: what Argo does with it, and the pods it creates.

const hostileImage = "evil.example/miner:1"

// hostPathVolume is a volume written as JSON to be spliced into a pod spec
// patch, after a quote that would end a string.
const hostPathVolume = `x"}],"volumes":[{"name":"host","hostPath":{"path":"/"}}],"containers":[{"name":"main","securityContext":{"privileged":true}}]}`

// runWorkflow creates a Workflow that references a ClusterWorkflowTemplate
// with the given entrypoint (the template's own when empty) and arguments,
// waits for it to end (or, untilPod, for its first pod), and returns it with
// the pods Argo created for it.
func runWorkflow(t *testing.T, ns, name, template, entrypoint string, params map[string]string) (*wfv1.Workflow, []corev1.Pod) {
	return startWorkflow(t, ns, name, template, entrypoint, params, false)
}

func startWorkflow(t *testing.T, ns, name, template, entrypoint string, params map[string]string, untilPod bool) (*wfv1.Workflow, []corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	wf := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: wfv1.WorkflowSpec{
			WorkflowTemplateRef: &wfv1.WorkflowTemplateRef{Name: template, ClusterScope: true},
			Entrypoint:          entrypoint,
		},
	}
	for k, v := range params {
		wf.Spec.Arguments.Parameters = append(wf.Spec.Arguments.Parameters, wfv1.Parameter{Name: k, Value: wfv1.AnyStringPtr(v)})
	}
	if err := stack.Client.Create(ctx, wf); err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	argotest.WaitFor(t, "Workflow "+name+" to end", 60*time.Second, func() (bool, string) {
		if err := stack.Client.Get(ctx, client.ObjectKeyFromObject(wf), wf); err != nil {
			return false, err.Error()
		}
		pods = podsOf(t, ns, name)
		return wf.Status.Phase.Completed() || (untilPod && len(pods) > 0), fmt.Sprintf("%s %q", wf.Status.Phase, wf.Status.Message)
	})
	return wf, pods
}

func podsOf(t *testing.T, ns, workflow string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := stack.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{"workflows.argoproj.io/workflow": workflow}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// failure is what a finished Workflow says went wrong: its message and its
// nodes'.
func failure(wf *wfv1.Workflow) string {
	msgs := []string{wf.Status.Message}
	for _, n := range wf.Status.Nodes {
		if n.Message != "" {
			msgs = append(msgs, n.DisplayName+": "+n.Message)
		}
	}
	return strings.Join(msgs, "; ")
}

// reshaped says what in a pod goes beyond what a step's pod may have: a
// hostPath volume, a privileged or host-namespace container, an image other
// than the allowed ones.
func reshaped(pod corev1.Pod, allowed ...string) []string {
	var out []string
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			out = append(out, "hostPath volume "+v.Name)
		}
	}
	if pod.Spec.HostPID || pod.Spec.HostNetwork || pod.Spec.HostIPC {
		out = append(out, "host namespaces")
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			out = append(out, "privileged container "+c.Name)
		}
		if c.Name == "main" && !contains(allowed, c.Image) {
			out = append(out, "image "+c.Image)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dumpOnly are the arguments that run the backup run template's dump step
// alone, with the namespace's storage credentials.
func dumpOnly(more map[string]string) map[string]string {
	params := map[string]string{
		compiler.ParamTargets: compiler.StepDump, "dump-storage-secret": argotest.StorageName,
		compiler.ParamNodeSelector: `{"type":"kwok"}`,
	}
	for k, v := range more {
		params[k] = v
	}
	return params
}

// Argo does not hold a Workflow's own parameter to the enum the template
// declares for it (workflow/util JoinWorkflowSpec keeps the Workflow's
// parameter whole, enum included): the run template's own check refuses the
// image, and no pod is created.
func TestStrictImageOutsideTheAllowListIsRefused(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	stack.OwnAccounts(t, ns) // for the Workflows written by hand
	wf, pods := runWorkflow(t, ns, "miner", compiler.TemplateBackupRun, "", dumpOnly(map[string]string{"dump-image": hostileImage}))
	// The image is checked inside the step's pod spec patch, which Argo
	// evaluates as it creates the pod: the check's own message is lost,
	// Argo reports that it could not apply the patch.
	t.Logf("Argo: %s", failure(wf))
	if wf.Status.Phase == wfv1.WorkflowSucceeded || !strings.Contains(failure(wf), "Error applying PodSpecPatch") {
		t.Errorf("Workflow %s: %s", wf.Status.Phase, failure(wf))
	}
	if strings.Contains(failure(wf), "enum") {
		t.Errorf("Argo now holds the Workflow's parameter to the template's enum (%s): the README says it does not", failure(wf))
	}
	for _, pod := range pods {
		if r := reshaped(pod, compilerOptions().RunImages()...); len(r) > 0 {
			t.Errorf("pod %s: %v", pod.Name, r)
		}
	}
	if len(pods) > 0 {
		t.Errorf("%d pods created for a refused image", len(pods))
	}

	// An allowed one runs.
	wf, pods = runWorkflow(t, ns, "allowed", compiler.TemplateBackupRun, "", dumpOnly(map[string]string{"dump-image": allowedImage}))
	if wf.Status.Phase != wfv1.WorkflowSucceeded || len(pods) != 1 || mainContainer(pods[0]).Image != allowedImage {
		t.Errorf("Workflow %s (%s), %d pods", wf.Status.Phase, failure(wf), len(pods))
	}
}

// JSON fragments, a privileged security context and an expression in the
// parameters that shape the pod: each fills its own field, or the step
// fails before a pod exists.
func TestStrictHostileParametersDoNotReshapeThePod(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	stack.OwnAccounts(t, ns) // for the Workflows written by hand
	// Values the apiserver accepts in a pod: the pod is created, and holds
	// them where they came in.
	wf, pods := runWorkflow(t, ns, "fragments", compiler.TemplateBackupRun, "", dumpOnly(map[string]string{
		"dump-image":                  allowedImage,
		"dump-env":                    `[{"name":"FRAGMENT","value":` + quote(hostPathVolume) + `}]`,
		"dump-resources":              `{"limits":{"cpu":"1"},"volumes":[{"name":"host","hostPath":{"path":"/"}}]}`,
		compiler.ParamSecurityContext: `{"runAsUser":1000,"privileged":true,"hostPID":true}`,
		"dump-ca-configmap":           "ca",
		"dump-ca-key":                 hostPathVolume,
		"dump-claim-name":             hostPathVolume,
		"dump-claim-read-only":        `true,"hostPath":{"path":"/"}`,
	}))
	if len(pods) != 1 {
		t.Fatalf("Workflow %s (%s): %d pods", wf.Status.Phase, failure(wf), len(pods))
	}
	pod := pods[0]
	if r := reshaped(pod, allowedImage); len(r) > 0 {
		t.Errorf("the pod was reshaped: %v", r)
	}
	main := mainContainer(pod)
	var fragment string
	for _, e := range main.Env {
		if e.Name == "FRAGMENT" {
			fragment = e.Value
		}
	}
	if fragment != hostPathVolume || main.Resources.Limits.Cpu().String() != "1" ||
		pod.Spec.SecurityContext == nil || *pod.Spec.SecurityContext.RunAsUser != 1000 {
		t.Errorf("the fields did not get their values: env %q, resources %v, security context %+v", fragment, main.Resources, pod.Spec.SecurityContext)
	}
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Items[0].Key != hostPathVolume {
			t.Errorf("the CA key is %q", v.ConfigMap.Items[0].Key)
		}
		if c := v.PersistentVolumeClaim; c != nil && (c.ClaimName != hostPathVolume || c.ReadOnly) {
			t.Errorf("the claim is %+v", c)
		}
	}

	// A value the apiserver refuses in a pod (a Secret name that is JSON):
	// Argo cannot create the pod, and the step fails.
	wf, pods = runWorkflow(t, ns, "json-secret", compiler.TemplateBackupRun, "", dumpOnly(map[string]string{"dump-connection-secret": hostPathVolume, "dump-host-key": "host"}))
	t.Logf("json-secret: Argo: %s", failure(wf))
	if wf.Status.Phase == wfv1.WorkflowSucceeded || len(pods) > 0 || !strings.Contains(failure(wf), "secretKeyRef.name: Invalid value") {
		t.Errorf("json-secret: Workflow %s (%s) with %d pods", wf.Status.Phase, failure(wf), len(pods))
	}

	// An Argo expression that, evaluated again when Argo creates the pod,
	// would write a hostPath volume into the patch: the patch refuses to be
	// built, and Argo creates no pod.
	expression := "{{=sprig.b64dec('" + base64.StdEncoding.EncodeToString([]byte(hostPathVolume)) + "')}}"
	wf, pods = runWorkflow(t, ns, "expression", compiler.TemplateBackupRun, "", dumpOnly(map[string]string{"dump-recipients-secret": expression, "dump-recipients-key": "r"}))
	t.Logf("expression: Argo: %s", failure(wf))
	if wf.Status.Phase == wfv1.WorkflowSucceeded || len(pods) > 0 || !strings.Contains(failure(wf), "Error applying PodSpecPatch") {
		t.Errorf("Workflow %s (%s) with %d pods", wf.Status.Phase, failure(wf), len(pods))
	}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// mainContainer is the step's own container of a pod Argo made.
func mainContainer(pod corev1.Pod) corev1.Container {
	for _, c := range pod.Spec.Containers {
		if c.Name == "main" {
			return c
		}
	}
	return corev1.Container{}
}

// A Workflow may name any template of the run template as its entrypoint
// and pass it arguments: the run template's own copies of the stages take
// none that shape the pod, so a hook's container runs with what its
// parameters allow, and arguments named like the stage templates' inputs
// are ignored.
func TestStrictEntrypointReachesNoFreeInput(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	stack.OwnAccounts(t, ns) // for the Workflows written by hand
	wf, pods := runWorkflow(t, ns, "hook-entry", compiler.TemplateBackupRun, "step-pre-hook-container", map[string]string{
		"pre-hook-image": hostileImage, compiler.ParamNodeSelector: `{"type":"kwok"}`,
	})
	t.Logf("Argo: %s", failure(wf))
	if wf.Status.Phase == wfv1.WorkflowSucceeded || len(pods) > 0 {
		t.Errorf("Workflow %s with %d pods", wf.Status.Phase, len(pods))
	}
	wf, pods = startWorkflow(t, ns, "dump-entry", compiler.TemplateBackupRun, "step-dump", map[string]string{
		compiler.ParamImage: hostileImage, compiler.ParamPodSpecPatch: `{"volumes":[{"name":"host","hostPath":{"path":"/"}}]}`,
		"dump-storage-secret": argotest.StorageName, compiler.ParamNodeSelector: `{"type":"kwok"}`,
	}, true)
	for _, pod := range pods {
		if r := reshaped(pod, compilerOptions().RunImages()...); len(r) > 0 {
			t.Errorf("pod %s: %v", pod.Name, r)
		}
	}
	if len(pods) != 1 {
		t.Errorf("Workflow %s (%s): %d pods, want the dump's", wf.Status.Phase, failure(wf), len(pods))
	}
}

// Why a Strict cluster must not have the stage templates: Argo lets a
// Workflow reference backflow-dump itself, name its dump template as the
// entrypoint and fill its image and pod-spec-patch. (This suite installs
// them to show it; the chart, with templateReferencing Strict, does not.)
// Argo also refuses a Workflow that calls a template without referencing
// one at the top.
func TestStrictArgoRunsAnyTemplateOfAReferencedTemplate(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	stack.OwnAccounts(t, ns) // for the Workflows written by hand
	wf, pods := startWorkflow(t, ns, "stage", compiler.TemplateDump, compiler.EntryDump, map[string]string{
		compiler.ParamImage: hostileImage, compiler.ParamStorageSecret: argotest.StorageName,
		compiler.ParamStorage: "s3://b", compiler.ParamSource: "{}", compiler.ParamName: "x", compiler.ParamSeries: "x",
		compiler.ParamPodSpecPatch: `{"serviceAccountName":"backflow-workflow","nodeSelector":{"type":"kwok"},"volumes":[{"name":"host","hostPath":{"path":"/"}}]}`,
	}, true)
	if len(pods) != 1 || len(reshaped(pods[0])) == 0 {
		t.Errorf("Workflow %s (%s): %d pods; want one with a hostPath volume and image %s, as Argo runs what the Workflow asks", wf.Status.Phase, failure(wf), len(pods), hostileImage)
	} else {
		t.Logf("a Workflow referencing %s got a pod with %v", compiler.TemplateDump, reshaped(pods[0]))
	}

	inline := &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "inline"}, Spec: wfv1.WorkflowSpec{
		Entrypoint: "main",
		Templates: []wfv1.Template{{Name: "main", Steps: []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{{
			Name: "dump", TemplateRef: &wfv1.TemplateRef{Name: compiler.TemplateDump, Template: compiler.EntryDump, ClusterScope: true},
		}}}}}},
	}}
	if err := stack.Client.Create(context.Background(), inline); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "the inline Workflow to be refused", 60*time.Second, func() (bool, string) {
		_ = stack.Client.Get(context.Background(), client.ObjectKeyFromObject(inline), inline)
		return inline.Status.Phase.Completed(), string(inline.Status.Phase)
	})
	if inline.Status.Phase == wfv1.WorkflowSucceeded || !strings.Contains(inline.Status.Message, "workflowTemplateRef") {
		t.Errorf("inline Workflow %s: %s", inline.Status.Phase, inline.Status.Message)
	}
}

// The controller refuses at once a resource that names an image outside the
// allow-list, naming the field and the chart value, and creates no
// Workflow or CronWorkflow.
func TestStrictUserImagesOutsideTheAllowListFailAtOnce(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	ctx := context.Background()
	s := spec()
	s.Hooks.Post.Container.Image = hostileImage
	createBackup(t, ns, "hook-image", s)
	b, _ := finished(t, ns, "hook-image")
	checkRefused(t, b.Status.Conditions, v1.ConditionSucceeded, "spec.hooks.post.container.image")
	noObject(t, &wfv1.Workflow{}, ns, "hook-image")

	sched := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly"}, Spec: v1.BackupScheduleSpec{Schedule: "0 * * * *", Template: v1.BackupTemplate{Spec: spec()}}}
	sched.Spec.Template.Spec.Source.Command.Image = hostileImage
	if err := stack.Client.Create(ctx, sched); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "the schedule's Ready condition", 60*time.Second, func() (bool, string) {
		_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(sched), sched)
		return meta.FindStatusCondition(sched.Status.Conditions, v1.ConditionReady) != nil, fmt.Sprintf("%+v", sched.Status)
	})
	checkRefused(t, sched.Status.Conditions, v1.ConditionReady, "spec.template.spec.source.command.image")
	noObject(t, &wfv1.CronWorkflow{}, ns, "hourly")

	r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "back"}, Spec: v1.RestoreSpec{
		From:   v1.RestoreSource{BackupRef: &v1.LocalObjectReference{Name: "never-made"}},
		Target: v1.RestoreTarget{PostgreSQL: &v1.PostgreSQLTarget{Connection: v1.DatabaseConnection{Host: "db"}, Image: hostileImage}},
	}}
	if err := stack.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "the Restore to fail", 60*time.Second, func() (bool, string) {
		_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(r), r)
		return r.Status.Phase.IsFinished(), fmt.Sprintf("%+v", r.Status)
	})
	checkRefused(t, r.Status.Conditions, v1.ConditionSucceeded, "spec.target.postgresql.image")
	noObject(t, &wfv1.Workflow{}, ns, "back")
}

func checkRefused(t *testing.T, conditions []metav1.Condition, condition, field string) {
	t.Helper()
	c := meta.FindStatusCondition(conditions, condition)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(v1.ReasonImageNotAllowed) ||
		!strings.Contains(c.Message, field) || !strings.Contains(c.Message, "workflow.allowedImages") {
		t.Errorf("condition %s: %+v, want False %s naming %s and the chart value", condition, c, v1.ReasonImageNotAllowed, field)
	}
}

func noObject(t *testing.T, obj client.Object, ns, name string) {
	t.Helper()
	if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); !apierrors.IsNotFound(err) {
		t.Errorf("%T %s: %v, want none", obj, name, err)
	}
}
