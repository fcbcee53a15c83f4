package compiler

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// In Strict mode a Workflow author calls the run templates with Workflow
// parameters alone, so those parameters are all the run templates trust
// them with: no free image, no free pod spec patch. A step's image must be
// one of the images the chart allows (imageExpr), and its pod spec patch is
// built inside the run template from one parameter per field the Backup API
// lets a resource set (podSpecPatchExpr): each parameter fills its own field,
// as a string or, for a field that is a list or an object of the Kubernetes
// API (env, resources, tolerations...), as the JSON a parser reads into that
// field alone. The expressions are Argo's ({{= ... }}, expr-lang with Argo's
// toJson and sprig); their literals are back-quoted strings, and they never
// hold "}}", which would end the expression early.

// Run template parameters that shape a step's pod, beside the stage
// templates' own (<step>-<parameter>).
const (
	paramConnectionSecret = "connection-secret"
	paramHostKey          = "host-key"
	paramPortKey          = "port-key"
	paramUsernameKey      = "username-key"
	paramPasswordKey      = "password-key"
	paramDatabaseKey      = "database-key"
	paramURIKey           = "uri-key"
	paramRecipientsSecret = "recipients-secret"
	paramRecipientsKey    = "recipients-key"
	paramIdentitySecret   = "identity-secret"
	paramIdentityKey      = "identity-key"
	paramClaimName        = "claim-name"
	paramClaimReadOnly    = "claim-read-only"
	// paramEnv, paramResources, paramMainCommand and paramMainArgs hold
	// JSON: a list of EnvVar, a ResourceRequirements, a list of strings.
	paramEnv         = "env"
	paramResources   = "resources"
	paramMainCommand = "main-command"
	paramMainArgs    = "main-args"
)

// Run template parameters that shape every pod of the run, as the
// resource's serviceAccountName and pod overrides do; the object and list
// ones hold JSON.
const (
	ParamServiceAccountName = "service-account-name"
	ParamNodeSelector       = "node-selector"
	ParamTolerations        = "tolerations"
	ParamSecurityContext    = "security-context"
	ParamPriorityClassName  = "priority-class-name"
)

var podWideParams = []string{ParamServiceAccountName, ParamNodeSelector, ParamTolerations, ParamSecurityContext, ParamPriorityClassName}

// podFields says which fields of the pod a stage template's step may have
// set, and so which parameters the run template has for it.
type podFields struct {
	resources, recipients, identity, connection, env, claim, command bool
	// progress: the step reports progress (progressContainer).
	progress bool
	// ownAccount: the step runs as its template's account (the exec hook's
	// HookServiceAccount, with its token), never the run's: a patch applies
	// after the template and would replace it.
	ownAccount bool
}

// params are the run template parameters of the fields, in a fixed order.
func (f podFields) params() []string {
	var out []string
	add := func(on bool, names ...string) {
		if on {
			out = append(out, names...)
		}
	}
	add(f.resources, paramResources)
	add(f.identity, paramIdentitySecret, paramIdentityKey)
	add(f.recipients, paramRecipientsSecret, paramRecipientsKey)
	add(f.connection, paramConnectionSecret, paramHostKey, paramPortKey, paramUsernameKey, paramPasswordKey, paramDatabaseKey, paramURIKey)
	add(f.env, paramEnv)
	add(f.claim, paramClaimName, paramClaimReadOnly)
	add(f.command, paramMainCommand, paramMainArgs)
	return out
}

// stagePodFields are the fields each stage template's steps set (see the
// podPatch calls in backup.go, restore.go and hookTask).
var stagePodFields = map[string]podFields{
	EntryDump:          {resources: true, recipients: true, connection: true, env: true, claim: true, progress: true},
	EntryVerify:        {resources: true, identity: true, connection: true, progress: true},
	EntryRestore:       {resources: true, identity: true, connection: true, env: true, claim: true, progress: true},
	EntryRotate:        {},
	EntryExecHook:      {ownAccount: true},
	EntryContainerHook: {env: true, command: true},
}

