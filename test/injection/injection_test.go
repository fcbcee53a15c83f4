// Package injection_test is the injection table: a shell- or
// option-injection string, or an Argo template tag, put into every string
// field of every kind (names and labels too) either is refused at
// admission by the real CRDs, with an error naming the field, or is refused
// by the compiler naming the field (maps and Kubernetes' own types that CEL
// cannot bound), or reaches the Workflow literally: as a parameter value or
// inside a JSON parameter value, which the stage templates pass as one whole
// --flag=value argument, never through a shell, and in no form Argo would
// substitute. The fields come from the CRD schemas, so a new field is in
// the table as soon as it is in a CRD (and fails
// TestBasesCoverEverySchemaField until a base object sets it).
package injection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
	"github.com/backflow-dev/backflow/test/envtest"
)

var stack *argotest.Stack

var dryRuns, aloneRuns atomic.Int64

func TestMain(m *testing.M) {
	var err error
	if stack, err = argotest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	fmt.Println("dry runs:", dryRuns.Load(), "alone:", aloneRuns.Load())
	stack.Stop()
	os.Exit(code)
}

// payloads are what an attacker types into a field: shell and option
// injection, control characters, path traversal, and Argo's template tags
// and expressions (simple, nested, and ones Argo errors on).
var payloads = []string{
	"$(id)", "`id`", "; rm -rf /", "--help", "-oProxyCommand=x", "-Fc", "--file=/etc/passwd", "a\nb", "a\x00b", "../../x",
	"{{workflow.name}}", "{{inputs.parameters.storage-secret}}", `{{=sprig.env("HOME")}}`, "{{= 1+1 }}",
	"{{ retries }}", "{{ .Namespace {{workflow.uid}} }}",
}

// keyPayloads go into map keys, which Kubernetes and the CRDs check
// less: shell, option and Argo injection.
var keyPayloads = []string{"$(id)", "-Fc", "{{workflow.name}}", "{{= 1+1 }}"}

// kind is one CRD with its base objects.
type kind struct {
	name, plural string
	specs        []string
}

var kinds = []kind{
	{"Backup", "backups", backupSpecs},
	{"BackupSchedule", "backupschedules", scheduleSpecs},
	{"Restore", "restores", restoreSpecs},
	{"BackupStorage", "backupstorages", storageSpecs},
}

func (k kind) base(t *testing.T, i int, name string) map[string]any {
	t.Helper()
	var spec map[string]any
	if err := yaml.Unmarshal([]byte("spec:"+k.specs[i]), &spec); err != nil {
		t.Fatalf("%s base %d: %v", k.name, i, err)
	}
	return map[string]any{
		"apiVersion": v1.GroupVersion.String(), "kind": k.name,
		"metadata": map[string]any{"name": name, "namespace": "default", "labels": map[string]any{"app": "shop"},
			"annotations": map[string]any{"note": "x"}},
		"spec": spec["spec"],
	}
}

// schemaFields are the string fields of a CRD's spec, as paths with []
// for a list's items, {} for a map's values and {key} for its keys.
func schemaFields(t *testing.T, plural string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(envtest.CRDDir(), "backflow.dev_"+plural+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(path string, s apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s apiextensionsv1.JSONSchemaProps) {
		switch {
		case s.Type == "string" || s.XIntOrString:
			out = append(out, path)
		case s.Type == "array" && s.Items != nil && s.Items.Schema != nil:
			walk(path+"[]", *s.Items.Schema)
		case s.Type == "object" && s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
			out = append(out, path+"{key}")
			walk(path+"{}", *s.AdditionalProperties.Schema)
		}
		for name, p := range s.Properties {
			walk(path+"."+name, p)
		}
	}
	walk("spec", crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"])
	sort.Strings(out)
	return out
}

// leaf is one string of an object: where it is (concrete, as the apiserver
// names it, and generic, as schemaFields does) and how to set it.
type leaf struct {
	path, field string
	set         func(string)
}

// leaves are the strings an object sets below spec (map keys included).
func leaves(obj map[string]any) []leaf {
	var out []leaf
	var walk func(path, field string, v any, set func(any))
	walk = func(path, field string, v any, set func(any)) {
		switch x := v.(type) {
		case string:
			out = append(out, leaf{path, field, func(s string) { set(s) }})
		case []any:
			for i := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), field+"[]", x[i], func(n any) { x[i] = n })
			}
		case map[string]any:
			keys := mapsKeys(x)
			sort.Strings(keys)
			for _, k := range keys {
				if isMapField(field) {
					k := k
					out = append(out, leaf{path + "[" + k + "]{key}", field + "{key}", func(s string) { x[s] = x[k]; delete(x, k) }})
					walk(path+"["+k+"]", field+"{}", x[k], func(n any) { x[k] = n })
					continue
				}
				walk(path+"."+k, field+"."+k, x[k], func(n any) { x[k] = n })
			}
		}
	}
	walk("spec", "spec", obj["spec"], func(any) {})
	return out
}

