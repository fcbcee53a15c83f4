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
// are escaped by argoJSON.)
func checkArgoLiterals(pod *v1.PodOverrides, hooks *v1.Hooks) error {
	fields := map[string]any{}
	if pod != nil {
		fields["pod.nodeSelector"], fields["pod.labels"], fields["pod.annotations"] = pod.NodeSelector, pod.Labels, pod.Annotations
		fields["pod.securityContext"] = pod.SecurityContext
	}
	if hooks != nil {
		for name, h := range map[string]*v1.Hook{"hooks.pre": hooks.Pre, "hooks.post": hooks.Post} {
			if h != nil && h.Exec != nil {
				fields[name+".exec.podSelector"] = h.Exec.PodSelector
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
