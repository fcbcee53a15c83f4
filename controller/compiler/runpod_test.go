package compiler

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/util/template"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// runTemplateEnv is what Argo's expressions see of a Workflow that
// references a run template: every parameter, the Workflow's own value
// over the template's default.
// testWorkflowUID is the UID of the Workflow the run templates are
// evaluated for.
const testWorkflowUID = "5b1c7d2e-0000-4000-8000-000000000001"

func runTemplateEnv(runTemplate, strict *wfv1.WorkflowSpec) map[string]any {
	env := map[string]any{}
	all := map[string]string{}
	for _, p := range slices.Concat(runTemplate.Arguments.Parameters, strict.Arguments.Parameters) {
		env["workflow.parameters."+p.Name] = p.Value.String()
		all[p.Name] = p.Value.String()
	}
	data, _ := json.Marshal(all)
	env["workflow.parameters"] = string(data)
	env["workflow.uid"] = testWorkflowUID
	return env
}

// evalArgument evaluates an argument of a run template as Argo does when it
// resolves a task (strict about what it cannot evaluate).
func evalArgument(env map[string]any, arg string) (string, error) {
	doc, err := json.Marshal(map[string]string{"v": arg})
	if err != nil {
		return "", err
	}
	out, err := template.ReplaceStrictAny(string(doc), env, []string{"tasks", "steps"})
	if err != nil {
		return "", err
	}
	var v map[string]string
	err = json.Unmarshal([]byte(out), &v)
	return v["v"], err
}

// runStep is the run template's own template of a step (for a hook, of its
// kind).
func runStep(t *testing.T, runTemplate *wfv1.WorkflowSpec, step, kind string) wfv1.Template {
	t.Helper()
	name := localStepName(step)
	if kind != "" {
		name = localStepName(step, kind)
	}
	for _, tmpl := range runTemplate.Templates {
		if tmpl.Name == name {
			return tmpl
		}
	}
	t.Fatalf("the run template has no template %s", name)
	return wfv1.Template{}
}

// runPod is the image and the pod spec patch a run template's step builds.
func runPod(t *testing.T, env map[string]any, step wfv1.Template) (image, patch string, err error) {
	t.Helper()
	if step.Container.Image != testOptions().Image {
		t.Errorf("%s: the container's own image is %s", step.Name, step.Container.Image)
	}
	patch, err = evalArgument(env, step.PodSpecPatch)
	if err != nil {
		return "", "", err
	}
	var pod struct {
		Containers []corev1.Container `json:"containers"`
	}
	if err := json.Unmarshal([]byte(patch), &pod); err != nil {
		t.Fatalf("%s: %v", patch, err)
	}
	return pod.Containers[0].Image, patch, nil
}

func argument(params []wfv1.Parameter, name string) string {
	for _, p := range params {
		if p.Name == name {
			return p.Value.String()
		}
	}
	return ""
}