// strictArguments are the run template arguments of a step's patch: its
// fields, by parameter (without the step's prefix). A volume other than a
// claim has no parameter and is refused.
func (p *podPatch) strictArguments() (map[string]string, error) {
	args := map[string]string{}
	set := func(name, v string) {
		if v != "" {
			args[name] = v
		}
	}
	setJSON := func(name string, v any, empty bool) error {
		if empty {
			return nil
		}
		data, err := json.Marshal(v)
		args[name] = string(data)
		return err
	}
	if s := p.identitySecret; s != nil {
		set(paramIdentitySecret, s.Name)
		set(paramIdentityKey, s.Key)
	}
	if s := p.recipientsSecret; s != nil {
		set(paramRecipientsSecret, s.Name)
		set(paramRecipientsKey, s.Key)
	}
	if c := p.conn; c != nil {
		set(paramConnectionSecret, c.Name)
		for _, kv := range connectionKeys(c) {
			set(kv.param, kv.key)
		}
	}
	if v := p.volume; v != nil {
		if v.PersistentVolumeClaim == nil {
			return nil, fmt.Errorf("the run template %s mounts only a PersistentVolumeClaim as the data volume", TemplateBackupRun)
		}
		set(paramClaimName, v.PersistentVolumeClaim.ClaimName)
		set(paramClaimReadOnly, fmt.Sprint(p.volumeReadOnly))
	}
	for _, err := range []error{
		setJSON(paramEnv, p.env, len(p.env) == 0),
		setJSON(paramResources, p.resourceReqs, p.resourceReqs == nil),
		setJSON(paramMainCommand, p.command, len(p.command) == 0),
		setJSON(paramMainArgs, p.args, len(p.args) == 0),
	} {
		if err != nil {
			return nil, err
		}
	}
	return args, nil
}

// podWideArguments are the run template arguments of what an inline
// Workflow spec sets for every pod.
func podWideArguments(ws *wfv1.WorkflowSpec) (map[string]string, error) {
	args := map[string]string{ParamServiceAccountName: ws.ServiceAccountName, ParamPriorityClassName: ws.PodPriorityClassName}
	for name, v := range map[string]any{ParamNodeSelector: ws.NodeSelector, ParamTolerations: ws.Tolerations, ParamSecurityContext: ws.SecurityContext} {
		switch v := v.(type) {
		case map[string]string:
			if len(v) == 0 {
				continue
			}
		case []corev1.Toleration:
			if len(v) == 0 {
				continue
			}
		case *corev1.PodSecurityContext:
			if v == nil {
				continue
			}
		}
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		args[name] = string(data)
	}
	return args, nil
}

// exprParam reads a Workflow parameter in an expression.
func exprParam(name string) string { return "workflow.parameters[`" + name + "`]" }

// lit is a literal string of an expression; s never holds a back quote.
func lit(s string) string { return "`" + s + "`" }

// object is an expression's map literal of key, value pairs; the closing
// brace stands apart, so that nested maps never put "}}" in the expression.
func object(kv ...string) string {
	var fields []string
	for i := 0; i < len(kv); i += 2 {
		fields = append(fields, lit(kv[i])+": "+kv[i+1])
	}
	return "{" + strings.Join(fields, ", ") + " }"
}

func list(items ...string) string { return "[" + strings.Join(items, ", ") + "]" }

// unset holds when a parameter is empty.
func unset(param string) string { return exprParam(param) + " == ``" }

// ifSet is then when the parameter is set, otherwise.
func ifSet(param, then, otherwise string) string {
	return "(" + unset(param) + " ? " + otherwise + " : " + then + ")"
}

// text is a parameter inserted as a string, whatever it holds.
func text(param string) string { return "string(" + exprParam(param) + ")" }

// parsed is a parameter's JSON, read into the field it fills.
func parsed(param string) string { return "fromJSON(" + exprParam(param) + ")" }

// concatLists joins lists into one; never null, which a strategic merge
// patch reads as "delete the template's own" (expr's concat of empty lists
// is null, its flatten an empty list).
func concatLists(lists []string) string { return "flatten(" + list(lists...) + ")" }

