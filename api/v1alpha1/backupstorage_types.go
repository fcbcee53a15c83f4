package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupStorageSpec describes an S3-compatible bucket that backups are written
// to.
type BackupStorageSpec struct {
	// S3 is an S3-compatible object store (AWS S3, MinIO, Ceph RGW, R2, ...).
	S3 S3Storage `json:"s3"`
	// Namespaces, besides this one, whose Backups, BackupSchedules and Restores
	// may use this storage. "*" allows every namespace. A run in another
	// namespace gets credentials of its own, in a Secret owned by its Workflow
	// and deleted when the Workflow finishes (see sharing); a namespace this
	// list stops admitting loses them at once, and its schedules on this
	// storage are suspended.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	AllowedNamespaces []string `json:"allowedNamespaces,omitempty"`
	// Why the prefix must end with '/': then a '/' follows {{ .Namespace }}
	// (the only template it holds), and the text between them holds none. A
	// namespace name holds no '/' either, so the first '/' after the fixed
	// text before {{ .Namespace }} gives away the namespace's length, and
	// with it the namespace: no namespace's prefix can begin with another's.
	// Without it, "a{{ .Namespace }}" would make namespace "b"'s prefix "ab"
	// a prefix of namespace "bc"'s "abc".

	// NamespacePrefix is the key prefix, relative to s3.prefix, of each
	// namespace that uses the storage: a template of the namespace with
	// exactly one {{ .Namespace }}, ending in '/', such as
	// tenants/{{ .Namespace }}/. Every key a Backup, BackupSchedule or
	// Restore of the namespace writes, reads or deletes must lie inside it;
	// the default storage.path of a Backup starts with it.
	// +optional
	// +kubebuilder:default="{{ .Namespace }}/"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.split('{{ .Namespace }}').size() == 2 && self.split('{{').size() == 2",message="namespacePrefix must hold {{ .Namespace }} exactly once, spelled so, and no other template"
	// +kubebuilder:validation:XValidation:rule="self.endsWith('/')",message="namespacePrefix must end with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.contains('//') && !self.split('/').exists(s, s == '..' || s == '.')",message="namespacePrefix must be relative (no leading '/'), without empty, '.' or '..' segments"
	NamespacePrefix string `json:"namespacePrefix,omitempty"`
	// Sharing says which credentials the runs of the other namespaces in
	// allowedNamespaces get. ScopedCredentials (the default): temporary
	// credentials from the storage's STS (AssumeRole at the endpoint, with
	// the bucket credentials), whose session policy allows each step only its
	// own actions, only under the namespace's prefix, for the step's deadline
	// and a margin. BucketCredentials: a copy of the bucket credentials, with
	// which any pod of those namespaces that can read the run's Secret can
	// read, overwrite and delete every backup in the bucket; only for a
	// provider without AssumeRole, and only for namespaces trusted like this
	// one. Runs in this storage's own namespace always get the bucket
	// credentials.
	// +optional
	// +kubebuilder:default=ScopedCredentials
	Sharing StorageSharing `json:"sharing,omitempty"`
}

// StorageSharing is which credentials a storage gives the runs of other
// namespaces.
// +kubebuilder:validation:Enum=ScopedCredentials;BucketCredentials
type StorageSharing string

const (
	// SharingScopedCredentials: STS AssumeRole credentials with a session
	// policy per step, confined to the namespace's prefix.
	SharingScopedCredentials StorageSharing = "ScopedCredentials"
	// SharingBucketCredentials: copies of the bucket credentials.
	SharingBucketCredentials StorageSharing = "BucketCredentials"
)

// S3Storage is an S3-compatible bucket.
type S3Storage struct {
	// Endpoint URL, for example https://s3.eu-west-1.amazonaws.com or
	// http://minio.minio.svc:9000. No path.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != '' && url(self).getEscapedPath() in ['', '/']",message="s3.endpoint must be an http:// or https:// URL with a host and no path, e.g. https://s3.amazonaws.com"
	Endpoint string `json:"endpoint"`
	// Bucket name. It must exist.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$`
	Bucket string `json:"bucket"`
	// Prefix prepended to every object key, without leading slash.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.split('/').exists(s, s == '..')",message="s3.prefix must not start with '/' or contain '..'"
	Prefix string `json:"prefix,omitempty"`
	// Region of the bucket. Defaults to us-east-1.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region,omitempty"`
	// Use path-style addressing (endpoint/bucket/key) instead of virtual-host
	// style (bucket.endpoint/key). MinIO and most self-hosted stores need it.
	// +optional
	ForcePathStyle bool `json:"forcePathStyle,omitempty"`
	// TLS settings for https endpoints.
	// +optional
	TLS *StorageTLS `json:"tls,omitempty"`
	// Credentials to access the bucket.
	Credentials S3Credentials `json:"credentials"`
	// AllowMetadataEndpoint lets the endpoint be a link-local address
	// (169.254.0.0/16, fe80::/10) or a cloud metadata service
	// (169.254.169.254, fd00:ec2::254, metadata.google.internal), as its
	// name or as what its name resolves to. The controller otherwise refuses
	// to send requests there: a storage's endpoint would make it ask its
	// node's metadata service with the controller's network position.
	// +optional
	AllowMetadataEndpoint bool `json:"allowMetadataEndpoint,omitempty"`
	// Size in MiB of each part of a multipart upload. Memory used by a dump is
	// about twice this; an object may reach S3's 5 TiB whatever the size.
	// +optional
	// +kubebuilder:default=16
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=512
	PartSizeMiB int32 `json:"partSizeMiB,omitempty"`
}