// stepPod is the pod spec a patch and a Workflow's pod-wide fields make of
// a stage template's pod, as Argo applies them (a strategic merge patch).
func stepPod(t *testing.T, ws *wfv1.WorkflowSpec, templateAccount, patch string) corev1.PodSpec {
	t.Helper()
	base := corev1.PodSpec{
		ServiceAccountName: cmp.Or(templateAccount, ws.ServiceAccountName), NodeSelector: ws.NodeSelector, Tolerations: ws.Tolerations,
		SecurityContext: ws.SecurityContext, PriorityClassName: ws.PodPriorityClassName,
		InitContainers: []corev1.Container{{Name: installContainer}},
		Containers: []corev1.Container{{Name: mainContainer, Command: []string{BinaryPath}, Env: storageEnv(),
			VolumeMounts: []corev1.VolumeMount{{Name: binaryVolume, MountPath: BinaryDir}}}},
		Volumes: []corev1.Volume{{Name: binaryVolume}},
	}
	original, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := strategicpatch.StrategicMergePatch(original, []byte(patch), corev1.PodSpec{})
	if err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	var out corev1.PodSpec
	if err := json.Unmarshal(patched, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// podCases are the examples with every pod field the API has set somewhere.
func podCases(t *testing.T) (backups []*v1.Backup, restores []*v1.Restore, st StorageAccess) {
	t.Helper()
	ex := examples(t)
	st = exampleStorage(t, ex)
	pod := &v1.PodOverrides{
		Resources:         &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
		NodeSelector:      map[string]string{"pool": "backup"},
		Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "backup", Effect: corev1.TaintEffectNoSchedule}},
		SecurityContext:   &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), FSGroup: ptr(int64(2000))},
		PriorityClassName: "backups",
	}
	hooks := &v1.Hooks{
		Pre: &v1.Hook{Container: &v1.ContainerHook{Image: "busybox", Command: []string{"sh", "-c"}, Args: []string{"echo a && echo b"},
			Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "token"}}}}}},
		Post: &v1.Hook{Exec: &v1.ExecHook{PodName: "app", Command: []string{"resume"}}, OnError: v1.HookErrorContinue},
	}
	for _, objs := range ex {
		for _, obj := range objs {
			switch obj["kind"] {
			case "Backup", "BackupSchedule":
				var b v1.Backup
				if obj["kind"] == "Backup" {
					convert(t, obj, &b)
				} else {
					var s v1.BackupSchedule
					convert(t, obj, &s)
					b = v1.Backup{ObjectMeta: s.ObjectMeta, Spec: s.Spec.Template.Spec}
				}
				b.Namespace = "apps"
				b.Spec.Retention = &v1.Retention{KeepLast: ptr(int32(2))}
				backups = append(backups, b.DeepCopy())
				b.Spec.Pod, b.Spec.Hooks, b.Spec.ServiceAccountName = pod, hooks, "backup-runner"
				b.Spec.Encryption = &v1.Encryption{Age: &v1.AgeEncryption{
					RecipientsSecretRef: &v1.SecretKeySelector{Name: "age", Key: "recipients"},
					IdentitySecretRef:   &v1.SecretKeySelector{Name: "age", Key: "identity"},
				}}
				backups = append(backups, &b)
			case "Restore":
				var r v1.Restore
				convert(t, obj, &r)
				r.Namespace = "apps"
				restores = append(restores, r.DeepCopy())
				r.Spec.Pod, r.Spec.Hooks = pod, hooks
				r.Spec.IdentitySecretRef = &v1.SecretKeySelector{Name: "age", Key: "identity"}
				restores = append(restores, &r)
			}
		}
	}
	return backups, restores, st
}

// The run templates build, from a Strict Workflow's parameters, the very
// pods the inline Workflow of the same resource asks for: the same image
// and, applied to a stage template's pod, the same pod spec (the patch and
// the pod-wide fields). The expressions are evaluated by Argo's own
// template code; test/strict runs them in a real Argo.
func TestRunTemplatesBuildTheInlinePods(t *testing.T) {
	backups, restores, st := podCases(t)
	cas := []StorageAccess{st}
	withCA := StorageAccess{Storage: st.Storage.DeepCopy()}
	withCA.Storage.Spec.S3.TLS = &v1.StorageTLS{CASecretRef: &v1.SecretKeySelector{Name: "minio-ca", Key: "ca.crt"}}
	cas = append(cas, withCA)
	strictOpts := testOptions()
	strictOpts.TemplateReferencing = TemplateReferencingStrict
	compared := 0
	compare := func(t *testing.T, table runTable, inline, strict *wfv1.WorkflowSpec) {
		runTemplate := table.clusterTemplate(strictOpts).Spec
		env := runTemplateEnv(&runTemplate, strict)
		for _, task := range inline.Templates[0].DAG.Tasks {
			if task.Name == stepEnd {
				continue
			}
			kind := ""
			switch task.TemplateRef.Template {
			case EntryExecHook:
				kind = hookKindExec
			case EntryContainerHook:
				kind = hookKindContainer
			}
			image, patch, err := runPod(t, env, runStep(t, &runTemplate, task.Name, kind))
			if err != nil {
				t.Fatalf("%s: pod spec patch: %v", task.Name, err)
			}
			if want := argument(task.Arguments.Parameters, ParamImage); image != want {
				t.Errorf("%s runs in %s, inline in %s", task.Name, image, want)
			}
			// Argo fills in the run Secret's name in the inline patch.
			inlinePatch := strings.ReplaceAll(cmp.Or(argument(task.Arguments.Parameters, ParamPodSpecPatch), defaultPodSpecPatch), "{{workflow.uid}}", testWorkflowUID)
			// The exec hook's template names its own account, which wins
			// over the Workflow's, as in Argo.
			account := ""
			if kind == hookKindExec {
				account = execHookTemplate(testOptions()).ServiceAccountName
			}
			got, want := stepPod(t, &runTemplate, account, patch), stepPod(t, inline, account, inlinePatch)
			got.Containers[0].Image = ""
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Errorf("%s: the run template makes the pod\n%s\nthe inline Workflow\n%s", task.Name, g, w)
			}
			compared++
		}
	}
	for _, access := range cas {
		for _, b := range backups {
			t.Run(fmt.Sprintf("backup %s ca=%t pod=%t", b.Name, access.HasCA(), b.Spec.Pod != nil), func(t *testing.T) {
				inline, err := Backup(BackupInput{Backup: b, Storage: access}, testOptions())
				if err != nil {
					t.Fatal(err)
				}
				strict, err := Backup(BackupInput{Backup: b, Storage: access}, strictOpts)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, backupSteps, &inline.Spec, &strict.Spec)
			})
		}
		for _, r := range restores {
			t.Run(fmt.Sprintf("restore %s ca=%t pod=%t", r.Name, access.HasCA(), r.Spec.Pod != nil), func(t *testing.T) {
				in := RestoreInput{Restore: r, Storage: access, Key: "apps/x/1.pgdump.zst", Identity: r.Spec.IdentitySecretRef}
				inline, err := Restore(in, testOptions())
				if err != nil {
					t.Fatal(err)
				}
				strict, err := Restore(in, strictOpts)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, restoreSteps, &inline.Spec, &strict.Spec)
			})
		}
	}
	if compared < 100 {
		t.Errorf("%d steps compared", compared)
	}
}

