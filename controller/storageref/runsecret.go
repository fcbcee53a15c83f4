package storageref

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/internal/runsecret"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/stages/storage"
)

// RunSecretName is the name of the run Secret of the Workflow with UID uid:
// compiler.RunCredentialsSecret as Argo renders it in the Workflow. A UID
// names one Workflow ever, so two runs never share a Secret, whatever their
// names and namespaces.
func RunSecretName(uid types.UID) string {
	return strings.Replace(compiler.RunCredentialsSecret, "{{workflow.uid}}", string(uid), 1)
}

// Labels and annotations of a run Secret.
const (
	// LabelRunStorage holds the UID of the storage whose credentials a run
	// Secret holds, so that Revoke finds those of a namespace the storage
	// stops admitting (a storage's namespace and name may not fit a label).
	LabelRunStorage = "backflow.dev/run-storage-uid"
	// AnnotationRunStorage names that storage, <namespace>/<name>, for
	// people.
	AnnotationRunStorage = "backflow.dev/storage"
	// annotationExpiresPrefix, followed by a step's name, holds when the
	// minted credentials of that step expire (RFC 3339); copies of the
	// bucket credentials have none.
	annotationExpiresPrefix = "backflow.dev/expires-"
)

// Lifetimes of minted credentials. A step's credentials are minted for its
// deadline and a margin (the pod may start a little after the Secret is
// read), at least AssumeRole's minimum; while the run goes on the
// controller looks at its Secret every RenewInterval and mints again the
// credentials of a step that would not outlast its deadline and
// RenewMargin, so that a pod starting at any moment gets credentials valid
// for its whole deadline.
const (
	mintMargin      = 15 * time.Minute
	minimumLifetime = 900 * time.Second
	RenewMargin     = 5 * time.Minute
	RenewInterval   = 5 * time.Minute
	// minimumRenewWait keeps a storage whose STS grants less than asked
	// from being asked in a loop.
	minimumRenewWait = 10 * time.Second
)

// lifetime is how long credentials are minted for, for a step with deadline.
func lifetime(deadline time.Duration) time.Duration {
	return max(deadline+mintMargin, minimumLifetime)
}

// Issuer writes the run Secrets: the credentials of each step of a run,
// copied from the storage's Secret or minted by the storage's STS, renewed
// while the run goes on, and removed when it ends.
type Issuer struct {
	Client   client.Client
	Recorder record.EventRecorder
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Timeout bounds each request to a storage's STS (DefaultTimeout when
	// zero).
	Timeout time.Duration
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// Run is a Workflow that uses a storage, with what its steps may do there.
type Run struct {
	Workflow *wfv1.Workflow
	Storage  *v1.BackupStorage
	Grants   []Grant
	// For is the Backup or Restore the Events are recorded on.
	For client.Object
}

// Issued are credentials issued for some steps of a run and not yet written
// to its Secret: a reconciler issues them before it creates the Workflow,
// so that a storage that cannot give them holds the run before it starts.
type Issued struct {
	data    map[string][]byte
	expires map[string]time.Time
	steps   []string
	minted  bool
}

// copies says whether a run in namespace ns gets copies of the bucket
// credentials rather than minted ones: in the storage's own namespace,
// whose resources may read its Secret anyway, or where the storage says so.
func copies(st *v1.BackupStorage, ns string) bool {
	return ns == st.Namespace || st.Spec.Sharing == v1.SharingBucketCredentials
}

// Issue issues the credentials of the grants of a run in namespace ns, and
// the storage's CA bundle beside them. An error that says the storage
// cannot give them wraps ErrCredentialsNotMinted.
func (i *Issuer) Issue(ctx context.Context, st *v1.BackupStorage, ns string, grants []Grant) (*Issued, error) {
	cfg, err := bucketConfig(ctx, i.Client, st)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the credentials of BackupStorage %s: %w", ErrCredentialsNotMinted, st.ID(), err)
	}
	issued := &Issued{data: map[string][]byte{}, expires: map[string]time.Time{}, minted: !copies(st, ns)}
	if len(cfg.CAPEM) > 0 {
		issued.data[compiler.RunCAKey] = cfg.CAPEM
	}
	for _, g := range grants {
		creds := cfg.Credentials
		if issued.minted {
			if g.refused != "" {
				return nil, fmt.Errorf("%w: no credentials for step %s of BackupStorage %s: %s", ErrCredentialsNotMinted, g.Step, st.ID(), g.refused)
			}
			var expires time.Time
			if creds, expires, err = i.mint(ctx, cfg, g); err != nil {
				return nil, fmt.Errorf("%w: BackupStorage %s could not mint credentials confined to namespace %s for step %s (%w); "+
					"its spec.sharing is %s, which needs AssumeRole at the storage's endpoint: if its provider has none, "+
					"the storage's owner may set spec.sharing: %s, which gives the runs of the namespaces it allows the bucket credentials",
					ErrCredentialsNotMinted, st.ID(), ns, g.Step, err, v1.SharingScopedCredentials, v1.SharingBucketCredentials)
			}
			issued.expires[g.Step] = expires
		}
		id, secret, token := compiler.CredentialKeys(g.Step)
		issued.data[id], issued.data[secret] = []byte(creds.AccessKeyID), []byte(creds.SecretAccessKey)
		if creds.SessionToken != "" {
			issued.data[token] = []byte(creds.SessionToken)
		}
		issued.steps = append(issued.steps, g.Step)
	}
	return issued, nil
}

