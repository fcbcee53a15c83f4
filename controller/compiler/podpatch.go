package compiler

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// podPatch is what varies from one resource to the next in a step's pod
// (Secret references, volumes, resources, a hook's command), so that the
// stage templates stay generic. It holds references only, never a secret
// value. An inline Workflow passes it to the stage template as the strategic
// merge patch of its pod-spec-patch parameter (String); a Strict Workflow
// passes each field as a run template parameter (strictArguments), from
// which the run template builds the same patch itself (podSpecPatchExpr).
type podPatch struct {
	// connection is the connection Secret, with every key named (defaults
	// filled in); its keys become the BACKFLOW_DB_* variables.
	conn *v1.ConnectionSecretRef
	// recipients is the Secret key with more age recipients (dump).
	recipientsSecret *v1.SecretKeySelector
	// identity is the age identity (verify, restore).
	identitySecret *v1.SecretKeySelector
	// volume is the data volume an engine mounts at VolumeRoot.
	volume         *corev1.VolumeSource
	volumeReadOnly bool
	// env is set on the step's container as it is: a command's or a
	// container hook's environment.
	env          []corev1.EnvVar
	resourceReqs *corev1.ResourceRequirements
	// command and args are a container hook's.
	command, args []string
	// progress: the step reports its progress (dump, verify, restore), and
	// Argo's executor in the wait container passes it on every
	// ProgressReportInterval (progressContainer).
	progress bool
	// inBackflowImage is a step whose image is the backflow image: the
	// binary is on its PATH, so the patch drops the init container that
	// copies it in, one container start less before the step's work.
	inBackflowImage bool
}

// ProgressReportInterval is how often Argo's executor reports the progress
// of a step that moves data, instead of its default of once a minute: its
// wait container reads ARGO_PROGRESS_PATCH_TICK_DURATION, which Argo's
// workflow-controller sets from its own environment on every container of
// a step's pod, beside ARGO_PROGRESS_FILE_TICK_DURATION (3s by default). A
// workflow-controller that turns progress off (either duration 0) sets
// neither, and the executor then monitors nothing whatever this one says.
const ProgressReportInterval = "5s"

const envProgressPatchTick = "ARGO_PROGRESS_PATCH_TICK_DURATION"

// progressContainer is the pod patch's wait container of a step that
// reports progress: the pod spec patch applies after Argo added its own
// variables, so this value replaces the controller's.
func progressContainer() corev1.Container {
	return corev1.Container{Name: waitContainer, Env: []corev1.EnvVar{{Name: envProgressPatchTick, Value: ProgressReportInterval}}}
}

// progressPodSpecPatch is the default pod-spec-patch of the stage templates
// that report progress, for Workflows of one's own that call them.
func progressPodSpecPatch() string { return (&podPatch{progress: true}).String() }

func newPodPatch() *podPatch { return &podPatch{} }

// enginePod adds what an engine's step needs (see source.Pod).
func (p *podPatch) enginePod(pod source.Pod) {
	if pod.Connection != nil {
		p.connection(*pod.Connection)
	}
	p.env = append(p.env, pod.Env...)
	if pod.Volume != nil {
		p.volume, p.volumeReadOnly = pod.Volume, pod.VolumeReadOnly
	}
}

func (p *podPatch) resources(pod *v1.PodOverrides) {
	if pod != nil && pod.Resources != nil {
		p.resourceReqs = pod.Resources
	}
}

// connection passes a connection Secret's keys to the step as the
// BACKFLOW_DB_* variables the stages read. Keys the Secret lacks are
// skipped (optional), so one Secret shape fits every engine.
func (p *podPatch) connection(c v1.DatabaseConnection) {
	ref := c.SecretRef
	if ref == nil {
		return
	}
	p.conn = &v1.ConnectionSecretRef{
		Name: ref.Name, HostKey: cmp.Or(ref.HostKey, "host"), PortKey: cmp.Or(ref.PortKey, "port"),
		UsernameKey: cmp.Or(ref.UsernameKey, "username"), PasswordKey: cmp.Or(ref.PasswordKey, "password"),
		DatabaseKey: cmp.Or(ref.DatabaseKey, "database"), URIKey: ref.URIKey,
	}
}

// connectionKeys are the variables a connection Secret's keys fill, with the
// run template parameter that names each key.
func connectionKeys(ref *v1.ConnectionSecretRef) []struct{ env, param, key string } {
	if ref == nil {
		ref = &v1.ConnectionSecretRef{}
	}
	return []struct{ env, param, key string }{
		{source.EnvHost, paramHostKey, ref.HostKey},
		{source.EnvPort, paramPortKey, ref.PortKey},
		{source.EnvUsername, paramUsernameKey, ref.UsernameKey},
		{source.EnvPassword, paramPasswordKey, ref.PasswordKey},
		{source.EnvDatabase, paramDatabaseKey, ref.DatabaseKey},
		{source.EnvURI, paramURIKey, ref.URIKey},
	}
}