// A Workflow author who calls a run template with hostile parameters gets
// no more than the fields they fill: JSON written to break out of a string
// stays in that string, JSON for one field fills that field alone, an
// image outside the allow-list and a value that would put an Argo template
// tag into the pod spec patch (which Argo evaluates again when it creates
// the pod) fail the step.
func TestRunTemplateRefusesHostileParameters(t *testing.T) {
	opts := testOptions()
	opts.TemplateReferencing = TemplateReferencingStrict
	runTemplate := backupSteps.clusterTemplate(opts).Spec
	dump := runStep(t, &runTemplate, StepDump, "")
	breakout := `x"}}],"volumes":[{"name":"host","hostPath":{"path":"/"}}],"containers":[{"name":"main","securityContext":{"privileged":true}}]}`
	tests := []struct {
		name   string
		params map[string]string
		// fails is the error the step fails with; empty when the patch is
		// built.
		fails string
		check func(t *testing.T, pod corev1.PodSpec)
	}{
		{name: "image outside the allow-list", params: map[string]string{"dump-image": "evil.example/miner:1"}, fails: "dump-image is not an image the chart allows"},
		{name: "an allowed image", params: map[string]string{"dump-image": "busybox"}},
		{name: "JSON in a Secret name", params: map[string]string{"dump-connection-secret": breakout, "dump-host-key": "host"}, check: func(t *testing.T, pod corev1.PodSpec) {
			if len(pod.Volumes) != 1 || pod.Containers[0].SecurityContext != nil {
				t.Errorf("the Secret name reshaped the pod: %+v", pod)
			}
			for _, e := range pod.Containers[0].Env {
				if e.Name == "BACKFLOW_DB_HOST" && e.ValueFrom.SecretKeyRef.Name != breakout {
					t.Errorf("the Secret name is %q", e.ValueFrom.SecretKeyRef.Name)
				}
			}
		}},
		{name: "JSON in a claim name and its read-only flag", params: map[string]string{"dump-claim-name": breakout, "dump-claim-read-only": `true,"hostPath":{"path":"/"}`}, check: func(t *testing.T, pod corev1.PodSpec) {
			for _, v := range pod.Volumes {
				if v.HostPath != nil {
					t.Errorf("a hostPath volume: %+v", v)
				}
			}
		}},
		{name: "a volume in the env", params: map[string]string{"dump-env": `[{"name":"A","value":"b"}],"volumes":[{"name":"host","hostPath":{"path":"/"}}]`}, fails: "failed to evaluate expression"},
		{name: "volumes in the resources", params: map[string]string{"dump-resources": `{"limits":{"cpu":"1"},"volumes":[{"name":"host","hostPath":{"path":"/"}}]}`}, check: func(t *testing.T, pod corev1.PodSpec) {
			if len(pod.Volumes) != 1 || pod.Containers[0].Resources.Limits.Cpu().String() != "1" {
				t.Errorf("resources reached past their field: %+v", pod)
			}
		}},
		{name: "privileged in the pod security context", params: map[string]string{"security-context": `{"runAsUser":0,"privileged":true}`}, check: func(t *testing.T, pod corev1.PodSpec) {
			if pod.Containers[0].SecurityContext != nil || pod.SecurityContext == nil || *pod.SecurityContext.RunAsUser != 0 {
				t.Errorf("the security context: %+v %+v", pod.SecurityContext, pod.Containers[0].SecurityContext)
			}
		}},
		{name: "an expression in a Secret name", params: map[string]string{"dump-recipients-secret": "{{=sprig.b64dec('InBsYWNlaG9sZGVyIg==')}}"}, fails: "dump: a parameter of the pod holds an Argo template tag"},
		{name: "a tag written as JSON escapes", params: map[string]string{"node-selector": `{"a":"\u007b\u007bworkflow.name}}"}`}, fails: "dump: a parameter of the pod holds an Argo template tag"},
		{name: "a parameter shadowed by a longer name", params: map[string]string{"dump-image.x": "evil.example/miner:1"}, fails: "dump-image is not an image the chart allows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strict := &wfv1.WorkflowSpec{}
			for k, v := range tt.params {
				strict.Arguments.Parameters = append(strict.Arguments.Parameters, value(k, v))
			}
			env := runTemplateEnv(&runTemplate, strict)
			image, patch, err := runPod(t, env, dump)
			if err == nil && tt.fails == "" {
				if !slices.Contains(opts.RunImages(), image) {
					t.Errorf("image %s", image)
				}
				pod := stepPod(t, &runTemplate, "", patch)
				if tt.check != nil {
					tt.check(t, pod)
				}
				return
			}
			if tt.fails == "" || err == nil || !strings.Contains(err.Error(), tt.fails) {
				t.Errorf("error %v, want one with %q", err, tt.fails)
			}
		})
	}
}