// mint asks the storage's STS for credentials of one grant, and says until
// when the controller counts on them: the lifetime asked for, or less when
// the STS granted less.
func (i *Issuer) mint(ctx context.Context, cfg storage.S3Config, g Grant) (storage.Credentials, time.Time, error) {
	timeout := i.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := lifetime(g.Deadline)
	creds, expiration, err := storage.AssumeRole(ctx, cfg, g.Policy(), want)
	if err != nil {
		return storage.Credentials{}, time.Time{}, err
	}
	valid := want
	if !expiration.IsZero() {
		valid = min(valid, time.Until(expiration))
	}
	return creds, i.now().Add(valid), nil
}

// Ensure writes the run's Secret, issuing every step's credentials (issued,
// when the caller issued them already), or renews those in it that would
// not outlast a step started now. It returns when to look again while the
// run goes on. An error that says the credentials cannot be given wraps
// ErrCredentialsNotMinted.
func (i *Issuer) Ensure(ctx context.Context, run Run, issued *Issued) (time.Duration, error) {
	wf, st := run.Workflow, run.Storage
	var secret corev1.Secret
	err := i.Client.Get(ctx, client.ObjectKey{Namespace: wf.Namespace, Name: RunSecretName(wf.UID)}, &secret)
	switch {
	case apierrors.IsNotFound(err):
		if issued == nil {
			if issued, err = i.Issue(ctx, st, wf.Namespace, run.Grants); err != nil {
				return 0, err
			}
		}
		secret = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: wf.Namespace, Name: RunSecretName(wf.UID)}, Type: corev1.SecretTypeOpaque}
		i.apply(&secret, run, issued)
		if err := i.Client.Create(ctx, &secret); err != nil {
			return 0, fmt.Errorf("creating the run Secret %s: %w", secret.Name, err)
		}
		i.record(run, issued, &secret)
		return i.renewAfter(&secret, run.Grants), nil
	case err != nil:
		return 0, err
	}
	if !runsecret.Written(&secret, wf, LabelRunStorage) {
		return 0, fmt.Errorf("%w: a Secret %s exists in %s that backflow did not write for Workflow %s; it is left as it is, and the run's steps read it",
			ErrCredentialsNotMinted, secret.Name, secret.Namespace, wf.Name)
	}
	if copies(st, wf.Namespace) {
		// Copies are read again on every look: cheap, and a rotated bucket
		// key reaches the steps that have not started yet.
		if issued, err = i.Issue(ctx, st, wf.Namespace, run.Grants); err != nil {
			return 0, err
		}
	} else if stale := i.stale(&secret, run); len(stale) > 0 {
		if issued, err = i.Issue(ctx, st, wf.Namespace, stale); err != nil {
			return 0, err
		}
	} else {
		return i.renewAfter(&secret, run.Grants), nil
	}
	before := secret.DeepCopy()
	i.apply(&secret, run, issued)
	if equality.Semantic.DeepEqual(before, &secret) {
		return i.renewAfter(&secret, run.Grants), nil
	}
	if err := i.Client.Update(ctx, &secret); err != nil {
		return 0, fmt.Errorf("renewing the run Secret %s: %w", secret.Name, err)
	}
	i.record(run, issued, &secret)
	return i.renewAfter(&secret, run.Grants), nil
}

// stale are the grants whose minted credentials the Secret lacks, or holds
// as copies (the storage's sharing changed), or that would expire before a
// step started now reaches its deadline and RenewMargin.
func (i *Issuer) stale(secret *corev1.Secret, run Run) []Grant {
	now := i.now()
	var stale []Grant
	for _, g := range run.Grants {
		id, _, _ := compiler.CredentialKeys(g.Step)
		at, err := time.Parse(time.RFC3339, secret.Annotations[annotationExpiresPrefix+g.Step])
		if len(secret.Data[id]) == 0 || err != nil || at.Sub(now) < g.Deadline+RenewMargin {
			stale = append(stale, g)
		}
	}
	return stale
}

