package compiler

// Names of the ClusterWorkflowTemplates and their templates. Platform teams
// call them from their own workflows with templateRef; changing one breaks
// them.
const (
	TemplateHook    = "backflow-hook"
	TemplateDump    = "backflow-dump"
	TemplateVerify  = "backflow-verify"
	TemplateRestore = "backflow-restore"
	TemplateRotate  = "backflow-rotate"

	// Entry templates inside them.
	EntryExecHook      = "exec-hook"
	EntryContainerHook = "container-hook"
	EntryDump          = "dump"
	EntryVerify        = "verify"
	EntryRestore       = "restore"
	EntryRotate        = "rotate"
)

// Service accounts of the compiled Workflows, which the controller provides
// in every namespace it runs them in (controller/namespace). No step's
// container gets a token but the exec hook's: the others never call the
// Kubernetes API.
const (
	// ExecutorServiceAccount is Argo's executor's account (its wait
	// container reports the outputs as WorkflowTaskResults), and the
	// account of the step pods of a resource that names none. The step
	// containers run without its token.
	ExecutorServiceAccount = "backflow-workflow"
	// HookServiceAccount is the exec hook's account, the one step whose
	// container calls the API (pods get and list, pods/exec create): no
	// other step runs as it, and spec.serviceAccountName cannot name it.
	HookServiceAccount = "backflow-hook"
)

// Metadata of the compiled objects, for the Argo UI and for finding what
// backflow installed.
const (
	annotationTitle       = "workflows.argoproj.io/title"
	annotationDescription = "workflows.argoproj.io/description"
	labelPartOf           = "app.kubernetes.io/part-of"
	partOfBackflow        = "backflow"
)

// Names of the steps of a compiled Workflow, as they appear in the Argo UI
// and in the status of Backups and Restores.
const (
	StepPreHook  = "pre-hook"
	StepDump     = "dump"
	StepVerify   = "verify"
	StepPostHook = "post-hook"
	StepRotate   = "rotate"
	StepRestore  = "restore"
)

// Parameters of the stage templates.
const (
	ParamImage           = "image"
	ParamBackflowImage   = "backflow-image"
	ParamPodSpecPatch    = "pod-spec-patch"
	ParamStorage         = "storage"
	ParamStorageSecret   = "storage-secret"
	ParamAccessKeyKey    = "access-key-id-key"
	ParamSecretKeyKey    = "secret-access-key-key"
	ParamKeyPrefix       = "key-prefix"
	ParamSessionTokenKey = "session-token-key"
	ParamSource          = "source"
	ParamTarget          = "target"
	ParamPath            = "path"
	ParamNamespace       = "namespace"
	ParamName            = "name"
	ParamSeries          = "series"
	ParamCompression     = "compression"
	ParamLevel           = "level"
	ParamRecipients      = "recipients"
	ParamExpectedSize    = "expected-size"
	ParamKey             = "key"
	ParamRestoreTest     = "restore-test"
	ParamEngine          = "engine"
	ParamVerifyFirst     = "verify-first"
	ParamDays            = "days"
	ParamKeepLast        = "keep-last"
	ParamKeepHourly      = "keep-hourly"
	ParamKeepDaily       = "keep-daily"
	ParamKeepWeekly      = "keep-weekly"
	ParamKeepMonthly     = "keep-monthly"
	ParamKeepYearly      = "keep-yearly"
	ParamStorageID       = "storage-id"
	ParamTimezone        = "timezone"
	ParamRetries         = "retries"
	ParamDeadline        = "deadline-seconds"
	ParamExpectChecksum  = "expect-checksum"
	ParamMarkVerified    = "mark-verified"
	ParamTimeout         = "timeout-seconds"
	ParamHookPod         = "pod"
	ParamHookSelector    = "selector"
	ParamHookContainer   = "container"
	ParamHookCommand     = "command"
	ParamHookOnError     = "on-error"
	OutputKey            = "key"
	OutputSize           = "size"
	OutputRawSize        = "raw-size"
	OutputChecksum       = "checksum"
	OutputRawChecksum    = "raw-checksum"
	OutputRotation       = "rotation"
	OutputsDir           = "/tmp/backflow-outputs"
	BinaryDir            = "/backflow/bin"
	BinaryPath           = BinaryDir + "/" + binaryName
	// binaryName is the backflow command on the backflow image's PATH.
	binaryName           = "backflow"
	VolumeRoot           = "/backflow/volume"
	IdentityDir          = "/backflow/identity"
	IdentityFile         = IdentityDir + "/identity.txt"
	CADir                = "/backflow/ca"
	CAFile               = CADir + "/" + RunCAKey
	mainContainer        = "main"
	waitContainer        = "wait"
	installContainer     = "install-backflow"
	binaryVolume         = "backflow-bin"
	identityVolume       = "age-identity"
	caVolume             = "storage-ca"
	dataVolume           = "data"
	envRecipients        = "BACKFLOW_AGE_RECIPIENTS"
	defaultPodSpecPatch  = "{}"
	defaultRetries       = "2"
	defaultHookTimeout   = 300
	defaultCompression   = "zstd"
	defaultCompressLevel = "0"
	noRule               = "-1"
	defaultTimezone      = "UTC"
)

// ExitCodeRetry is the exit code of a step that failed for a reason a later
// attempt may not meet (EX_TEMPFAIL from sysexits.h): the storage unreachable
// or failing, a connection dropped or stalled mid-upload (storage.IsTransient).
// The step's retryStrategy (retryExpression) retries it, with backoff, and only it: a
// permanent failure (credentials refused, no such bucket, unknown host,
// access denied, a dump that failed) exits 1 and fails at once.
const ExitCodeRetry = 75

// RunCredentialsSecret is the Secret every step of a compiled Workflow reads
// the storage credentials from: one per Workflow, which the controller
// creates once the Workflow exists (storageref.RunSecretName names it from
// the UID), owned by the Workflow and deleted when it finishes. Its keys are
// the steps' own (CredentialKeys), so that each step holds only what it may
// do, and RunCAKey holds the storage's CA bundle, when it has one.
const RunCredentialsSecret = "backflow-storage-{{workflow.uid}}"

// RunCAKey is the key of the run Secret that holds the storage's CA bundle.
const RunCAKey = "ca.crt"

// CredentialKeys are the keys of the run Secret that hold a step's access
// key ID, secret access key and session token (absent for credentials that
// have none).
func CredentialKeys(step string) (accessKeyID, secretAccessKey, sessionToken string) {
	return step + "-access-key-id", step + "-secret-access-key", step + "-session-token"
}
