// Package storageref resolves the BackupStorage a resource names into what
// its Workflow needs in the resource's own namespace.
package storageref

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/storage"
)

// Errors that say why a storage cannot be used; the reconcilers turn them
// into condition reasons.
var (
	ErrNotFound  = errors.New("storage not found")
	ErrForbidden = errors.New("storage not allowed")
	// ErrEndpointNotAllowed says the endpoint is, or resolves to, a
	// link-local or cloud metadata address (CheckEndpoint).
	ErrEndpointNotAllowed = errors.New("endpoint not allowed")
	// ErrCredentialsNotMinted: the run's credentials could not be written.
	ErrCredentialsNotMinted = errors.New("credentials not minted")
)

// Reason is the condition reason for an error that says why a storage
// cannot be used, and false for any other error.
func Reason(err error) (v1.ConditionReason, bool) {
	switch {
	case errors.Is(err, ErrForbidden):
		return v1.ReasonStorageForbidden, true
	case errors.Is(err, ErrNotFound):
		return v1.ReasonStorageNotFound, true
	case errors.Is(err, ErrCredentialsNotMinted):
		return v1.ReasonCredentialsNotMinted, true
	}
	return "", false
}

// RetryAfter is how soon a resource whose storage cannot be used is looked
// at again; a change to the storage also triggers it.
const RetryAfter = 30 * time.Second

// Key is the key of the BackupStorage ref names for a resource in namespace
// ns.
func Key(ref v1.StorageReference, ns string) client.ObjectKey {
	return client.ObjectKey{Namespace: ref.StorageNamespace(ns), Name: ref.Name}
}

// IndexValue is the value under which an index of the resources that use
// storages files a resource in namespace ns that names ref: the storage's
// namespace/name, as client.ObjectKeyFromObject(storage).String() says it.
func IndexValue(ref v1.StorageReference, ns string) string { return Key(ref, ns).String() }

// LabelCopiedFrom marked the Secrets and ConfigMaps that earlier versions
// copied from a storage's namespace into each namespace that used it, with
// the storage's namespace and name. Nothing reads them any more (each run
// has its own Secret): Revoke deletes them.
const LabelCopiedFrom = "backflow.dev/copied-from-storage"

// Resolve finds the storage ref names for a resource in namespace ns. A
// storage in another namespace must allow ns. Nothing is copied: the run's
// Secret (RunSecretName), written once its Workflow exists, carries what the
// steps need.
func Resolve(ctx context.Context, c client.Client, ref v1.StorageReference, ns string) (compiler.StorageAccess, error) {
	var st v1.BackupStorage
	key := Key(ref, ns)
	if err := c.Get(ctx, key, &st); err != nil {
		if apierrors.IsNotFound(err) {
			return compiler.StorageAccess{}, fmt.Errorf("%w: BackupStorage %s does not exist", ErrNotFound, key)
		}
		return compiler.StorageAccess{}, err
	}
	if !st.AllowsNamespace(ns) {
		return compiler.StorageAccess{}, fmt.Errorf("%w: BackupStorage %s does not list namespace %s in spec.allowedNamespaces", ErrForbidden, key, ns)
	}
	return compiler.StorageAccess{Storage: &st}, nil
}

// DefaultTimeout bounds each request the controller makes to a storage when
// Open is given no timeout.
const DefaultTimeout = 15 * time.Second

// Backend is a storage as the controller itself uses it, for its checks and
// deletions: every request is bounded by a timeout, so that a storage that
// accepts connections and never answers cannot hold a reconcile.
type Backend struct {
	s3      *storage.S3Backend
	timeout time.Duration
}

// Open opens the storage from the controller, reading the credentials from
// the storage's Secret; each request of the returned Backend is bounded by
// timeout (DefaultTimeout when zero).
func Open(ctx context.Context, c client.Client, st *v1.BackupStorage, timeout time.Duration) (*Backend, error) {
	cfg, err := bucketConfig(ctx, c, st)
	if err != nil {
		return nil, err
	}
	backend, err := storage.NewS3Backend(cfg)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Backend{s3: backend, timeout: timeout}, nil
}

