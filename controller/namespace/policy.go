// Package namespace provides, in each namespace where a Backup,
// BackupSchedule or Restore exists, the service accounts the compiled
// Workflows run as: backflow-workflow (Argo's executor) and backflow-hook
// (exec hooks), each bound to the chart's ClusterRole of the same purpose.
// It does so only in the namespaces its Policy admits (the chart's
// workflow.namespaces and workflow.namespaceSelector), removes them when
// the namespace's last backflow resource is gone, and never touches an
// object of the same name that it did not create.
package namespace

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// AllNamespaces is the value of a Policy's names that admits every
// namespace.
const AllNamespaces = "*"

// Policy says in which namespaces backflow runs Workflows: those its names
// list (or all, with AllNamespaces) whose labels match its selector (when it
// has one). The zero Policy admits none.
type Policy struct {
	names    []string
	selector labels.Selector
}

// NewPolicy is the Policy of the controller's flags: names is a list of
// namespaces or AllNamespaces (--workflow-namespaces), selector a label
// selector of the Namespace objects, or empty for none
// (--workflow-namespace-selector).
func NewPolicy(names []string, selector string) (Policy, error) {
	p := Policy{}
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			p.names = append(p.names, n)
		}
	}
	if len(p.names) == 0 {
		return Policy{}, fmt.Errorf("no namespace: list the namespaces Workflows may run in, or %q for all", AllNamespaces)
	}
	if slices.Contains(p.names, AllNamespaces) && len(p.names) > 1 {
		return Policy{}, fmt.Errorf("%q admits every namespace: list no other beside it", AllNamespaces)
	}
	if strings.TrimSpace(selector) != "" {
		s, err := labels.Parse(selector)
		if err != nil {
			return Policy{}, fmt.Errorf("namespace selector %q: %w", selector, err)
		}
		p.selector = s
	}
	return p, nil
}

// AdmitAll is the Policy that admits every namespace.
func AdmitAll() Policy { return Policy{names: []string{AllNamespaces}} }

// Admits says whether Workflows may run in a namespace.
func (p Policy) Admits(ns *corev1.Namespace) bool {
	if !slices.Contains(p.names, AllNamespaces) && !slices.Contains(p.names, ns.Name) {
		return false
	}
	return p.selector == nil || p.selector.Matches(labels.Set(ns.Labels))
}

// refusal says why a namespace is not admitted, and which chart value
// changes that.
func (p Policy) refusal(ns *corev1.Namespace) string {
	if !slices.Contains(p.names, AllNamespaces) && !slices.Contains(p.names, ns.Name) {
		if len(p.names) == 0 {
			return fmt.Sprintf("the controller runs Workflows in no namespace: add %s to the chart value workflow.namespaces", ns.Name)
		}
		return fmt.Sprintf("the controller runs Workflows only in the namespaces of the chart value workflow.namespaces (%s): add %s to it",
			strings.Join(p.names, ", "), ns.Name)
	}
	return fmt.Sprintf("the controller runs Workflows only in namespaces whose labels match the chart value workflow.namespaceSelector (%s): label namespace %s to match",
		p.selector, ns.Name)
}
