package v1alpha1

import "slices"

// AllowsNamespace says whether resources in namespace ns may use the storage.
func (s *BackupStorage) AllowsNamespace(ns string) bool {
	return ns == s.Namespace || slices.Contains(s.Spec.AllowedNamespaces, "*") || slices.Contains(s.Spec.AllowedNamespaces, ns)
}
