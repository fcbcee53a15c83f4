package compiler

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// argoTag is what Argo reads as the start of a template tag ({{workflow.name}})
// or an expression ({{= ... }}) in any string of a Workflow's spec.
const argoTag = "{{"

// checkArgoLiterals refuses the fields that reach a Workflow's spec or a
// plain step parameter as they are and may hold '{{', which Argo would
// substitute: maps and Kubernetes' own types, whose strings the CRD cannot
// bound and so cannot check within CEL's cost budget. (Strings the CRD
// bounds are refused at admission; a spec's strings inside JSON parameters
// are escaped by argoJSON.) A step's pod spec patch is one of them too,
// though escaped: Argo evaluates a pod spec patch once more as it creates the
// pod, and the Strict run templates parse its fields back before that, so
// what lands in a pod (a command's or a hook's environment, a container
// hook's command and arguments, resources) is refused here, by field, before
// the patch's own check (checkPatches) would refuse it without naming one.
// more holds further fields of the spec by name (a source's or target's
// environment).
func checkArgoLiterals(pod *v1.PodOverrides, hooks *v1.Hooks, more map[string]any) error {
	fields := maps.Clone(more)
	if fields == nil {
		fields = map[string]any{}
	}
	if pod != nil {
		fields["pod.nodeSelector"], fields["pod.labels"], fields["pod.annotations"] = pod.NodeSelector, pod.Labels, pod.Annotations
		fields["pod.securityContext"], fields["pod.resources"] = pod.SecurityContext, pod.Resources
	}
	if hooks != nil {
		for name, h := range map[string]*v1.Hook{"hooks.pre": hooks.Pre, "hooks.post": hooks.Post} {
			if h != nil && h.Exec != nil {
				fields[name+".exec.podSelector"] = h.Exec.PodSelector
			}
			if h != nil && h.Container != nil {
				c := h.Container
				fields[name+".container.command"], fields[name+".container.args"], fields[name+".container.env"] = c.Command, c.Args, c.Env
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		// Marshalled JSON holds two braces in a row only inside a string.
		data, err := json.Marshal(fields[name])
		if err != nil {
			return err
		}
		if strings.Contains(string(data), argoTag) {
			return fmt.Errorf("spec.%s must not contain '{{': Argo would read it as its own template tag or expression", name)
		}
	}
	return nil
}
