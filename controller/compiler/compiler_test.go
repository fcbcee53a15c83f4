package compiler

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func testOptions() Options {
	o := DefaultOptions()
	o.Image = "registry.test/backflow:v0.0.0"
	// The user images of examples/ and of the tests' hooks.
	o.AllowedImages = []string{"registry.example.com/acme/exporter:2.4.1", "docker.io/library/busybox:1.36", "busybox"}
	return o
}

func repoRoot() string { return filepath.Join("..", "..") }

// examples decodes every object of examples/, keyed by file name.
func examples(t *testing.T) map[string][]map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(), "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], obj)
		}
	}
	return out
}

func convert(t *testing.T, obj map[string]any, into any) {
	t.Helper()
	data, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatal(err)
	}
}

// exampleStorage is the BackupStorage of examples/storage-minio.yaml.
func exampleStorage(t *testing.T, ex map[string][]map[string]any) StorageAccess {
	t.Helper()
	for _, obj := range ex["storage-minio.yaml"] {
		if obj["kind"] == "BackupStorage" {
			var s v1.BackupStorage
			convert(t, obj, &s)
			s.Namespace = "apps"
			return StorageAccess{Storage: &s}
		}
	}
	t.Fatal("no BackupStorage example")
	return StorageAccess{}
}

// checkGolden compares an object, without its (empty) status, with its
// golden file.
func checkGolden(t *testing.T, name string, obj any) {
	t.Helper()
	data, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "status")
	got, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./controller/compiler -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run go test ./controller/compiler -update\n%s", name, lineDiff(string(want), string(got)))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("first difference at line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}

type templateGetter map[string]*wfv1.ClusterWorkflowTemplate

func (g templateGetter) Get(name string) (*wfv1.ClusterWorkflowTemplate, error) {
	if t, ok := g[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("no ClusterWorkflowTemplate %s", name)
}

type noTemplates struct{}

func (noTemplates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	return nil, fmt.Errorf("no WorkflowTemplate %s", name)
}

func clusterTemplates(opts Options) templateGetter {
	g := templateGetter{}
	for _, cwt := range ClusterWorkflowTemplates(opts) {
		g[cwt.Name] = cwt
	}
	return g
}

// Every example compiles, in both template-referencing modes, passes Argo's
// own validation against the ClusterWorkflowTemplates, and matches its golden
// file. In Strict mode Argo's check of what a Workflow may set beside its
// template reference passes too.
func TestExamplesCompile(t *testing.T) {
	for _, mode := range []TemplateReferencing{TemplateReferencingInline, TemplateReferencingStrict} {
		t.Run(cmp.Or(string(mode), "Inline"), func(t *testing.T) {
			opts := testOptions()
			opts.TemplateReferencing = mode
			compileExamples(t, opts)
		})
	}
}

func compileExamples(t *testing.T, opts Options) {
	cwts := clusterTemplates(opts)
	strict := opts.TemplateReferencing == TemplateReferencingStrict
	checkStrict := func(file string, spec *wfv1.WorkflowSpec) {
		if !strict {
			return
		}
		data, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(data, &fields); err != nil {
			t.Fatal(err)
		}
		// Argo's allow-list beside a workflowTemplateRef (workflow/util
		// ValidateUserOverrides), narrowed to what backflow needs; the real
		// Argo in Strict mode checks the rest in test/strict.
		allowed := map[string]bool{"workflowTemplateRef": true, "arguments": true, "activeDeadlineSeconds": true, "podGC": true, "ttlStrategy": true}
		for f := range fields {
			if !allowed[f] {
				t.Errorf("%s: a Strict Workflow sets %s", file, f)
			}
		}
		if spec.WorkflowTemplateRef == nil {
			t.Errorf("%s: a Strict Workflow references no template", file)
		}
	}
	for _, cwt := range cwts {
		if err := validate.ValidateClusterWorkflowTemplate(noTemplates{}, cwts, cwt.DeepCopy(), nil, validate.ValidateOpts{}); err != nil {
			t.Errorf("ClusterWorkflowTemplate %s: %v", cwt.Name, err)
		}
	}
	ex := examples(t)
	st := exampleStorage(t, ex)
	compiled := 0
	for file, objs := range ex {
		for _, obj := range objs {
			golden := strings.TrimSuffix(file, ".yaml") + ".golden.yaml"
			if strict {
				golden = strings.TrimSuffix(file, ".yaml") + ".strict.golden.yaml"
			}
			switch obj["kind"] {
			case "Backup":
				var b v1.Backup
				convert(t, obj, &b)
				b.Namespace = "apps"
				wf, err := Backup(BackupInput{Backup: &b, Storage: st}, opts)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				if err := validate.ValidateWorkflow(noTemplates{}, cwts, wf.DeepCopy(), nil, validate.ValidateOpts{}); err != nil {
					t.Errorf("%s: Argo rejects the Workflow: %v", file, err)
				}
				checkStrict(file, &wf.Spec)
				checkGolden(t, golden, wf)
			case "BackupSchedule":
				var s v1.BackupSchedule
				convert(t, obj, &s)
				s.Namespace = "apps"
				cwf, err := Schedule(ScheduleInput{Schedule: &s, Storage: st}, opts)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				if err := validate.ValidateCronWorkflow(t.Context(), noTemplates{}, cwts, cwf.DeepCopy(), nil); err != nil {
					t.Errorf("%s: Argo rejects the CronWorkflow: %v", file, err)
				}
				checkStrict(file, &cwf.Spec.WorkflowSpec)
				checkGolden(t, golden, cwf)
			case "Restore":
				var r v1.Restore
				convert(t, obj, &r)
				r.Namespace = "apps"
				wf, err := Restore(RestoreInput{Restore: &r, Storage: st, Key: "apps/shop-nightly/20261101T030000Z.pgdump.zst.age",
					Checksum: "sha256:" + strings.Repeat("9f", 32), Identity: r.Spec.IdentitySecretRef}, opts)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				if err := validate.ValidateWorkflow(noTemplates{}, cwts, wf.DeepCopy(), nil, validate.ValidateOpts{}); err != nil {
					t.Errorf("%s: Argo rejects the Workflow: %v", file, err)
				}
				checkStrict(file, &wf.Spec)
				checkGolden(t, golden, wf)
			default:
				continue
			}
			compiled++
		}
	}
	if compiled < 7 {
		t.Errorf("compiled %d examples, want at least 7", compiled)
	}
}

// The stage templates in workflowtemplates/ are the ones the compiler
// references, generated from this package (make generate); they cannot drift.
func TestWorkflowTemplatesAreCurrent(t *testing.T) {
	for _, cwt := range ClusterWorkflowTemplates(DefaultOptions()) {
		want, err := MarshalTemplate(cwt)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(repoRoot(), "workflowtemplates", cwt.Name+".yaml")
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v: run make generate", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make generate\n%s", path, lineDiff(string(got), string(want)))
		}
	}
}

