package v1alpha1

import "slices"

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

// NamespacePrefix is the key prefix, relative to the storage's prefix, that
// the Backups of namespace namespace may write and delete under: the
// controller deletes no object of theirs outside it.
func (s *BackupStorage) NamespacePrefix(namespace string) string { return namespace + "/" }

// ID names the storage as <namespace>/<name>: what a manifest records as its
// storage, which says, with the namespace and series, whose backups rotate
// and the delete finalizer may remove.
func (s *BackupStorage) ID() string { return s.Namespace + "/" + s.Name }