var mapFields = regexp.MustCompile(`\.(labels|annotations|nodeSelector|matchLabels|limits|requests)$`)

func isMapField(field string) bool { return mapFields.MatchString(field) }

func mapsKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func clone(obj map[string]any) map[string]any {
	data, _ := json.Marshal(obj)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

// TestBasesCoverEverySchemaField: every string field of every CRD is set by
// some base object, so that the table reaches it.
func TestBasesCoverEverySchemaField(t *testing.T) {
	for _, k := range kinds {
		covered := map[string]bool{}
		for i := range k.specs {
			for _, l := range leaves(k.base(t, i, "x")) {
				covered[l.field] = true
			}
		}
		for _, f := range schemaFields(t, k.plural) {
			// A schedule's template spec is a BackupSpec: the same Go
			// type, CEL rules and compiler as a Backup's, which the Backup
			// bases cover; the schedule's base runs one of them through
			// the CronWorkflow.
			if k.name == "BackupSchedule" && strings.HasPrefix(f, "spec.template.spec.") {
				continue
			}
			if !covered[f] {
				t.Errorf("%s: no base object in test/injection/bases_test.go sets %s: add it to one, so that the injection table puts its strings there", k.name, f)
			}
		}
	}
}

// marker is the injected value of field number i: the payload, then a
// suffix that tells the fields apart in the compiled Workflow.
func marker(payload string, i int) string { return payload + "~" + strconv.Itoa(i) }

var markerSuffix = regexp.MustCompile(`~[0-9]+`)

// dryRun creates obj without storing it and returns the apiserver's
// answer: the defaulted object, or the fields it refused with their
// messages.
func dryRun(t *testing.T, obj map[string]any) (*unstructured.Unstructured, map[string]string) {
	t.Helper()
	dryRuns.Add(1)
	u := &unstructured.Unstructured{Object: clone(obj)}
	err := stack.Client.Create(context.Background(), u, client.DryRunAll)
	if err == nil {
		return u, nil
	}
	var status apierrors.APIStatus
	if !asAPIStatus(err, &status) || status.Status().Details == nil || len(status.Status().Details.Causes) == 0 {
		t.Fatalf("dry-run create of %s: %v", obj["kind"], err)
	}
	refused := map[string]string{}
	for _, c := range status.Status().Details.Causes {
		refused[c.Field] += c.Message + "; "
	}
	return nil, refused
}

func asAPIStatus(err error, into *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	if ok {
		*into = s
	}
	return ok
}

// siblings says whether another injected leaf than l lies below the
// refused field f, which then may be what f was refused for.
func siblings(all []leaf, accepted map[string]bool, f string, l leaf) bool {
	nf := bracketKey.ReplaceAllString(f, ".$1")
	for _, o := range all {
		p := bracketKey.ReplaceAllString(o.path, ".$1")
		if o.path != l.path && accepted[o.path] && (p == nf || strings.HasPrefix(p, nf+".") || strings.HasPrefix(p, nf+"[")) {
			return true
		}
	}
	return false
}

var defaultedBases sync.Map // kind/index -> *unstructured.Unstructured

// defaultedBase is base i of kind k as the apiserver defaults it, failing
// the test when the apiserver refuses the base itself.
func defaultedBase(t *testing.T, k kind, i int, name string) *unstructured.Unstructured {
	t.Helper()
	key := fmt.Sprintf("%s/%d", k.name, i)
	if u, ok := defaultedBases.Load(key); ok {
		return u.(*unstructured.Unstructured)
	}
	u, refused := dryRun(t, k.base(t, i, name))
	if refused != nil {
		t.Fatalf("%s base %d is not valid: %v", k.name, i, refused)
	}
	defaultedBases.Store(key, u)
	return u
}

// refusedBy is the refused field that names l: l itself or an object or
// list that holds it.
func refusedBy(l leaf, value string, refused map[string]string) (string, bool) {
	// The apiserver names a map's entry parent.key or parent[key].
	path := bracketKey.ReplaceAllString(l.path, ".$1")
	for f := range refused {
		nf := bracketKey.ReplaceAllString(f, ".$1")
		if nf == path || strings.HasPrefix(path, nf+".") || strings.HasPrefix(path, nf+"[") {
			return f, true
		}
		if strings.HasSuffix(l.field, "{key}") && strings.Contains(f, value) {
			return l.path, true
		}
	}
	return "", false
}

var bracketKey = regexp.MustCompile(`\[([^\]0-9][^\]]*)\]`)

// TestInjection is the table: every payload in every string field of every
// base object of every kind.
func TestInjection(t *testing.T) {
	templates := compiler.ClusterWorkflowTemplates(compilerOptions())
	for _, k := range kinds {
		for i := range k.specs {
			t.Run(fmt.Sprintf("%s-%d", k.name, i), func(t *testing.T) {
				t.Parallel()
				for _, p := range payloads {
					injectInto(t, k, i, p, false)
				}
				for _, p := range keyPayloads {
					injectInto(t, k, i, p, true)
				}
			})
		}
	}
	t.Run("stage templates pass parameters as whole --flag=value arguments", func(t *testing.T) {
		for _, cwt := range templates {
			checkTemplates(t, cwt.Name, cwt.Spec.Templates)
		}
	})
}

// injectInto puts payload p into every string of base i of kind k, then
// sorts the fields into refused at admission, refused by the compiler, and
// accepted, and checks that every accepted one reaches the Workflow
// literally.
func injectInto(t *testing.T, k kind, i int, p string, keys bool) {
	t.Helper()
	name := strings.ToLower(k.name) + "-" + strconv.Itoa(i)
	base := k.base(t, i, name)
	defaultedBase(t, k, i, name)
	// Map keys and values are injected in separate objects: a key that
	// changes moves its value.
	var all []leaf
	for _, l := range leaves(base) {
		if strings.HasSuffix(l.field, "{key}") == keys {
			all = append(all, l)
		}
	}
	values := map[string]string{}
	for n, l := range all {
		values[l.path] = marker(p, n)
	}
	// The apiserver may stop at some errors before it looks for others
	// (CEL rules do not run where the schema already failed): fields it
	// did not refuse are tried again, together, until it accepts them.
	accepted := map[string]bool{}
	for _, l := range all {
		accepted[l.path] = true
	}
	var defaulted *unstructured.Unstructured
	for round := 0; ; round++ {
		try := clone(base)
		for _, l := range leaves(try) {
			if accepted[l.path] && strings.HasSuffix(l.field, "{key}") == keys {
				l.set(values[l.path])
			}
		}
		var refused map[string]string
		if defaulted, refused = dryRun(t, try); refused == nil {
			break
		}
		progress := false
		for _, l := range all {
			if !accepted[l.path] {
				continue
			}
			f, ok := refusedBy(l, values[l.path], refused)
			if ok && f != l.path && siblings(all, accepted, f, l) {
				// Refused through the object or list that holds it: the
				// leaf alone must be refused too, not one beside it.
				single := clone(base)
				for _, sl := range leaves(single) {
					if sl.path == l.path {
						sl.set(values[l.path])
					}
				}
				aloneRuns.Add(1)
				_, alone := dryRun(t, single)
				_, ok = refusedBy(l, values[l.path], alone)
			}
			if ok {
				accepted[l.path] = false
				progress = true
			}
		}
		if !progress || round > 5 {
			t.Errorf("%s base %d, payload %q: refused, naming no field the table set: %v", k.name, i, p, refused)
			return
		}
	}
	want := map[string]string{}
	for path, ok := range accepted {
		if ok {
			want[values[path]] = path
		}
	}
	compileAndCheck(t, k, i, p, defaulted, want)
}

func compilerOptions() compiler.Options {
	o := argotest.CompilerOptions()
	// The bases' own images, which Strict mode allows only from the list.
	o.AllowedImages = []string{"busybox", "mariadb:11", "mysql:8", "postgres:17"}
	return o
}

// access is how the compiler sees a storage from the namespace of the
// resource that uses it.
func access(st *v1.BackupStorage) compiler.StorageAccess {
	return compiler.StorageAccess{Storage: st}
}

// fixedStorage is the storage the resources of the table use.
func fixedStorage(t *testing.T) *v1.BackupStorage {
	t.Helper()
	var st v1.BackupStorage
	if err := yaml.Unmarshal([]byte("metadata: {name: shared, namespace: alice}\nspec:"+storageSpecs[0]), &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func decode(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatal(err)
	}
}

// generatedRecipient is what the controller resolves for a base's
// encryption.age.generate: the recipient of the identity in its Secret.
const generatedRecipient = "age1yng9s9l0m2m4g38qca3ga5qul620vjkvwmmhthg7jupr6f3vgp0qepxhw3"

// compile compiles a resource of the table in both modes.
func compile(t *testing.T, k kind, u *unstructured.Unstructured) ([]any, error) {
	t.Helper()
	var out []any
	for _, mode := range []compiler.TemplateReferencing{compiler.TemplateReferencingInline, compiler.TemplateReferencingStrict} {
		opts := compilerOptions()
		opts.TemplateReferencing = mode
		var obj any
		var err error
		strict := mode == compiler.TemplateReferencingStrict
		switch k.name {
		case "Backup":
			var b v1.Backup
			decode(t, u, &b)
			withoutPodMetadata(strict, b.Spec.Pod)
			obj, err = compiler.Backup(compiler.BackupInput{Backup: &b, Storage: access(fixedStorage(t)), AgeRecipient: generatedRecipient}, opts)
		case "BackupSchedule":
			var s v1.BackupSchedule
			decode(t, u, &s)
			withoutPodMetadata(strict, s.Spec.Template.Spec.Pod)
			obj, err = compiler.Schedule(compiler.ScheduleInput{Schedule: &s, Storage: access(fixedStorage(t)), AgeRecipient: generatedRecipient}, opts)
		case "Restore":
			var r v1.Restore
			decode(t, u, &r)
			withoutPodMetadata(strict, r.Spec.Pod)
			// A Backup's key inside the namespace's prefix, as the
			// controller resolves it, or the spec's own object key.
			key, field := "default/db/20261101T030000Z.pgdump.zst", "status.location.key"
			if r.Spec.From.Object != nil {
				key, field = r.Spec.From.Object.Key, "spec.from.object.key"
			}
			obj, err = compiler.Restore(compiler.RestoreInput{Restore: &r, Storage: access(fixedStorage(t)), Key: key, KeyField: field, Identity: r.Spec.IdentitySecretRef}, opts)
		case "BackupStorage":
			var st v1.BackupStorage
			decode(t, u, &st)
			var b v1.Backup
			decode(t, &unstructured.Unstructured{Object: kinds[0].base(t, 0, "uses-storage")}, &b)
			withoutPodMetadata(strict, b.Spec.Pod)
			obj, err = compiler.Backup(compiler.BackupInput{Backup: &b, Storage: access(&st), AgeRecipient: generatedRecipient}, opts)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

// withoutPodMetadata drops the pod labels and annotations a Strict
// Workflow cannot carry (the compiler refuses them, naming them), so that
// the other fields of the base are compiled in Strict mode too.
func withoutPodMetadata(strict bool, pod *v1.PodOverrides) {
	if strict && pod != nil {
		pod.Labels, pod.Annotations = nil, nil
	}
}

var namedField = regexp.MustCompile(`spec\.[A-Za-z.]+[A-Za-z]`)

// genericField is a concrete leaf path as the compiler names fields: no
// indices or keys, and a schedule's template spec as a Backup's spec.
func genericField(path string) string {
	return strings.Replace(leafField(path), "spec.template.spec.", "spec.", 1)
}

// leafField is a concrete leaf path without indices or keys.
func leafField(path string) string {
	return regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(path, "")
}

// compileAndCheck compiles the defaulted resource and checks where each
// wanted marker (the value of an accepted field) lands.
func compileAndCheck(t *testing.T, k kind, i int, p string, defaulted *unstructured.Unstructured, want map[string]string) {
	t.Helper()
	objs, err := compile(t, k, defaulted)
	if err != nil {
		// Find the fields the compiler refuses, one by one, in the base
		// as the apiserver defaulted it: each error must name its field.
		plain := defaultedBase(t, k, i, defaulted.GetName())
		for m, path := range want {
			one := &unstructured.Unstructured{Object: clone(plain.Object)}
			setLeaf(one.Object, path, m)
			if _, err := compile(t, k, one); err != nil {
				named := namedField.FindString(err.Error())
				if named == "" || !strings.HasPrefix(genericField(path), named) && !strings.HasPrefix(leafField(path), named) {
					t.Errorf("%s base %d: %s = %q: the compiler refuses it without naming the field: %v", k.name, i, path, m, err)
				}
				delete(want, m)
			}
		}
		together := &unstructured.Unstructured{Object: clone(plain.Object)}
		for m, path := range want {
			setLeaf(together.Object, path, m)
		}
		if objs, err = compile(t, k, together); err != nil {
			t.Errorf("%s base %d, payload %q: the fields the compiler accepts one by one fail together: %v", k.name, i, p, err)
			return
		}
	}
	for _, obj := range objs {
		data, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		walkStrings(doc, "", func(path, s string, decoded bool) {
			fields := fieldsIn(s, want)
			if len(fields) == 0 {
				return
			}
			// Argo templates a Workflow's spec, never its metadata
			// (operator.go, substituteGlobalVariables): the UI's title and
			// description are shown as they are.
			if !decoded && !uiText.MatchString(path) {
				if tag, ok := argoInterprets(s); ok {
					t.Errorf("%s base %d: %v reach %s as %q, in which Argo would substitute or fail on {{%s}}", k.name, i, fields, path, s, tag)
				}
			}
			if !allowedPlace(path) {
				t.Errorf("%s base %d: %v reach %s (%q): not a parameter value, a pod field of the Workflow's spec or its description", k.name, i, fields, path, s)
			}
		})
	}
}

// setLeaf sets the leaf at path (a map key, for a path ending in {key}).
func setLeaf(obj map[string]any, path, value string) {
	for _, l := range leaves(obj) {
		if l.path == path {
			l.set(value)
			return
		}
	}
}

// fieldsIn are the accepted fields whose marker's suffix s holds.
func fieldsIn(s string, want map[string]string) []string {
	var out []string
	for _, m := range markerSuffix.FindAllString(s, -1) {
		for marker, path := range want {
			if strings.HasSuffix(marker, m) {
				out = append(out, path)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// walkStrings calls f for every string of a JSON document, as Argo sees it
// (decoded false), and again for the strings of a string that is itself a
// JSON object or list (decoded true), as the step or Argo's pod spec patch
// reads it.
func walkStrings(v any, path string, f func(path, s string, decoded bool)) {
	var walk func(v any, path string, decoded bool)
	walk = func(v any, path string, decoded bool) {
		switch x := v.(type) {
		case string:
			f(path, x, decoded)
			if t := strings.TrimSpace(x); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
				var inner any
				if json.Unmarshal([]byte(x), &inner) == nil {
					walk(inner, path+"(json)", true)
				}
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s[%d]", path, i), decoded)
			}
		case map[string]any:
			for key, e := range x {
				walk(e, path+"."+key, decoded)
			}
		}
	}
	walk(v, path, false)
}

// allowedPlace: a parameter value (which the stage templates pass as one
// --flag=value argument), a pod field of the Workflow's spec (which Argo
// copies into the pods), or the Argo UI's title and description, which
// Argo does not template.
var allowedPlace = regexp.MustCompile(`^\.spec(\.workflowSpec)?\.(templates\[\d+\]\.dag\.tasks\[\d+\]\.arguments\.parameters\[\d+\]\.value|arguments\.parameters\[\d+\]\.value|nodeSelector|tolerations|securityContext|podMetadata|serviceAccountName|podPriorityClassName)|^\.(metadata|spec\.workflowMetadata)\.annotations\.workflows\.argoproj\.io/(title|description)$`).MatchString

var uiText = regexp.MustCompile(`^\.(metadata|spec\.workflowMetadata)\.annotations\.`)

// argoInterprets says whether Argo would do anything but copy s: the
// first tag it would substitute (a name it may know, an {{= expression, a
// tag nested in another), or fail on (a tag never closed). It scans as
// fasttemplate, which Argo's util/template uses, does: a tag is what lies
// between {{ and the next }}, and its name is looked up trimmed. Argo's
// names (workflow.name, inputs.parameters.x, tasks.a.outputs..., item,
// retries) start with a letter and hold no space.
func argoInterprets(s string) (string, bool) {
	for {
		n := strings.Index(s, "{{")
		if n < 0 {
			return "", false
		}
		s = s[n+2:]
		end := strings.Index(s, "}}")
		if end < 0 {
			return s + " (never closed)", true
		}
		tag := s[:end]
		trimmed := strings.TrimSpace(tag)
		if strings.HasPrefix(tag, "=") || strings.Contains(tag, "{{") || argoName.MatchString(trimmed) {
			return tag, true
		}
		s = s[end+2:]
	}
}

var argoName = regexp.MustCompile(`^[A-Za-z][^\s]*$`)

// checkTemplates: the stage templates run no shell and pass each input
// parameter as one whole argument, --name={{inputs.parameters.x}}.
func checkTemplates(t *testing.T, name string, templates []wfv1.Template) {
	t.Helper()
	// Besides parameters, only what Argo itself makes: the Workflow's
	// namespace, name, UID and creation time (the notify step's).
	whole := regexp.MustCompile(`^--[a-z-]+=\{\{(inputs\.parameters\.[a-z-]+|workflow\.parameters\.[a-z-]+|workflow\.namespace|workflow\.name|workflow\.uid|workflow\.creationTimestamp)\}\}$`)
	for _, tmpl := range templates {
		if tmpl.Script != nil {
			t.Errorf("%s/%s is a script template", name, tmpl.Name)
		}
		containers := []*struct{ cmd, args []string }{}
		if c := tmpl.Container; c != nil {
			containers = append(containers, &struct{ cmd, args []string }{c.Command, c.Args})
		}
		for _, c := range tmpl.InitContainers {
			containers = append(containers, &struct{ cmd, args []string }{c.Command, c.Args})
		}
		for _, c := range containers {
			for _, a := range append(slices.Clone(c.cmd), c.args...) {
				if a == "sh" || a == "bash" || a == "-c" || strings.HasSuffix(a, "/sh") {
					t.Errorf("%s/%s runs a shell: %q", name, tmpl.Name, append(c.cmd, c.args...))
				}
				if strings.Contains(a, "{{") && !whole.MatchString(a) {
					t.Errorf("%s/%s passes a parameter inside a larger argument: %q", name, tmpl.Name, a)
				}
			}
		}
	}
}

// TestNamesAndLabels: a payload as the name or in a label of any kind is
// refused by the apiserver's own checks, naming metadata.name or
// metadata.labels; one in an annotation is accepted and never reaches the
// Workflow.
func TestNamesAndLabels(t *testing.T) {
	for _, k := range kinds {
		for _, p := range payloads {
			obj := k.base(t, 0, strings.ToLower(k.name)+"-meta")
			meta := obj["metadata"].(map[string]any)
			meta["name"] = p
			if _, refused := dryRun(t, obj); !hasField(refused, "metadata.name") {
				t.Errorf("%s named %q is not refused naming metadata.name: %v", k.name, p, refused)
			}
			obj = k.base(t, 0, strings.ToLower(k.name)+"-meta")
			obj["metadata"].(map[string]any)["labels"] = map[string]any{"app": p}
			if _, refused := dryRun(t, obj); !hasField(refused, "metadata.labels") {
				t.Errorf("%s labelled app=%q is not refused naming metadata.labels: %v", k.name, p, refused)
			}
			obj = k.base(t, 0, strings.ToLower(k.name)+"-meta")
			obj["metadata"].(map[string]any)["annotations"] = map[string]any{"note": marker(p, 0)}
			u, refused := dryRun(t, obj)
			if refused != nil {
				t.Fatalf("%s annotated %q: %v", k.name, p, refused)
			}
			objs, err := compile(t, k, u)
			if err != nil {
				t.Fatalf("%s: %v", k.name, err)
			}
			for _, o := range objs {
				data, _ := json.Marshal(o)
				if strings.Contains(string(data), "~0") {
					t.Errorf("%s's annotation reaches the compiled %T", k.name, o)
				}
			}
		}
	}
}

func hasField(refused map[string]string, prefix string) bool {
	for f := range refused {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}