// bucketConfig is the configuration of a storage's backend with the bucket
// credentials and the CA bundle, read from the storage's Secret (and
// ConfigMap) in its own namespace.
func bucketConfig(ctx context.Context, c client.Client, st *v1.BackupStorage) (storage.S3Config, error) {
	if err := CheckEndpoint(ctx, st.Spec.S3, net.DefaultResolver.LookupNetIP); err != nil {
		return storage.S3Config{}, err
	}
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: st.Namespace, Name: st.Spec.S3.Credentials.SecretRef.Name}, &secret); err != nil {
		return storage.S3Config{}, fmt.Errorf("credentials Secret %s: %w", st.Spec.S3.Credentials.SecretRef.Name, err)
	}
	cfg, err := s3Config(st, secret.Data)
	if err != nil {
		return storage.S3Config{}, err
	}
	if tls := st.Spec.S3.TLS; tls != nil {
		if cfg.CAPEM, err = caBundle(ctx, c, st.Namespace, tls); err != nil {
			return storage.S3Config{}, err
		}
	}
	return cfg, nil
}

// call runs one request under the timeout, naming the timeout when it hit.
func (b *Backend) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	err := f(ctx)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s did not answer within %s: %w", b.s3, b.timeout, err)
	}
	return err
}

// CheckBucket checks that the bucket exists and the credentials may list it.
func (b *Backend) CheckBucket(ctx context.Context) error { return b.call(ctx, b.s3.CheckBucket) }

// Stat describes an object; storage.ErrNotFound when it does not exist.
func (b *Backend) Stat(ctx context.Context, key string) (info storage.ObjectInfo, err error) {
	err = b.call(ctx, func(ctx context.Context) error { info, err = b.s3.Stat(ctx, key); return err })
	return info, err
}

// ReadManifest reads the manifest of the object key; an error wrapping
// storage.ErrNotFound when it has none.
func (b *Backend) ReadManifest(ctx context.Context, key string) (m *stages.Manifest, err error) {
	// The manifest is read whole inside the call: the object reader makes its
	// requests lazily, under the call's context.
	err = b.call(ctx, func(ctx context.Context) error { m, err = stages.ReadManifest(ctx, b.s3, key); return err })
	return m, err
}

// Delete deletes an object; one that does not exist is no error.
func (b *Backend) Delete(ctx context.Context, key string) error {
	return b.call(ctx, func(ctx context.Context) error { return b.s3.Delete(ctx, key) })
}

// String names the storage for messages, without credentials.
func (b *Backend) String() string { return b.s3.String() }

// s3Config is the configuration of a storage's backend, with the
// credentials taken from the data of its credentials Secret: the keys the
// storage names, or the default ones. The CA bundle is not read here.
func s3Config(st *v1.BackupStorage, secret map[string][]byte) (storage.S3Config, error) {
	creds := st.Spec.S3.Credentials
	get := func(key string) (string, error) {
		v, ok := secret[key]
		if !ok {
			return "", fmt.Errorf("credentials Secret %s has no key %s", creds.SecretRef.Name, key)
		}
		if len(v) == 0 {
			// Never a fall back to an anonymous or ambient identity.
			return "", fmt.Errorf("credentials Secret %s has an empty %s", creds.SecretRef.Name, key)
		}
		return string(v), nil
	}
	idKey, secretKeyKey := creds.Keys()
	id, err := get(idKey)
	if err != nil {
		return storage.S3Config{}, err
	}
	secretKey, err := get(secretKeyKey)
	if err != nil {
		return storage.S3Config{}, err
	}
	token := ""
	if creds.SessionTokenKey != "" {
		token = string(secret[creds.SessionTokenKey])
	}
	cfg := compiler.S3Config(st.Spec.S3)
	cfg.Credentials = storage.Credentials{AccessKeyID: id, SecretAccessKey: secretKey, SessionToken: token}
	if !st.Spec.S3.AllowMetadataEndpoint {
		// CheckEndpoint's rule again as each connection is dialled: a name
		// may resolve to another address than it did for the check.
		cfg.RefuseAddr = func(addr netip.Addr) error {
			if why := refusedAddr(addr); why != "" {
				return fmt.Errorf("%w: s3.endpoint %s connected to %s, %s; set s3.allowMetadataEndpoint: true if the storage really is there", ErrEndpointNotAllowed, st.Spec.S3.Endpoint, addr, why)
			}
			return nil
		}
	}
	return cfg, nil
}