// The example of a platform team's own Workflow that calls the stage
// templates, in workflowtemplates/examples, passes Argo's validation.
func TestOwnWorkflowExampleIsValid(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "workflowtemplates", "examples", "own-workflow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf wfv1.Workflow
	if err := yaml.UnmarshalStrict(data, &wf); err != nil {
		t.Fatal(err)
	}
	if err := validate.ValidateWorkflow(noTemplates{}, clusterTemplates(DefaultOptions()), &wf, nil, validate.ValidateOpts{}); err != nil {
		t.Errorf("Argo rejects the example: %v", err)
	}
}

// Secrets travel only as references: no compiled object holds a value of
// the Secrets the examples name, and every env var that comes from a Secret
// uses secretKeyRef.
func TestNoSecretValuesInWorkflows(t *testing.T) {
	opts := testOptions()
	st := exampleStorage(t, examples(t))
	b := &v1.Backup{Spec: v1.BackupSpec{
		Source: v1.BackupSource{PostgreSQL: &v1.PostgreSQLSource{Connection: v1.DatabaseConnection{
			Host: "db", SecretRef: &v1.ConnectionSecretRef{Name: "db-secret", PasswordKey: "pw", URIKey: "uri"},
		}}},
		Encryption: &v1.Encryption{Age: &v1.AgeEncryption{
			RecipientsSecretRef: &v1.SecretKeySelector{Name: "recipients", Key: "r"},
			IdentitySecretRef:   &v1.SecretKeySelector{Name: "identity", Key: "id"},
		}},
		Verify:    &v1.VerifySpec{RestoreTest: &v1.RestoreTest{Connection: &v1.DatabaseConnection{Host: "scratch", SecretRef: &v1.ConnectionSecretRef{Name: "scratch-secret"}}}},
		Retention: &v1.Retention{KeepLast: ptr(int32(3))},
	}}
	b.Name, b.Namespace = "b", "apps"
	wf, err := Backup(BackupInput{Backup: b, Storage: st}, opts)
	if err != nil {
		t.Fatal(err)
	}
	patches := map[string]string{}
	for _, task := range wf.Spec.Templates[0].DAG.Tasks {
		for _, p := range task.Arguments.Parameters {
			if p.Name == ParamPodSpecPatch {
				patches[task.Name] = p.Value.String()
			}
		}
	}
	var dump, verify struct {
		Containers []corev1.Container `json:"containers"`
		Volumes    []corev1.Volume    `json:"volumes"`
	}
	if err := yaml.Unmarshal([]byte(patches[StepDump]), &dump); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(patches[StepVerify]), &verify); err != nil {
		t.Fatal(err)
	}
	for _, e := range append(dump.Containers[0].Env, verify.Containers[0].Env...) {
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s is not a secretKeyRef: %+v", e.Name, e)
		}
	}
	for _, v := range dump.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "identity" {
			t.Error("the age identity is mounted into the dump step")
		}
	}
	found := false
	for _, v := range verify.Volumes {
		found = found || (v.Secret != nil && v.Secret.SecretName == "identity")
	}
	if !found {
		t.Error("the age identity is not mounted into the verify step")
	}
	if strings.Contains(patches[StepRotate], "identity") {
		t.Error("the age identity is mounted into the rotate step")
	}
}