// StorageTLS configures TLS to the endpoint.
// +kubebuilder:validation:XValidation:rule="!(has(self.insecureSkipVerify) && self.insecureSkipVerify && (has(self.caSecretRef) || has(self.caConfigMapRef)))",message="tls: insecureSkipVerify cannot be combined with a CA bundle"
// +kubebuilder:validation:XValidation:rule="!(has(self.caSecretRef) && has(self.caConfigMapRef))",message="tls: set at most one of caSecretRef and caConfigMapRef"
type StorageTLS struct {
	// Skip verification of the server's certificate. For tests only.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// Secret key holding a PEM CA bundle that signs the server's certificate.
	// +optional
	CASecretRef *SecretKeySelector `json:"caSecretRef,omitempty"`
	// ConfigMap key holding a PEM CA bundle that signs the server's
	// certificate.
	// +optional
	CAConfigMapRef *ConfigMapKeySelector `json:"caConfigMapRef,omitempty"`
}

// ConfigMapKeySelector selects one key of a ConfigMap in the same namespace.
type ConfigMapKeySelector struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// Key inside the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// S3Credentials names the Secret with the access keys.
type S3Credentials struct {
	// Secret with the access keys, in the namespace of the BackupStorage.
	SecretRef LocalObjectReference `json:"secretRef"`
	// Key holding the access key ID.
	// +optional
	// +kubebuilder:default=AWS_ACCESS_KEY_ID
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	AccessKeyIDKey string `json:"accessKeyIDKey,omitempty"`
	// Key holding the secret access key.
	// +optional
	// +kubebuilder:default=AWS_SECRET_ACCESS_KEY
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	SecretAccessKeyKey string `json:"secretAccessKeyKey,omitempty"`
	// Key holding a session token, for temporary credentials.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	SessionTokenKey string `json:"sessionTokenKey,omitempty"`
}

// BackupStorageStatus is the observed state of a BackupStorage.
type BackupStorageStatus struct {
	// Generation of the spec last checked.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// When the bucket was last checked.
	// +optional
	LastCheckedTime *metav1.Time `json:"lastCheckedTime,omitempty"`
	// Conditions: Ready says whether the bucket is reachable with the
	// credentials.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BackupStorage is an S3-compatible bucket that backups are stored in.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bstorage,categories=backflow
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.s3.endpoint`
// +kubebuilder:printcolumn:name="Bucket",type=string,JSONPath=`.spec.s3.bucket`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Prefix",type=string,JSONPath=`.spec.s3.prefix`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupStorage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackupStorageSpec   `json:"spec"`
	Status BackupStorageStatus `json:"status,omitempty"`
}

// BackupStorageList is a list of BackupStorages.
//
// +kubebuilder:object:root=true
type BackupStorageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupStorage `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BackupStorage{}, &BackupStorageList{})
}

// Reasons of a BackupStorage's Ready condition, also the reasons of the
// Events recorded when it changes.
const (
	// ReasonReachable: the bucket answered with the credentials.
	ReasonReachable ConditionReason = "BucketReachable"
	// ReasonUnreachable: the bucket did not answer, or refused the
	// credentials.
	ReasonUnreachable ConditionReason = "BucketUnreachable"
	// ReasonReadOnly: the bucket refused to be listed with the credentials
	// (AccessDenied). Backups, which write, list and rotate, cannot use
	// them; a Restore needs only s3:GetObject and does not wait for Ready.
	ReasonReadOnly ConditionReason = "ReadOnlyCredentials"
	// ReasonCredentialsError: the credentials (or the CA bundle) could not be
	// read from their Secret or ConfigMap.
	ReasonCredentialsError ConditionReason = "CredentialsError"
	// ReasonEndpointNotAllowed: the endpoint is, or resolves to, a
	// link-local or cloud metadata address, and s3.allowMetadataEndpoint
	// does not allow it.
	ReasonEndpointNotAllowed ConditionReason = "EndpointNotAllowed"
)

// Reasons of the Events recorded on a BackupStorage besides its Ready
// condition's.
const (
	// EventCredentialsRevoked: backflow deleted run Secrets with this
	// storage's credentials in namespaces it no longer admits (or the copies
	// of its Secret an earlier backflow left in other namespaces).
	EventCredentialsRevoked EventReason = "CredentialsRevoked"
)