// identity mounts the age identity; only verify and restore steps get it.
func (p *podPatch) identity(sel *v1.SecretKeySelector) { p.identitySecret = sel }

// The volumes of a step, in the order the patch lists them.
func identityVolumeSource(secret, key string) corev1.VolumeSource {
	// Readable by the step whatever user its image runs as (the backflow
	// image is non-root, a client image may be root): the volume is the
	// pod's own and no other container mounts it.
	return corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: secret, DefaultMode: ptr(identityMode), Items: []corev1.KeyToPath{{Key: key, Path: "identity.txt"}},
	}}
}

const identityMode = int32(0o444)

// main is the patch's main container and volumes.
func (p *podPatch) main() (corev1.Container, []corev1.Volume) {
	c := corev1.Container{Name: mainContainer, Command: p.command, Args: p.args}
	if p.inBackflowImage {
		c.Command = []string{binaryName}
	}
	var volumes []corev1.Volume
	mount := func(v corev1.Volume, mountPath string, readOnly bool) {
		volumes = append(volumes, v)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: mountPath, ReadOnly: readOnly})
	}
	if p.resourceReqs != nil {
		c.Resources = *p.resourceReqs
	}
	if sel := p.identitySecret; sel != nil {
		mount(corev1.Volume{Name: identityVolume, VolumeSource: identityVolumeSource(sel.Name, sel.Key)}, IdentityDir, true)
	}
	if sel := p.recipientsSecret; sel != nil {
		c.Env = append(c.Env, corev1.EnvVar{Name: envRecipients, ValueFrom: secretRef(sel.Name, sel.Key, false)})
	}
	if ref := p.conn; ref != nil {
		for _, kv := range connectionKeys(ref) {
			if kv.key != "" {
				c.Env = append(c.Env, corev1.EnvVar{Name: kv.env, ValueFrom: secretRef(ref.Name, kv.key, true)})
			}
		}
	}
	c.Env = append(c.Env, p.env...)
	if p.volume != nil {
		mount(corev1.Volume{Name: dataVolume, VolumeSource: *p.volume}, VolumeRoot, p.volumeReadOnly)
	}
	return c, volumes
}

// String is the patch as JSON, "{}" when it changes nothing, with every
// "{{" of the spec's strings escaped (argoJSON).
func (p *podPatch) String() string {
	data, err := argoJSON(p.fields())
	if err != nil {
		panic(err) // only plain API types: cannot fail
	}
	return data
}

// fields is the patch as an object to marshal; nil when it changes nothing.
func (p *podPatch) fields() any {
	c, volumes := p.main()
	empty := volumes == nil && isEmptyContainer(c, corev1.Container{Name: mainContainer})
	if empty && !p.progress {
		return map[string]any{}
	}
	containers := []corev1.Container{c}
	if p.progress {
		containers = append(containers, progressContainer())
	}
	var initContainers []deleteDirective
	if p.inBackflowImage {
		initContainers = []deleteDirective{{Patch: "delete", Name: installContainer}}
	}
	return struct {
		InitContainers []deleteDirective  `json:"initContainers,omitempty"`
		Containers     []corev1.Container `json:"containers"`
		Volumes        []corev1.Volume    `json:"volumes,omitempty"`
	}{initContainers, containers, volumes}
}

// deleteDirective is a strategic merge patch's deletion of a list item, by
// the list's merge key.
type deleteDirective struct {
	Patch string `json:"$patch"`
	Name  string `json:"name"`
}

func isEmptyContainer(a, b corev1.Container) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func secretRef(name, key string, optional bool) *corev1.EnvVarSource {
	s := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}
	if optional {
		s.Optional = ptr(true)
	}
	return &corev1.EnvVarSource{SecretKeyRef: s}
}

// checkPatches refuses a step whose pod patch holds "{{": Argo evaluates a
// pod spec patch again when it creates the pod, and a tag there (from a
// Secret name, an env var, a hook's command) could write past its field. In
// Strict mode the run template refuses it too, with a less clear message.
func checkPatches(patches map[string]*podPatch) error {
	for _, step := range slices.Sorted(maps.Keys(patches)) {
		if p := patches[step]; p == nil {
			continue
		} else if data, _ := json.Marshal(p.fields()); strings.Contains(string(data), "{{") {
			return fmt.Errorf("the %s step's pod: a Secret or key name, an env var, a command or an argument holds \"{{\", which Argo would evaluate as a template tag in the pod spec patch", step)
		}
	}
	return nil
}