// A MongoDB Backup with oplog capture is refused when it is compiled, before
// any step runs, naming the field; its dump steps run in the backflow image.
func TestMongoDBBackup(t *testing.T) {
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "events", Namespace: "shop"}, Spec: v1.BackupSpec{
		Source:  v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: v1.DatabaseConnection{Host: "mongo"}, Oplog: true}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "minio"}},
	}}
	_, err := Backup(BackupInput{Backup: b, Storage: StorageAccess{}}, testOptions())
	if err == nil || !strings.HasPrefix(err.Error(), "spec.source.mongodb.oplog: oplog capture is not available") {
		t.Errorf("oplog: %v", err)
	}
	b.Spec.Source.MongoDB.Oplog = false
	wf, err := Backup(BackupInput{Backup: b, Storage: exampleStorage(t, examples(t))}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	images := 0
	for _, tmpl := range wf.Spec.Templates {
		if tmpl.DAG == nil {
			continue
		}
		for _, task := range tmpl.DAG.Tasks {
			for _, p := range task.Arguments.Parameters {
				if p.Name == ParamImage {
					images++
					if p.Value.String() != testOptions().Image {
						t.Errorf("%s runs in %s, not the backflow image", task.Name, p.Value)
					}
				}
			}
		}
	}
	if images < 2 {
		t.Errorf("%d steps name their image, want dump and verify", images)
	}
}

// tenantStorage is the example storage with every namespace's keys below
// tenants/<namespace>/.
func tenantStorage(t *testing.T) StorageAccess {
	st := exampleStorage(t, examples(t))
	st.Storage.Spec.NamespacePrefix = "tenants/{{ .Namespace }}/"
	return st
}

// exampleOf is the first object of a kind in an example file.
func exampleOf(t *testing.T, file, kind string, into any) {
	t.Helper()
	for _, obj := range examples(t)[file] {
		if obj["kind"] == kind {
			convert(t, obj, into)
			return
		}
	}
	t.Fatalf("no %s in %s", kind, file)
}

