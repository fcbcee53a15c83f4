package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RestoreSource says which backup to restore: exactly one of its fields is
// set.
// +kubebuilder:validation:XValidation:rule="[has(self.backupRef), has(self.scheduleRef), has(self.object)].filter(x, x).size() == 1",message="from: set exactly one of backupRef, scheduleRef and object"
type RestoreSource struct {
	// A Backup in the namespace of the Restore. It must have succeeded.
	// +optional
	BackupRef *LocalObjectReference `json:"backupRef,omitempty"`
	// The newest successful Backup of a BackupSchedule in the namespace of the
	// Restore, chosen when the Restore starts.
	// +optional
	ScheduleRef *LocalObjectReference `json:"scheduleRef,omitempty"`
	// An object in a BackupStorage, for backups whose Backup resource is gone.
	// Its manifest (the key plus .backflow.json) says how it was made.
	// +optional
	Object *StoredObject `json:"object,omitempty"`
}

// StoredObject is an object in a BackupStorage.
type StoredObject struct {
	// Storage that holds the object.
	Storage StorageReference `json:"storage"`
	// Key of the object, relative to the storage prefix.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.split('/').exists(s, s == '..')",message="object.key must be relative to the storage prefix and must not contain '..'"
	// +kubebuilder:validation:XValidation:rule="!self.contains('{{')",message="object.key must not contain '{{': Argo would read it as its own template tag or expression"
	Key string `json:"key"`
}

// PostgreSQLTarget restores into a PostgreSQL database with psql (plain
// format) or pg_restore (custom and tar formats).
type PostgreSQLTarget struct {
	// Connection to the server. The database must exist.
	Connection DatabaseConnection `json:"connection"`
	// Drop objects before recreating them (pg_restore --clean --if-exists).
	// +optional
	Clean bool `json:"clean,omitempty"`
	// Extra arguments passed to psql or pg_restore as separate arguments.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	ExtraArgs []string `json:"extraArgs,omitempty"`
	// Image with psql and pg_restore.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains('{{')",message="image must not contain '{{': Argo would read it as its own template tag or expression"
	Image string `json:"image,omitempty"`
}

// MySQLTarget restores into MySQL or MariaDB with the mysql or mariadb client.
type MySQLTarget struct {
	// Connection to the server. When connection.database is set, statements
	// without a database run in it.
	Connection DatabaseConnection `json:"connection"`
	// Which client tools to run.
	// +optional
	// +kubebuilder:default=mysql
	Flavor MySQLFlavor `json:"flavor,omitempty"`
	// Extra arguments passed to the client as separate arguments.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	ExtraArgs []string `json:"extraArgs,omitempty"`
	// Image with the client tools.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains('{{')",message="image must not contain '{{': Argo would read it as its own template tag or expression"
	Image string `json:"image,omitempty"`
}

// MongoDBTarget restores a mongodump archive with backflow's own MongoDB
// engine: collections with their options, documents, indexes and views.
type MongoDBTarget struct {
	// Connection to the server or replica set. With connection.database set,
	// everything is restored into that database: the collections of a
	// one-database archive keep their names, those of a several-database
	// archive are named "<database>.<collection>".
	Connection DatabaseConnection `json:"connection"`
	// Drop each collection before restoring it. Without it, documents are
	// added to existing collections, and a duplicate _id fails the restore.
	// +optional
	Drop bool `json:"drop,omitempty"`
	// Rename namespaces on the way in, as mongorestore's --nsFrom and --nsTo:
	// from "shop.*" to "shop_copy.*". The first rule that matches wins;
	// '*' matches any run of characters and the to pattern reuses the
	// matches in order. Namespaces that match no rule keep their names.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Rename []NamespaceRename `json:"rename,omitempty"`
}

// NamespaceRename maps database.collection namespaces to others.
// +kubebuilder:validation:XValidation:rule="self.from.split('*').size() == self.to.split('*').size()",message="rename: from and to must have the same number of '*'"
type NamespaceRename struct {
	// Namespaces to rename, as database.collection with '*' wildcards.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[^.$]+\..+$`
	From string `json:"from"`
	// What they become, with as many '*' as from.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[^.$]+\..+$`
	To string `json:"to"`
}

// PVCTarget extracts a tar backup into a PersistentVolumeClaim.
type PVCTarget struct {
	// Name of the PersistentVolumeClaim, in the namespace of the Restore.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ClaimName string `json:"claimName"`
	// Directory inside the volume to extract into, relative to its root.
	// Defaults to the root. Entries that would land outside it are refused.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.split('/').exists(s, s == '..')",message="pvc.path must be relative to the volume root and must not contain '..'"
	Path string `json:"path,omitempty"`
}