// caBundle reads a storage's CA bundle from its Secret or ConfigMap.
func caBundle(ctx context.Context, c client.Client, ns string, tls *v1.StorageTLS) ([]byte, error) {
	switch {
	case tls.CASecretRef != nil:
		ref := tls.CASecretRef
		var secret corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &secret); err != nil {
			return nil, fmt.Errorf("CA Secret %s: %w", ref.Name, err)
		}
		if pem, ok := secret.Data[ref.Key]; ok {
			return pem, nil
		}
		return nil, fmt.Errorf("CA Secret %s has no key %s", ref.Name, ref.Key)
	case tls.CAConfigMapRef != nil:
		ref := tls.CAConfigMapRef
		var cm corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &cm); err != nil {
			return nil, fmt.Errorf("CA ConfigMap %s: %w", ref.Name, err)
		}
		if pem, ok := cm.Data[ref.Key]; ok {
			return []byte(pem), nil
		}
		return nil, fmt.Errorf("CA ConfigMap %s has no key %s", ref.Name, ref.Key)
	}
	return nil, nil
}

// metadataHosts are the names of cloud metadata services; metadataAddrs
// their addresses that are not link-local (AWS's IPv6 one).
var (
	metadataHosts = []string{"metadata.google.internal", "metadata"}
	metadataAddrs = []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00:ec2::254")}
)

// refusedAddr says why the controller sends no request to addr, or "".
func refusedAddr(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case slices.Contains(metadataAddrs, addr):
		return "a cloud metadata address"
	case addr.IsLinkLocalUnicast():
		return "a link-local address"
	}
	return ""
}

// CheckEndpoint refuses a storage endpoint that is, or whose name resolves
// (with lookup) to, a link-local address or a cloud metadata service,
// unless s3.allowMetadataEndpoint says so: the controller runs with its
// node's network position and, on some clouds, identity, and a storage's
// endpoint must not make it ask the metadata service. A name that does not
// resolve passes: the bucket check then fails as unreachable.
func CheckEndpoint(ctx context.Context, s3 v1.S3Storage, lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)) error {
	if s3.AllowMetadataEndpoint {
		return nil
	}
	u, err := url.Parse(s3.Endpoint)
	if err != nil {
		return fmt.Errorf("s3.endpoint %q: %w", s3.Endpoint, err)
	}
	host := u.Hostname()
	refuse := func(why string) error {
		return fmt.Errorf("%w: s3.endpoint %s is %s; set s3.allowMetadataEndpoint: true if the storage really is there", ErrEndpointNotAllowed, s3.Endpoint, why)
	}
	if slices.Contains(metadataHosts, strings.TrimSuffix(strings.ToLower(host), ".")) {
		return refuse("the name of a cloud metadata service")
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if why := refusedAddr(addr); why != "" {
			return refuse(why)
		}
		return nil
	}
	addrs, err := lookup(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, addr := range addrs {
		if why := refusedAddr(addr); why != "" {
			return refuse(fmt.Sprintf("a name that resolves to %s, %s", addr, why))
		}
	}
	return nil
}
