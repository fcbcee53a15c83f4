package v1alpha1

import (
	"slices"
	"strings"
)

// Keys of the credentials Secret when S3Credentials names none; the CRD
// defaults them to the same.
const (
	DefaultAccessKeyIDKey     = "AWS_ACCESS_KEY_ID"
	DefaultSecretAccessKeyKey = "AWS_SECRET_ACCESS_KEY"
)

// Keys are the keys of the credentials Secret that hold the access key ID
// and the secret access key, the defaults where the spec names none.
func (c S3Credentials) Keys() (accessKeyID, secretAccessKey string) {
	accessKeyID, secretAccessKey = c.AccessKeyIDKey, c.SecretAccessKeyKey
	if accessKeyID == "" {
		accessKeyID = DefaultAccessKeyIDKey
	}
	if secretAccessKey == "" {
		secretAccessKey = DefaultSecretAccessKeyKey
	}
	return accessKeyID, secretAccessKey
}

// AllowsNamespace says whether resources in namespace ns may use the storage.
func (s *BackupStorage) AllowsNamespace(ns string) bool {
	return ns == s.Namespace || slices.Contains(s.Spec.AllowedNamespaces, "*") || slices.Contains(s.Spec.AllowedNamespaces, ns)
}

// NamespaceTemplate is what spec.namespacePrefix holds in place of the
// namespace; DefaultNamespacePrefix is the prefix when it names none (the
// CRD defaults it to the same).
const (
	NamespaceTemplate      = "{{ .Namespace }}"
	DefaultNamespacePrefix = NamespaceTemplate + "/"
)

// NamespacePrefixTemplate is spec.namespacePrefix, or the default.
func (s *BackupStorage) NamespacePrefixTemplate() string {
	if s.Spec.NamespacePrefix == "" {
		return DefaultNamespacePrefix
	}
	return s.Spec.NamespacePrefix
}

// NamespacePrefix is the key prefix, relative to the storage's prefix, that
// the Backups, BackupSchedules and Restores of namespace namespace may
// write, read and delete under: spec.namespacePrefix rendered. The CRD
// admits only one form, a literal text with one {{ .Namespace }}, so a
// replacement renders it.
func (s *BackupStorage) NamespacePrefix(namespace string) string {
	return strings.Replace(s.NamespacePrefixTemplate(), NamespaceTemplate, namespace, 1)
}

// ID names the storage as <namespace>/<name>: what a manifest records as its
// storage, which says, with the namespace and series, whose backups rotate
// and the delete finalizer may remove.
func (s *BackupStorage) ID() string { return s.Namespace + "/" + s.Name }