// omitUnset drops the keys of a map whose parameter is empty: a strategic
// merge patch with an empty string or list would clear the template's own.
func omitUnset(m string, keyParams ...string) string {
	if len(keyParams) == 0 {
		return m
	}
	args := []string{m}
	for i := 0; i < len(keyParams); i += 2 {
		args = append(args, "("+unset(keyParams[i+1])+" ? "+lit(keyParams[i])+" : ``)")
	}
	return "sprig.omit(" + strings.Join(args, ", ") + ")"
}

// omitIf drops a key of a map when cond holds.
func omitIf(m, key, cond string) string {
	return "sprig.omit(" + m + ", (" + cond + " ? " + lit(key) + " : ``))"
}

// podSpecPatchExpr is the expression of a step's pod spec patch in a run
// template: the same patch podPatch.String and the inline Workflow's pod
// fields make, built from the step's parameters (step-prefixed) and the
// run's. It fails the step when any value would put "{{" in the patch:
// Argo evaluates a pod spec patch again when it creates the pod, and a tag
// there could write past the field it came in.
func podSpecPatchExpr(step string, f podFields, opts Options) string {
	p := func(name string) string { return stepParam(step, name) }
	secretEnv := func(env, secret, key string, optional bool) string {
		sel := []string{"name", text(secret), "key", text(key)}
		if optional {
			sel = append(sel, "optional", "true")
		}
		return list(object("name", lit(env), "valueFrom", object("secretKeyRef", object(sel...))))
	}
	var env, mounts, volumes []string
	mount := func(name, path string, readOnly string) string {
		return list(object("name", lit(name), "mountPath", lit(path), "readOnly", readOnly))
	}
	if f.identity {
		volumes = append(volumes, ifSet(p(paramIdentitySecret), list(object("name", lit(identityVolume), "secret", object(
			"secretName", text(p(paramIdentitySecret)), "defaultMode", fmt.Sprint(identityMode),
			"items", list(object("key", text(p(paramIdentityKey)), "path", lit("identity.txt")))))), "[]"))
		mounts = append(mounts, ifSet(p(paramIdentitySecret), mount(identityVolume, IdentityDir, "true"), "[]"))
	}
	if f.recipients {
		env = append(env, ifSet(p(paramRecipientsSecret), secretEnv(envRecipients, p(paramRecipientsSecret), p(paramRecipientsKey), false), "[]"))
	}
	if f.connection {
		for _, kv := range connectionKeys(nil) {
			env = append(env, "("+unset(p(paramConnectionSecret))+" or "+unset(p(kv.param))+" ? [] : "+
				secretEnv(kv.env, p(paramConnectionSecret), p(kv.param), true)+")")
		}
	}
	if f.env {
		env = append(env, ifSet(p(paramEnv), parsed(p(paramEnv)), "[]"))
	}
	if f.claim {
		readOnly := exprParam(p(paramClaimReadOnly)) + " == `true`"
		volumes = append(volumes, ifSet(p(paramClaimName), list(object("name", lit(dataVolume),
			"persistentVolumeClaim", object("claimName", text(p(paramClaimName)), "readOnly", readOnly))), "[]"))
		mounts = append(mounts, ifSet(p(paramClaimName), mount(dataVolume, VolumeRoot, readOnly), "[]"))
	}
	main := []string{"name", lit(mainContainer), "image", imageExpr(step, opts)}
	var omit []string
	if len(env) > 0 {
		main = append(main, "env", concatLists(env))
	}
	if len(mounts) > 0 {
		main = append(main, "volumeMounts", concatLists(mounts))
	}
	if f.resources {
		main = append(main, "resources", ifSet(p(paramResources), parsed(p(paramResources)), "{ }"))
		omit = append(omit, "resources", p(paramResources))
	}
	if f.command {
		main = append(main, "command", ifSet(p(paramMainCommand), parsed(p(paramMainCommand)), "[]"),
			"args", ifSet(p(paramMainArgs), parsed(p(paramMainArgs)), "[]"))
		omit = append(omit, "command", p(paramMainCommand), "args", p(paramMainArgs))
	}
	mainExpr := omitUnset(object(main...), omit...)
	// As podPatch.inBackflowImage: a step in the backflow image runs the
	// binary on its PATH, without the init container that copies it in. A
	// container hook's command is the user's.
	var notInBackflowImage string
	if !f.command {
		notInBackflowImage = exprParam(p(ParamImage)) + " != " + lit(opts.Image)
		mainExpr = omitIf(object(append(main, "command", list(lit(binaryName)))...), "command", notInBackflowImage)
		mainExpr = omitUnset(mainExpr, omit...)
	}
	containers := []string{mainExpr}
	if f.progress {
		wait := progressContainer()
		containers = append(containers, object("name", lit(wait.Name),
			"env", list(object("name", lit(wait.Env[0].Name), "value", lit(wait.Env[0].Value)))))
	}
	pod := []string{"containers", list(containers...)}
	if notInBackflowImage != "" {
		pod = append(pod, "initContainers", list(object("name", lit(installContainer), "$patch", lit("delete"))))
	}
	if len(volumes) > 0 {
		pod = append(pod, "volumes", concatLists(volumes))
	}
	var omitPodWide []string
	if !f.ownAccount {
		pod = append(pod, "serviceAccountName", text(ParamServiceAccountName))
		omitPodWide = append(omitPodWide, "serviceAccountName", ParamServiceAccountName)
	}
	pod = append(pod,
		"nodeSelector", ifSet(ParamNodeSelector, parsed(ParamNodeSelector), "{ }"),
		"tolerations", ifSet(ParamTolerations, parsed(ParamTolerations), "[]"),
		"securityContext", ifSet(ParamSecurityContext, parsed(ParamSecurityContext), "{ }"),
		"priorityClassName", text(ParamPriorityClassName))
	omitPodWide = append(omitPodWide, "nodeSelector", ParamNodeSelector, "tolerations", ParamTolerations,
		"securityContext", ParamSecurityContext, "priorityClassName", ParamPriorityClassName)
	podExpr := omitUnset(object(pod...), omitPodWide...)
	if notInBackflowImage != "" {
		podExpr = omitIf(podExpr, "initContainers", notInBackflowImage)
	}
	patch := "toJson(" + podExpr + ")"
	return "{{= " + patch + " contains `{{` ? sprig.fail(" + lit(step+": a parameter of the pod holds an Argo template tag") + ") : " + patch + " }}"
}