// With a custom namespace prefix, a schedule without a path writes below
// it: dump, verify and rotate are given the prefix and the default path
// starts with it.
func TestCustomNamespacePrefix(t *testing.T) {
	var s v1.BackupSchedule
	exampleOf(t, "postgresql-nightly-schedule.yaml", "BackupSchedule", &s)
	s.Namespace = "apps"
	s.Spec.Template.Spec.Storage.Path = ""
	opts := testOptions()
	cwf, err := Schedule(ScheduleInput{Schedule: &s, Storage: tenantStorage(t)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.ValidateCronWorkflow(t.Context(), noTemplates{}, clusterTemplates(opts), cwf.DeepCopy(), nil); err != nil {
		t.Errorf("Argo rejects the CronWorkflow: %v", err)
	}
	checkGolden(t, "postgresql-nightly-schedule.tenants.golden.yaml", cwf)
}

// A path template or key that leaves the namespace's prefix, or a template
// that does not render a clean key, fails the compile with its reason and
// the field, before any Workflow exists.
func TestKeysOutsideThePrefixAreRefused(t *testing.T) {
	for _, tc := range []struct {
		path   string
		tenant bool
		reason v1.ConditionReason
	}{
		{path: `{{ "bob" }}/x`, reason: v1.ReasonKeyOutsidePrefix},
		{path: `bob/{{ .Name }}`, reason: v1.ReasonKeyOutsidePrefix},
		{path: `{{ .Namespace }}/{{ .Series }}`, tenant: true, reason: v1.ReasonKeyOutsidePrefix},
		{path: `../bob/x`, reason: v1.ReasonInvalidPath},
		{path: `/abs`, reason: v1.ReasonInvalidPath},
		{path: `{{ .Nope }}`, reason: v1.ReasonInvalidPath},
		{path: `{{ .Namespace }}/{{`, reason: v1.ReasonInvalidPath},
		{path: `{{ .Namespace }}/{{ .Series }}`},
		{path: `tenants/{{ .Namespace }}/{{ .Series }}`, tenant: true},
		// The old CRD default, stored before namespacePrefix existed, is
		// the default path, inside any prefix.
		{path: DefaultPath, tenant: true},
	} {
		st := exampleStorage(t, examples(t))
		if tc.tenant {
			st = tenantStorage(t)
		}
		b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "nightly"}, Spec: backupSpecWithPath(tc.path)}
		_, err := Backup(BackupInput{Backup: b, Storage: st}, testOptions())
		s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "nightly"}, Spec: v1.BackupScheduleSpec{Schedule: "0 3 * * *"}}
		s.Spec.Template.Spec = backupSpecWithPath(tc.path)
		_, schedErr := Schedule(ScheduleInput{Schedule: s, Storage: st}, testOptions())
		if tc.reason == "" {
			if err != nil || schedErr != nil {
				t.Errorf("%s: %v, %v", tc.path, err, schedErr)
			}
			continue
		}
		for field, err := range map[string]error{"spec.storage.path: ": err, "spec.template.spec.storage.path: ": schedErr} {
			if err == nil || FailureReason(err) != tc.reason || !strings.HasPrefix(err.Error(), field) {
				t.Errorf("%s: %v, want %s naming %s", tc.path, err, tc.reason, field)
			}
		}
	}

	r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "r"}, Spec: v1.RestoreSpec{
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"cat"}}}}}
	for key, inside := range map[string]bool{"apps/nightly/x": true, "bob/nightly/x": false, "apps/../bob/x": false, "apps": false} {
		_, err := Restore(RestoreInput{Restore: r, Storage: exampleStorage(t, examples(t)), Key: key, KeyField: "spec.from.object.key"}, testOptions())
		if inside != (err == nil) || (err != nil && (FailureReason(err) != v1.ReasonKeyOutsidePrefix || !strings.HasPrefix(err.Error(), "spec.from.object.key: "))) {
			t.Errorf("restore of %s: %v, want inside %v", key, err, inside)
		}
	}
}

func backupSpecWithPath(path string) v1.BackupSpec {
	return v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "minio"}, Path: path},
	}
}

// With exec hooks off (the chart's hooks.exec false: no hook account), a
// Backup or Restore with an exec hook does not compile, naming the hook and
// the chart value; a container hook still does.
func TestExecHooksOff(t *testing.T) {
	opts := testOptions()
	opts.ExecHooks = false
	st := exampleStorage(t, examples(t))
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "apps"}, Spec: v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "minio"}},
		Hooks: &v1.Hooks{
			Pre:  &v1.Hook{Container: &v1.ContainerHook{Image: "busybox", Command: []string{"true"}}},
			Post: &v1.Hook{Exec: &v1.ExecHook{PodName: "app", Command: []string{"thaw"}}},
		},
	}}
	for _, mode := range []TemplateReferencing{TemplateReferencingInline, TemplateReferencingStrict} {
		opts.TemplateReferencing = mode
		_, err := Backup(BackupInput{Backup: b, Storage: st}, opts)
		if err == nil || !strings.HasPrefix(err.Error(), "spec.hooks.post.exec: exec hooks are turned off") || !strings.Contains(err.Error(), "hooks.exec") {
			t.Errorf("%q: %v, want an error naming spec.hooks.post.exec and hooks.exec", mode, err)
		}
		r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "back", Namespace: "apps"}, Spec: v1.RestoreSpec{
			From:   v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: "minio"}, Key: "apps/x.bin"}},
			Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"cat"}}},
			Hooks:  &v1.Hooks{Pre: b.Spec.Hooks.Post},
		}}
		if _, err := Restore(RestoreInput{Restore: r, Storage: st, Key: "apps/x.bin"}, opts); err == nil || !strings.HasPrefix(err.Error(), "spec.hooks.pre.exec: ") {
			t.Errorf("%q: Restore: %v, want an error naming spec.hooks.pre.exec", mode, err)
		}
		b2 := b.DeepCopy()
		b2.Spec.Hooks.Post = nil
		if _, err := Backup(BackupInput{Backup: b2, Storage: st}, opts); err != nil {
			t.Errorf("%q: a container hook: %v", mode, err)
		}
	}
}