// CommandTarget runs a command that reads the backup on its standard input.
type CommandTarget struct {
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
	// Environment of the command.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Env []corev1.EnvVar `json:"env,omitempty"`
}

// RestoreTarget is where the backup is restored: exactly one field is set.
// +kubebuilder:validation:XValidation:rule="[has(self.postgresql), has(self.mysql), has(self.mongodb), has(self.pvc), has(self.command)].filter(x, x).size() == 1",message="target: set exactly one of postgresql, mysql, mongodb, pvc and command"
type RestoreTarget struct {
	// +optional
	PostgreSQL *PostgreSQLTarget `json:"postgresql,omitempty"`
	// +optional
	MySQL *MySQLTarget `json:"mysql,omitempty"`
	// +optional
	MongoDB *MongoDBTarget `json:"mongodb,omitempty"`
	// +optional
	PVC *PVCTarget `json:"pvc,omitempty"`
	// +optional
	Command *CommandTarget `json:"command,omitempty"`
}

// RestoreSpec is which backup to restore, where to, and how.
// +kubebuilder:validation:XValidation:rule="!has(self.activeDeadlineSeconds) || !has(self.stepDeadlineSeconds) || [has(self.stepDeadlineSeconds.verify) ? self.stepDeadlineSeconds.verify : 0, has(self.stepDeadlineSeconds.restore) ? self.stepDeadlineSeconds.restore : 0].all(d, d <= self.activeDeadlineSeconds)",message="stepDeadlineSeconds: a step's deadline cannot be longer than activeDeadlineSeconds, the whole run's"
type RestoreSpec struct {
	// From says which backup to restore.
	From RestoreSource `json:"from"`
	// Target is where to restore it.
	Target RestoreTarget `json:"target"`
	// Secret key with the age identity (AGE-SECRET-KEY-1...) that decrypts the
	// backup. Defaults to the Backup's encryption.age.identitySecretRef when
	// restoring from a Backup or a BackupSchedule.
	// +optional
	IdentitySecretRef *SecretKeySelector `json:"identitySecretRef,omitempty"`
	// Check the object's sha256 against its manifest before the target sees a
	// byte of it. The object is read twice: once to check, once to restore.
	// When false, the checksum is still checked while streaming and a mismatch
	// fails the restore at the end, after the target has read the data.
	// +optional
	// +kubebuilder:default=true
	VerifyBeforeRestore *bool `json:"verifyBeforeRestore,omitempty"`
	// Hooks run before and after the restore, for example to scale an
	// application down and up again.
	// +optional
	Hooks *Hooks `json:"hooks,omitempty"`
	// Seconds the whole run may take before Argo stops it.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// Seconds each step may run before Argo stops it and fails it. Hooks
	// have their own timeoutSeconds.
	// +optional
	StepDeadlineSeconds *RestoreStepDeadlines `json:"stepDeadlineSeconds,omitempty"`
	// Service account the step pods run as, for a cloud identity (IRSA,
	// workload identity): the steps get no token of it. Argo's executor
	// runs as backflow-workflow and exec hooks as backflow-hook, which the
	// controller provides in the namespace. Defaults to backflow-workflow.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self != 'backflow-hook'",message="serviceAccountName: backflow-hook is the exec hooks' own account; name another one"
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// Overrides for the step pods.
	// +optional
	Pod *PodOverrides `json:"pod,omitempty"`
	// Where the run reports when it starts, succeeds or fails.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	Notify []NotifyTarget `json:"notify,omitempty"`
}

// RestoreStepDeadlines are the deadlines of a restore's steps, in seconds.
type RestoreStepDeadlines struct {
	// The verify step; 21600 (6 hours) by default.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=604800
	Verify *int32 `json:"verify,omitempty"`
	// The restore step; 21600 (6 hours) by default.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=604800
	Restore *int32 `json:"restore,omitempty"`
}

// RestoreStatus is the observed state of a Restore.
type RestoreStatus struct {
	RunStatus `json:",inline"`
	// Backup restored, when restoring from a Backup or a BackupSchedule.
	// +optional
	BackupName string `json:"backupName,omitempty"`
}

// Restore streams a backup back into a database, a PVC or a command.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rst,categories=backflow
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=`.status.backupName`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.displaySize`
// +kubebuilder:printcolumn:name="Progress",type=string,JSONPath=`.status.progress`,priority=1
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.status.location.key`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Restore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: a Restore is one run; create a new Restore instead"
	Spec   RestoreSpec   `json:"spec"`
	Status RestoreStatus `json:"status,omitempty"`
}

// RestoreList is a list of Restores.
//
// +kubebuilder:object:root=true
type RestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Restore `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Restore{}, &RestoreList{})
}