// RunImages are the images a run template's step may run in: the backflow
// image, the allowed user images and the client images (by engine key), in
// that order (the chart inserts the allowed images after the first).
func (o Options) RunImages() []string {
	images := append([]string{o.Image}, o.AllowedImages...)
	for _, key := range slices.Sorted(maps.Keys(o.ClientImages)) {
		images = append(images, o.ClientImages[key])
	}
	return images
}

// imageRef is what an image reference may hold: the run templates write
// images into expressions and YAML, where a quote or a back quote would end
// them. The chart's values schema has the same pattern.
var imageRef = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$`)

// CheckImages refuses options whose images are not plain image references.
func (o Options) CheckImages() error {
	for _, image := range o.RunImages() {
		if !imageRef.MatchString(image) {
			return fmt.Errorf("image %q is not an image reference (%s)", image, imageRef)
		}
	}
	return nil
}

// imageExpr is the image of a step's pod in a run template: the step's
// image parameter when it is one of RunImages, else the step fails.
func imageExpr(step string, opts Options) string {
	name := stepParam(step, ParamImage)
	var images []string
	for _, image := range opts.RunImages() {
		images = append(images, lit(image))
	}
	// No spaces in the list: the chart inserts the allowed images after the
	// first, and YAML folds long strings only at spaces.
	return "(" + exprParam(name) + " in [" + strings.Join(images, ",") + "] ? " + exprParam(name) + " : sprig.fail(" +
		lit(name+" is not an image the chart allows (image, clientImages, workflow.allowedImages)") + "))"
}