// apply writes issued credentials into the Secret, with its labels,
// annotations and owner.
func (i *Issuer) apply(secret *corev1.Secret, run Run, issued *Issued) {
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	maps.Copy(secret.Labels, runsecret.Labels(LabelRunStorage, string(run.Storage.UID)))
	secret.Annotations[AnnotationRunStorage] = run.Storage.ID()
	for k, v := range issued.data {
		secret.Data[k] = v
	}
	for _, step := range issued.steps {
		_, _, token := compiler.CredentialKeys(step)
		if _, ok := issued.data[token]; !ok {
			delete(secret.Data, token)
		}
		if at, ok := issued.expires[step]; ok {
			secret.Annotations[annotationExpiresPrefix+step] = at.UTC().Format(time.RFC3339)
		} else {
			delete(secret.Annotations, annotationExpiresPrefix+step)
		}
	}
	wf := run.Workflow
	if !slices.ContainsFunc(secret.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == wf.UID }) {
		// Owned, not controlled: the Secret goes with the Workflow, and
		// deleting the Workflow never waits for it.
		secret.OwnerReferences = append(secret.OwnerReferences, metav1.OwnerReference{
			APIVersion: wfv1.SchemeGroupVersion.String(), Kind: "Workflow", Name: wf.Name, UID: wf.UID,
			BlockOwnerDeletion: ptrTo(false),
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// record records the Event that says which credentials were written, never
// their values.
func (i *Issuer) record(run Run, issued *Issued, secret *corev1.Secret) {
	kind := metrics.CredentialsCopied
	if issued.minted {
		kind = metrics.CredentialsMinted
	}
	metrics.CredentialsIssuedTotal.WithLabelValues(secret.Namespace, kind).Add(float64(len(issued.steps)))
	if i.Recorder == nil || run.For == nil {
		return
	}
	if !issued.minted {
		i.Recorder.Eventf(run.For, corev1.EventTypeNormal, string(v1.EventCredentialsMinted),
			"Wrote the bucket credentials of BackupStorage %s for steps %s into Secret %s", run.Storage.ID(), strings.Join(issued.steps, ", "), secret.Name)
		return
	}
	var parts []string
	for _, g := range run.Grants {
		if at, ok := issued.expires[g.Step]; ok {
			parts = append(parts, fmt.Sprintf("%s (s3://%s/%s, until %s)", g.Step, run.Storage.Spec.S3.Bucket, g.Scope, at.UTC().Format(time.RFC3339)))
		}
	}
	i.Recorder.Eventf(run.For, corev1.EventTypeNormal, string(v1.EventCredentialsMinted),
		"Minted credentials of BackupStorage %s into Secret %s for steps %s", run.Storage.ID(), secret.Name, strings.Join(parts, ", "))
}

// renewAfter is when to look at a run Secret again: before the first of its
// minted credentials needs renewing, and at least every RenewInterval.
func (i *Issuer) renewAfter(secret *corev1.Secret, grants []Grant) time.Duration {
	wait := RenewInterval
	now := i.now()
	for _, g := range grants {
		at, err := time.Parse(time.RFC3339, secret.Annotations[annotationExpiresPrefix+g.Step])
		if err != nil {
			continue
		}
		wait = min(wait, at.Sub(now)-g.Deadline-RenewMargin)
	}
	return max(wait, minimumRenewWait)
}

// DeleteRunSecret deletes the run Secret of a Workflow, as soon as the
// Workflow has finished (or may no longer use the storage): the credentials
// are for the run only. A Secret of that name that backflow did not write is
// left alone. secrets is the cache of Secret metadata (runsecret.Delete).
func DeleteRunSecret(ctx context.Context, secrets client.Reader, c client.Writer, wf *wfv1.Workflow) error {
	return runsecret.Delete(ctx, secrets, c, wf, RunSecretName(wf.UID), LabelRunStorage)
}

// Revoke deletes what gives namespaces a storage no longer admits access to
// it: the run Secrets of its credentials there. It also deletes the copies
// of its Secret and CA ConfigMap that earlier versions left in every
// namespace that used it (LabelCopiedFrom), which held the bucket
// credentials and which nothing reads any more. It returns how many it
// deleted.
func Revoke(ctx context.Context, c client.Client, st *v1.BackupStorage) (int, error) {
	deleted := 0
	var runs corev1.SecretList
	if err := c.List(ctx, &runs, client.MatchingLabels{LabelRunStorage: string(st.UID)}); err != nil {
		return 0, err
	}
	var errs []error
	for i := range runs.Items {
		s := &runs.Items[i]
		if st.AllowsNamespace(s.Namespace) {
			continue
		}
		if err := c.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	copiedFrom := st.Namespace + "." + st.Name
	if len(validation.IsValidLabelValue(copiedFrom)) > 0 {
		return deleted, errors.Join(errs...) // no copy was ever labelled so
	}
	var secrets corev1.SecretList
	var configMaps corev1.ConfigMapList
	for _, list := range []client.ObjectList{&secrets, &configMaps} {
		if err := c.List(ctx, list, client.MatchingLabels{LabelCopiedFrom: copiedFrom}); err != nil {
			return deleted, errors.Join(append(errs, err)...)
		}
	}
	var old []client.Object
	for i := range secrets.Items {
		old = append(old, &secrets.Items[i])
	}
	for i := range configMaps.Items {
		old = append(old, &configMaps.Items[i])
	}
	for _, o := range old {
		if o.GetNamespace() == st.Namespace {
			continue
		}
		uid := o.GetUID()
		if err := c.Delete(ctx, o, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}