// The expressions of the run templates never hold "}}" before their end,
// which would end them early; their own copies of the stage templates take
// no image, backflow image or pod spec patch as an input, and read no input
// they lost.
func TestRunTemplateExpressionsAreWellFormed(t *testing.T) {
	for _, table := range []runTable{backupSteps, restoreSteps} {
		spec := table.clusterTemplate(testOptions()).Spec
		data, err := json.Marshal(spec.Templates)
		if err != nil {
			t.Fatal(err)
		}
		for _, tmpl := range spec.Templates {
			if tmpl.Container == nil {
				continue
			}
			data, _ := json.Marshal(tmpl)
			for _, ref := range regexp.MustCompile(`\{\{inputs\.parameters\.([a-z-]+)\}\}`).FindAllStringSubmatch(string(data), -1) {
				if !slices.ContainsFunc(tmpl.Inputs.Parameters, func(p wfv1.Parameter) bool { return p.Name == ref[1] }) {
					t.Errorf("%s: %s reads input %s, which it does not have", table.runTemplate, tmpl.Name, ref[1])
				}
			}
			for _, p := range tmpl.Inputs.Parameters {
				if p.Name == ParamImage || p.Name == ParamPodSpecPatch || p.Name == ParamBackflowImage {
					t.Errorf("%s: %s takes %s as an input", table.runTemplate, tmpl.Name, p.Name)
				}
			}
		}
		for _, expression := range strings.Split(string(data), "{{=")[1:] {
			body, _, ok := strings.Cut(expression, "}}")
			if !ok || !strings.HasPrefix(strings.TrimPrefix(expression, body), "}}\"") {
				t.Errorf("%s: an expression ends before its end: %.200s", table.runTemplate, expression)
			}
		}
	}
}

// A resource whose pod patch would hold "{{" does not compile, in either
// mode, naming the field: Argo evaluates the pod spec patch again when it
// creates the pod.
func TestTemplateTagsInThePodAreRefused(t *testing.T) {
	st := exampleStorage(t, examples(t))
	tag := "{{=sprig.b64dec('eCJ9XSwidm9sdW1lcyI6W3siaG9zdFBhdGgiOnt9fV0=')}}"
	for _, mode := range []TemplateReferencing{TemplateReferencingInline, TemplateReferencingStrict} {
		opts := testOptions()
		opts.TemplateReferencing = mode
		b := &v1.Backup{Spec: v1.BackupSpec{
			Source: v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat"}, Env: []corev1.EnvVar{{Name: "X", Value: tag}}}},
		}}
		b.Name, b.Namespace = "b", "apps"
		if _, err := Backup(BackupInput{Backup: b, Storage: st}, opts); err == nil || !strings.HasPrefix(err.Error(), `spec.source.command.env must not contain '{{'`) {
			t.Errorf("%q: a tag in a command's env: %v", mode, err)
		}
		b.Spec.Source.Command.Env = nil
		b.Spec.Hooks = &v1.Hooks{Post: &v1.Hook{Container: &v1.ContainerHook{Image: "busybox", Command: []string{"echo", "{{workflow.name}}"}}}}
		if _, err := Backup(BackupInput{Backup: b, Storage: st}, opts); err == nil || !strings.HasPrefix(err.Error(), `spec.hooks.post.container.command must not contain '{{'`) {
			t.Errorf("%q: a tag in a hook's command: %v", mode, err)
		}
	}
}
