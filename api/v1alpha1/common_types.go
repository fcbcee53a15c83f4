package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// SecretKeySelector selects one key of a Secret in the same namespace.
type SecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// Key inside the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// StorageReference names a BackupStorage. A BackupStorage in another
// namespace can be used only when that storage lists this namespace in
// spec.allowedNamespaces.
type StorageReference struct {
	// Name of the BackupStorage.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the BackupStorage. Defaults to the namespace of the resource
	// that refers to it.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// ServiceReference points at a Service in the same namespace. The database
// host becomes <name>.<namespace>.svc.
type ServiceReference struct {
	// Name of the Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Port of the Service to connect to. Defaults to the engine's usual port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
}

// ConnectionSecretRef names the Secret that holds a database's connection
// settings and says which of its keys hold what. Values are passed to the
// dump and restore commands through environment variables or files, never on
// the command line. A key that the Secret does not have is ignored; values set
// in the connection spec itself take precedence over the Secret's.
type ConnectionSecretRef struct {
	// Name of the Secret, in the namespace of the resource.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// Key holding the host name.
	// +optional
	// +kubebuilder:default=host
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	HostKey string `json:"hostKey,omitempty"`
	// Key holding the port.
	// +optional
	// +kubebuilder:default=port
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PortKey string `json:"portKey,omitempty"`
	// Key holding the user name.
	// +optional
	// +kubebuilder:default=username
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	UsernameKey string `json:"usernameKey,omitempty"`
	// Key holding the password.
	// +optional
	// +kubebuilder:default=password
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PasswordKey string `json:"passwordKey,omitempty"`
	// Key holding the database name.
	// +optional
	// +kubebuilder:default=database
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	DatabaseKey string `json:"databaseKey,omitempty"`
	// Key holding a complete connection URI (postgresql://, mysql://,
	// mongodb://). When set, the URI is the connection and the other keys are
	// used only to fill in what the URI leaves out.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	URIKey string `json:"uriKey,omitempty"`
}

// DatabaseConnection says how to reach a database server. The location comes
// from host, serviceRef, or the Secret's host key (or URI), in that order.
// +kubebuilder:validation:XValidation:rule="!(has(self.host) && has(self.serviceRef))",message="connection: set at most one of host and serviceRef"
// +kubebuilder:validation:XValidation:rule="has(self.host) || has(self.serviceRef) || has(self.secretRef)",message="connection: set host, serviceRef or secretRef so the database can be found"
type DatabaseConnection struct {
	// Host name or IP address of the database server.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9.:\-]*[A-Za-z0-9])?$`
	Host string `json:"host,omitempty"`
	// Service in front of the database server.
	// +optional
	ServiceRef *ServiceReference `json:"serviceRef,omitempty"`
	// Port of the database server. Defaults to the Secret's port key, then to
	// the engine's usual port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
	// Database to dump or restore into. Defaults to the Secret's database key.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Database string `json:"database,omitempty"`
	// User name. Defaults to the Secret's username key.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Username string `json:"username,omitempty"`
	// Secret with the connection settings and the password.
	// +optional
	SecretRef *ConnectionSecretRef `json:"secretRef,omitempty"`
}

// PostgreSQLDumpFormat is the archive format of pg_dump.
// +kubebuilder:validation:Enum=plain;custom;tar
type PostgreSQLDumpFormat string

const (
	// PostgreSQLFormatPlain is a plain SQL script, restored with psql.
	PostgreSQLFormatPlain PostgreSQLDumpFormat = "plain"
	// PostgreSQLFormatCustom is pg_dump's custom archive, restored with pg_restore.
	PostgreSQLFormatCustom PostgreSQLDumpFormat = "custom"
	// PostgreSQLFormatTar is pg_dump's tar archive, restored with pg_restore.
	PostgreSQLFormatTar PostgreSQLDumpFormat = "tar"
)

// PostgreSQLSource dumps one PostgreSQL database with pg_dump.
type PostgreSQLSource struct {
	// Connection to the server.
	Connection DatabaseConnection `json:"connection"`
	// Archive format of pg_dump.
	// +optional
	// +kubebuilder:default=custom
	Format PostgreSQLDumpFormat `json:"format,omitempty"`
	// pg_dump's own compression level (0-9) for the custom format. Leave it at
	// 0 and let spec.compression compress the stream: it is faster.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=9
	CompressionLevel *int32 `json:"compressionLevel,omitempty"`
	// Extra arguments passed to pg_dump as separate arguments, never through a
	// shell.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	ExtraArgs []string `json:"extraArgs,omitempty"`
	// Image with pg_dump. Defaults to the controller's PostgreSQL client image.
	// The backflow binary is copied into it, so any image with the client
	// tools works.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains('{{')",message="image must not contain '{{': Argo would read it as its own template tag or expression"
	Image string `json:"image,omitempty"`
}

// MySQLFlavor selects the MySQL or MariaDB client tools.
// +kubebuilder:validation:Enum=mysql;mariadb
type MySQLFlavor string

const (
	// MySQLFlavorMySQL uses mysqldump and mysql.
	MySQLFlavorMySQL MySQLFlavor = "mysql"
	// MySQLFlavorMariaDB uses mariadb-dump and mariadb.
	MySQLFlavorMariaDB MySQLFlavor = "mariadb"
)

// MySQLSource dumps MySQL or MariaDB databases.
type MySQLSource struct {
	// Connection to the server.
	Connection DatabaseConnection `json:"connection"`
	// Which client tools to run.
	// +optional
	// +kubebuilder:default=mysql
	Flavor MySQLFlavor `json:"flavor,omitempty"`
	// Databases to dump. Defaults to connection.database, or all databases when
	// that is empty too.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	Databases []string `json:"databases,omitempty"`
	// Dump InnoDB tables in one consistent transaction (--single-transaction).
	// +optional
	// +kubebuilder:default=true
	SingleTransaction *bool `json:"singleTransaction,omitempty"`
	// Extra arguments passed to the dump command as separate arguments.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	ExtraArgs []string `json:"extraArgs,omitempty"`
	// Image with the client tools. Defaults to the controller's image for the
	// flavor.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains('{{')",message="image must not contain '{{': Argo would read it as its own template tag or expression"
	Image string `json:"image,omitempty"`
}

// MongoDBSource dumps MongoDB databases in mongodump's archive format, with
// backflow's own MongoDB engine (the official Go driver): the dump step runs
// in the backflow image and needs no client tools. The archive restores with
// `mongorestore --archive` as well as with a backflow Restore.
// +kubebuilder:validation:XValidation:rule="!has(self.databases) || !has(self.connection.database) || size(self.connection.database) == 0",message="mongodb: set connection.database or databases, not both"
type MongoDBSource struct {
	// Connection to the server or replica set.
	Connection DatabaseConnection `json:"connection"`
	// Databases to dump. Defaults to the connection's database, and without
	// one to every database but admin, config and local.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[^/\\. "$*<>:|?]+$`
	Databases []string `json:"databases,omitempty"`
	// Collections to dump, by name ("orders") or namespace ("shop.orders");
	// '*' matches any run of characters ("logs_*"). Defaults to every
	// collection and view; system collections are never dumped.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	IncludeCollections []string `json:"includeCollections,omitempty"`
	// Collections left out, in the same form as includeCollections; an
	// exclusion wins over an inclusion.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	ExcludeCollections []string `json:"excludeCollections,omitempty"`
	// Capture the oplog for a point-in-time snapshot of a replica set, as
	// mongodump --oplog does. Not available yet: no MongoDB server that keeps
	// a replica set's oplog can be run in backflow's tests, so a Backup that
	// sets it fails before any data moves rather than store a dump that is
	// not consistent.
	// +optional
	Oplog bool `json:"oplog,omitempty"`
	// Number of collections read at once. Memory stays bounded: each
	// collection being read holds at most one cursor batch and one archive
	// segment.
	// +optional
	// +kubebuilder:default=4
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	ParallelCollections *int32 `json:"parallelCollections,omitempty"`
}

// PVCSource archives paths of a PersistentVolumeClaim as a tar stream. The
// claim is mounted read-only into the dump step.
type PVCSource struct {
	// Name of the PersistentVolumeClaim, in the namespace of the Backup.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ClaimName string `json:"claimName"`
	// Paths inside the volume to archive, relative to its root. Defaults to the
	// whole volume.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.all(p, !p.startsWith('/') && !p.split('/').exists(s, s == '..'))",message="pvc.paths: each path must be relative to the volume root and must not contain '..'"
	Paths []string `json:"paths,omitempty"`
}

// CommandSource runs a command whose standard output is the data to back up.
// The command runs as an argument list, never through a shell unless the
// command itself is one.
type CommandSource struct {
	// Image to run. The backflow binary is copied into it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains('{{')",message="image must not contain '{{': Argo would read it as its own template tag or expression"
	Image string `json:"image"`
	// Command and its arguments.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command"`
	// Further arguments appended to command.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`
	// Environment of the command. Use valueFrom.secretKeyRef for secrets.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Env []corev1.EnvVar `json:"env,omitempty"`
}

// CompressionAlgorithm is the algorithm applied to the stream before
// encryption.
// +kubebuilder:validation:Enum=zstd;gzip;none
type CompressionAlgorithm string

const (
	// CompressionZstd is Zstandard, the default: fast and multi-core.
	CompressionZstd CompressionAlgorithm = "zstd"
	// CompressionGzip is gzip, compressed in parallel blocks.
	CompressionGzip CompressionAlgorithm = "gzip"
	// CompressionNone stores the stream as it is.
	CompressionNone CompressionAlgorithm = "none"
)

// Compression configures the compression of the stream.
// +kubebuilder:validation:XValidation:rule="self.algorithm != 'none' || !has(self.level)",message="compression.level must not be set when compression.algorithm is none"
// +kubebuilder:validation:XValidation:rule="self.algorithm != 'gzip' || !has(self.level) || (self.level >= 1 && self.level <= 9)",message="compression.level must be between 1 and 9 for gzip"
// +kubebuilder:validation:XValidation:rule="self.algorithm != 'zstd' || !has(self.level) || (self.level >= 1 && self.level <= 22)",message="compression.level must be between 1 and 22 for zstd"
type Compression struct {
	// Algorithm: zstd, gzip or none.
	// +optional
	// +kubebuilder:default=zstd
	Algorithm CompressionAlgorithm `json:"algorithm,omitempty"`
	// Level: 1-22 for zstd (default 1, which compresses database dumps about as
	// well as the zstd tool's level 3, at less CPU), 1-9 for gzip (default 6).
	// +optional
	Level *int32 `json:"level,omitempty"`
}

// Encryption configures encryption of the stream.
type Encryption struct {
	// Age encrypts with age (https://age-encryption.org) to one or more
	// X25519 recipients.
	Age *AgeEncryption `json:"age,omitempty"`
}

// AgeEncryption lists the age recipients the stream is encrypted to and the
// identity that decrypts it for verify and restore.
// +kubebuilder:validation:XValidation:rule="(has(self.recipients) && size(self.recipients) > 0) || has(self.recipientsSecretRef) || has(self.generate)",message="encryption.age: set recipients, recipientsSecretRef or generate"
// +kubebuilder:validation:XValidation:rule="!has(self.generate) || !has(self.identitySecretRef)",message="encryption.age: set generate or identitySecretRef, not both: generate's Secret holds the identity that verify and restore use"
type AgeEncryption struct {
	// Public keys (age1...) to encrypt to.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=80
	// +kubebuilder:validation:XValidation:rule="self.all(r, r.matches('^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$'))",message="encryption.age.recipients: each recipient must be an age public key: 'age1' followed by 58 lowercase bech32 characters"
	Recipients []string `json:"recipients,omitempty"`
	// Secret key with more recipients, one per line.
	// +optional
	RecipientsSecretRef *SecretKeySelector `json:"recipientsSecretRef,omitempty"`
	// Secret key with the age identity (AGE-SECRET-KEY-1...). It is mounted
	// only into the verify and restore steps, never into the dump step.
	// +optional
	IdentitySecretRef *SecretKeySelector `json:"identitySecretRef,omitempty"`
	// Generate has the controller create an age identity in a Secret of the
	// resource's namespace when that Secret does not exist, and encrypt to
	// its recipient (besides recipients and recipientsSecretRef). An existing
	// Secret is never changed: its identity is used. The Secret outlives the
	// resource; without it the backups cannot be decrypted.
	// +optional
	Generate *AgeGenerate `json:"generate,omitempty"`
}

// HookErrorPolicy says what a failing hook does to the run.
// +kubebuilder:validation:Enum=Continue;Fail
type HookErrorPolicy string

const (
	// HookErrorFail fails the run when the hook fails.
	HookErrorFail HookErrorPolicy = "Fail"
	// HookErrorContinue records the failure and goes on.
	HookErrorContinue HookErrorPolicy = "Continue"
)

// Hooks run before and after the dump.
type Hooks struct {
	// Pre runs before the dump, for example to flush or freeze an application.
	// +optional
	Pre *Hook `json:"pre,omitempty"`
	// Post runs after the dump whenever pre ran, also when the dump failed, so
	// that what pre did can be undone.
	// +optional
	Post *Hook `json:"post,omitempty"`
}

// Hook is a command run in a container of a running pod, or in a container
// of its own.
// +kubebuilder:validation:XValidation:rule="has(self.exec) != has(self.container)",message="hook: set exactly one of exec and container"
type Hook struct {
	// Exec runs the command in a container of a running pod.
	// +optional
	Exec *ExecHook `json:"exec,omitempty"`
	// Container runs the command in a container of its own.
	// +optional
	Container *ContainerHook `json:"container,omitempty"`
	// Seconds the hook may run before it is stopped and counted as failed.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// What a failing hook does: Fail fails the run, Continue goes on.
	// +optional
	// +kubebuilder:default=Fail
	OnError HookErrorPolicy `json:"onError,omitempty"`
}

// ExecHook runs a command in a container of a running pod, chosen by name or
// by label selector (the first running pod, by name, that matches).
// +kubebuilder:validation:XValidation:rule="has(self.podName) != has(self.podSelector)",message="hook.exec: set exactly one of podName and podSelector"
type ExecHook struct {
	// Name of the pod.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	PodName string `json:"podName,omitempty"`
	// Label selector choosing the pod.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// Container of the pod. Defaults to its first container.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Container string `json:"container,omitempty"`
	// Command and its arguments.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command"`
}

// ContainerHook runs a command in a container of its own.
type ContainerHook struct {
	// Image to run.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains('{{')",message="image must not contain '{{': Argo would read it as its own template tag or expression"
	Image string `json:"image"`
	// Command and its arguments.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command"`
	// Further arguments appended to command.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`
	// Environment of the command.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Env []corev1.EnvVar `json:"env,omitempty"`
}

// PodOverrides adjust the pods that run the steps.
type PodOverrides struct {
	// Resources of the step containers.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// Node selector of the step pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations of the step pods.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(t, [has(t.key) ? t.key : '', has(t.operator) ? t.operator : '', has(t.value) ? t.value : '', has(t.effect) ? t.effect : ''].all(s, !s.contains('{{')))",message="pod.tolerations must not contain '{{': Argo would read it as its own template tag or expression"
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Pod security context of the step pods.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
	// Priority class of the step pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// Labels added to the step pods.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations added to the step pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// StageStatus is the state of one step of the Workflow.
type StageStatus struct {
	// Name of the stage: pre-hook, dump, verify, post-hook, rotate, restore.
	Name string `json:"name"`
	// Phase of the step as Argo reports it (Pending, Running, Succeeded,
	// Failed, Error, Skipped, Omitted).
	// +optional
	Phase string `json:"phase,omitempty"`
	// When the step started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// When the step finished.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Message of the step, for example why it failed.
	// +optional
	Message string `json:"message,omitempty"`
}

// ObjectLocation is where a backup is stored.
type ObjectLocation struct {
	// BackupStorage that holds the object.
	// +optional
	Storage string `json:"storage,omitempty"`
	// Bucket of the object.
	// +optional
	Bucket string `json:"bucket,omitempty"`
	// Key of the object in the bucket.
	// +optional
	Key string `json:"key,omitempty"`
}

// Condition types shared by the kinds.
const (
	// ConditionReady is true when a BackupStorage can be used, or a
	// BackupSchedule's CronWorkflow is in place.
	ConditionReady = "Ready"
	// ConditionSucceeded is true when a Backup or Restore finished successfully
	// and false when it failed.
	ConditionSucceeded = "Succeeded"
	// ConditionVerified is true when the stored backup was read back and its
	// checksums matched.
	ConditionVerified = "Verified"
	// ConditionBackupMissing is true when a BackupSchedule has had no
	// successful backup for longer than spec.missingAfterIntervals intervals.
	ConditionBackupMissing = "BackupMissing"
)

// ConditionReason is the reason of a condition backflow sets: one word in
// CamelCase that programs can match on. The reasons of one kind are declared
// beside it; these are shared by several kinds.
type ConditionReason string

const (
	// ReasonInvalidSpec: the spec cannot be compiled into a Workflow, or a
	// resource of the same name that backflow did not create is in the way.
	ReasonInvalidSpec ConditionReason = "InvalidSpec"
	// ReasonStorageNotFound: the BackupStorage the spec names does not exist.
	ReasonStorageNotFound ConditionReason = "StorageNotFound"
	// ReasonStorageForbidden: the BackupStorage is in another namespace that
	// does not list the resource's namespace in spec.allowedNamespaces.
	ReasonStorageForbidden ConditionReason = "StorageForbidden"
	// ReasonInvalidPath: the path template does not parse, or renders a key
	// that is not a clean relative key.
	ReasonInvalidPath ConditionReason = "InvalidPath"
	// ReasonKeyOutsidePrefix: a key the resource renders or names lies
	// outside the prefix of its namespace in the storage
	// (BackupStorage.spec.namespacePrefix).
	ReasonKeyOutsidePrefix ConditionReason = "KeyOutsidePrefix"
	// ReasonNamespaceNotAllowed: the controller runs no Workflows in the
	// resource's namespace (the chart's workflow.namespaces and
	// workflow.namespaceSelector).
	ReasonNamespaceNotAllowed ConditionReason = "NamespaceNotAllowed"
	// ReasonAccountConflict: a ServiceAccount, RoleBinding or token Secret
	// that backflow provides in a namespace (backflow-workflow,
	// backflow-hook) exists there already and backflow did not create it;
	// backflow leaves it alone.
	ReasonAccountConflict ConditionReason = "AccountConflict"
	// ReasonImageNotAllowed: the spec names a user image (a command's, a
	// container hook's, a database source's or target's own) that the
	// controller's allow-list does not hold (chart value
	// workflow.allowedImages).
	ReasonImageNotAllowed ConditionReason = "ImageNotAllowed"
)

// EventReason is the reason of an Event backflow records. Events about a
// condition take the condition's reason; the others are declared beside the
// kind they are recorded on.
type EventReason string

// Labels and annotations set by backflow.
const (
	// LabelBackup names the Backup a Workflow or object belongs to.
	LabelBackup = "backflow.dev/backup"
	// LabelSchedule names the BackupSchedule a Backup or Workflow belongs to.
	LabelSchedule = "backflow.dev/schedule"
	// LabelRestore names the Restore a Workflow belongs to.
	LabelRestore = "backflow.dev/restore"
	// LabelNamespace is the namespace of the resource a Workflow belongs to.
	LabelNamespace = "backflow.dev/namespace"
	// AnnotationTrigger on a BackupSchedule starts a run now; its value is a
	// token (for example a timestamp) and each new value starts one run.
	AnnotationTrigger = "backflow.dev/trigger"
	// AnnotationPrunedBy marks a Backup that its BackupSchedule's history
	// limit deletes, with the schedule's name: its stored object stays
	// whatever its deletionPolicy says, until retention removes it. It is set
	// before the Backup is deleted, so that the finalizer, which reads it,
	// cannot race with the deletion.
	AnnotationPrunedBy = "backflow.dev/pruned-by-history-limit"
)
