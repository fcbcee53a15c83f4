package compiler

import (
	"cmp"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// podPatch is the strategic merge patch a step's pod-spec-patch parameter
// carries: what varies from one resource to the next (Secret references,
// volumes, resources, a hook's command) goes here, so that the stage
// templates stay generic. It holds references only, never a secret value.
type podPatch struct {
	main    corev1.Container
	volumes []corev1.Volume
}

func newPodPatch() *podPatch { return &podPatch{main: corev1.Container{Name: mainContainer}} }

func (p *podPatch) env(env ...corev1.EnvVar) { p.main.Env = append(p.main.Env, env...) }

func (p *podPatch) volume(v corev1.Volume, mountPath string, readOnly bool) {
	p.volumes = append(p.volumes, v)
	p.main.VolumeMounts = append(p.main.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: mountPath, ReadOnly: readOnly})
}

// enginePod adds what an engine's step needs (see source.Pod).
func (p *podPatch) enginePod(pod source.Pod) {
	if pod.Connection != nil {
		p.connection(*pod.Connection)
	}
	p.env(pod.Env...)
	if pod.Volume != nil {
		p.volume(corev1.Volume{Name: dataVolume, VolumeSource: *pod.Volume}, VolumeRoot, pod.VolumeReadOnly)
	}
}

func (p *podPatch) resources(pod *v1.PodOverrides) {
	if pod != nil && pod.Resources != nil {
		p.main.Resources = *pod.Resources
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
	for _, kv := range []struct{ env, key string }{
		{source.EnvHost, cmp.Or(ref.HostKey, "host")},
		{source.EnvPort, cmp.Or(ref.PortKey, "port")},
		{source.EnvUsername, cmp.Or(ref.UsernameKey, "username")},
		{source.EnvPassword, cmp.Or(ref.PasswordKey, "password")},
		{source.EnvDatabase, cmp.Or(ref.DatabaseKey, "database")},
		{source.EnvURI, ref.URIKey},
	} {
		if kv.key != "" {
			p.env(corev1.EnvVar{Name: kv.env, ValueFrom: secretRef(ref.Name, kv.key, true)})
		}
	}
}

// identity mounts the age identity; only verify and restore steps get it.
func (p *podPatch) identity(sel *v1.SecretKeySelector) {
	if sel == nil {
		return
	}
	p.volume(corev1.Volume{Name: identityVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		// Readable by the step whatever user its image runs as (the backflow
		// image is non-root, a client image may be root): the volume is the
		// pod's own and no other container mounts it.
		SecretName: sel.Name, DefaultMode: ptr(int32(0o444)),
		Items: []corev1.KeyToPath{{Key: sel.Key, Path: "identity.txt"}},
	}}}, IdentityDir, true)
}

// storageCA mounts the storage's CA bundle where the storage URL expects it.
func (p *podPatch) storageCA(st StorageAccess) {
	items := func(key string) []corev1.KeyToPath { return []corev1.KeyToPath{{Key: key, Path: "ca.crt"}} }
	switch {
	case st.CASecret != nil:
		p.volume(corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: st.CASecret.Name, Items: items(st.CASecret.Key),
		}}}, CADir, true)
	case st.CAConfigMap != nil:
		p.volume(corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: st.CAConfigMap.Name}, Items: items(st.CAConfigMap.Key),
		}}}, CADir, true)
	}
}

// String is the patch as JSON; "{}" when it changes nothing.
func (p *podPatch) String() string {
	empty := corev1.Container{Name: mainContainer}
	if p.volumes == nil && isEmptyContainer(p.main, empty) {
		return defaultPodSpecPatch
	}
	data, err := argoJSON(struct {
		Containers []corev1.Container `json:"containers"`
		Volumes    []corev1.Volume    `json:"volumes,omitempty"`
	}{[]corev1.Container{p.main}, p.volumes})
	if err != nil {
		panic(err) // only plain API types: cannot fail
	}
	return data
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
