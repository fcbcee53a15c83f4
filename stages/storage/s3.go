package storage

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultPartSizeMiB is the multipart part size when none is configured. A
// dump holds uploadThreads parts in memory, whatever the object's size (up to
// S3's 5 TiB: see uploader).
const DefaultPartSizeMiB = 16

// Timeouts of the store's connections. A request may take as long as it
// needs while bytes move; a connection on which nothing moves for
// defaultIdleTimeout (the server accepted and never answers, or stopped
// reading a body half-way) fails as transient. A part copied on the server
// moves no byte until the server answers, so copies get longer.
const (
	defaultIdleTimeout     = time.Minute
	defaultCopyIdleTimeout = 15 * time.Minute
	// defaultCleanupTimeout is how long an abort or delete after a failure
	// waits for a store that went away to come back.
	defaultCleanupTimeout = 2 * time.Minute
)

// uploadThreads is the number of part buffers: one filling while one
// uploads (or both uploading) keeps the pipeline busy without holding more
// parts in memory.
const uploadThreads = 2

// S3Config configures an S3-compatible store.
type S3Config struct {
	// Endpoint is the URL of the store, such as https://s3.amazonaws.com.
	Endpoint           string
	Bucket             string
	Prefix             string
	Region             string
	PathStyle          bool
	InsecureSkipVerify bool
	// CAFile is a PEM bundle trusted for the endpoint's certificate.
	CAFile string
	// CAPEM is the same bundle held in memory, for the controller, which
	// reads it from a Secret or ConfigMap; CAFile wins when both are set.
	CAPEM       []byte
	PartSizeMiB int
	Credentials Credentials
	// RefuseAddr, when set, is asked about every address a connection to
	// the store is made to, as it is dialled (after any DNS answer, so that
	// a name that resolves differently from one request to the next cannot
	// slip past it); an error refuses the connection.
	RefuseAddr func(netip.Addr) error

	// Knobs for tests only, zero for the defaults: S3's upload limits (with
	// partSize taken from PartSizeMiB when 0), the idle timeouts, the
	// cleanup's patience.
	limits                       uploadLimits
	idleTimeout, copyIdleTimeout time.Duration
	cleanupTimeout               time.Duration
}

func s3ConfigFromURL(u *url.URL) (S3Config, error) {
	q := u.Query()
	cfg := S3Config{
		Bucket:   u.Host,
		Prefix:   strings.Trim(u.Path, "/"),
		Endpoint: q.Get("endpoint"),
		Region:   q.Get("region"),
		CAFile:   q.Get("caFile"),
	}
	if cfg.Bucket == "" {
		return cfg, fmt.Errorf("storage URL %q names no bucket: s3://bucket/prefix", u.Redacted())
	}
	if cfg.Endpoint == "" {
		return cfg, fmt.Errorf("storage URL %q needs ?endpoint=https://host[:port]", u.Redacted())
	}
	for name, dst := range map[string]*bool{"pathStyle": &cfg.PathStyle, "insecureSkipVerify": &cfg.InsecureSkipVerify} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, fmt.Errorf("storage URL: %s=%q is not a boolean", name, v)
			}
			*dst = b
		}
	}
	if v := q.Get("partSizeMiB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 5120 {
			return cfg, fmt.Errorf("storage URL: partSizeMiB=%q must be a number from 5 to 5120", v)
		}
		cfg.PartSizeMiB = n
	}
	return cfg, nil
}

// URL renders the configuration as a storage URL (without credentials).
func (c S3Config) URL() string {
	q := url.Values{}
	q.Set("endpoint", c.Endpoint)
	if c.Region != "" {
		q.Set("region", c.Region)
	}
	if c.PathStyle {
		q.Set("pathStyle", "true")
	}
	if c.InsecureSkipVerify {
		q.Set("insecureSkipVerify", "true")
	}
	if c.CAFile != "" {
		q.Set("caFile", c.CAFile)
	}
	if c.PartSizeMiB != 0 {
		q.Set("partSizeMiB", strconv.Itoa(c.PartSizeMiB))
	}
	u := url.URL{Scheme: "s3", Host: c.Bucket, Path: "/" + strings.Trim(c.Prefix, "/"), RawQuery: q.Encode()}
	return u.String()
}

// schemeHTTPS is the endpoint scheme that turns TLS on.
const schemeHTTPS = "https"

// S3Backend stores objects in an S3-compatible bucket with minio-go.
type S3Backend struct {
	client *minio.Client
	// copier is the same store with the longer idle timeout of copies.
	copier *minio.Client
	cfg    S3Config
}

// endpoint parses the endpoint URL.
func (cfg S3Config) endpoint() (*url.URL, error) {
	ep, err := url.Parse(cfg.Endpoint)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != schemeHTTPS) || ep.Host == "" {
		return nil, fmt.Errorf("s3 endpoint %q must be an http:// or https:// URL", cfg.Endpoint)
	}
	return ep, nil
}

// tlsConfig is the TLS configuration of connections to the endpoint ep, nil
// over http: the CA bundle (CAFile or CAPEM), or no verification at all.
func (cfg S3Config) tlsConfig(ep *url.URL) (*tls.Config, error) {
	if ep.Scheme != schemeHTTPS {
		return nil, nil
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
	pem, source := cfg.CAPEM, "the CA bundle"
	if cfg.CAFile != "" {
		var err error
		if pem, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("reading the CA bundle: %w", err)
		}
		source = "the CA bundle " + cfg.CAFile
	}
	if len(pem) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", source)
		}
		tlsConfig.RootCAs = pool
	}
	return tlsConfig, nil
}

// NewS3Backend connects to an S3-compatible store. It makes no request.
func NewS3Backend(cfg S3Config) (*S3Backend, error) {
	ep, err := cfg.endpoint()
	if err != nil {
		return nil, err
	}
	if cfg.PartSizeMiB == 0 {
		cfg.PartSizeMiB = DefaultPartSizeMiB
	}
	if cfg.limits == (uploadLimits{}) {
		cfg.limits = s3Limits(0)
	}
	if cfg.limits.partSize == 0 {
		cfg.limits.partSize = int64(cfg.PartSizeMiB) << 20
	}
	if _, err := cfg.limits.directParts(); err != nil {
		return nil, err
	}
	if cfg.idleTimeout == 0 {
		cfg.idleTimeout = defaultIdleTimeout
	}
	if cfg.copyIdleTimeout == 0 {
		cfg.copyIdleTimeout = defaultCopyIdleTimeout
	}
	if cfg.cleanupTimeout == 0 {
		cfg.cleanupTimeout = defaultCleanupTimeout
	}
	tlsConfig, err := cfg.tlsConfig(ep)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	// Static credentials only: an empty key is an error, never minio-go's
	// anonymous access or its chain of the environment and the node's IAM
	// role, which would act as whatever identity the pod happens to have.
	switch {
	case cfg.Credentials.AccessKeyID == "":
		return nil, fmt.Errorf("%w: the access key ID is empty (%s in a step, from the storage's credentials Secret); backflow uses no ambient or anonymous identity", ErrNoCredentials, EnvAccessKeyID)
	case cfg.Credentials.SecretAccessKey == "":
		return nil, fmt.Errorf("%w: the secret access key is empty (%s in a step, from the storage's credentials Secret)", ErrNoCredentials, EnvSecretAccessKey)
	}
	creds := credentials.NewStaticV4(cfg.Credentials.AccessKeyID, cfg.Credentials.SecretAccessKey, cfg.Credentials.SessionToken)
	newClient := func(idle time.Duration) (*minio.Client, error) {
		transport, err := cfg.transport(ep, tlsConfig)
		if err != nil {
			return nil, err
		}
		transport.DialContext = idleDialer(transport.DialContext, idle)
		// The idle deadline covers the wait for the response too, and
		// knows a body still draining from the kernel's buffers from a
		// server that does not answer, which a timer from the body's last
		// write does not. A pooled connection is dropped before its
		// deadline could end a request.
		transport.ResponseHeaderTimeout = 0
		transport.IdleConnTimeout = min(transport.IdleConnTimeout, idle/2)
		return minio.New(ep.Host, &minio.Options{
			Creds:        creds,
			Secure:       ep.Scheme == schemeHTTPS,
			Region:       cfg.Region,
			BucketLookup: lookup,
			Transport:    transport,
			// One attempt per request: retry retries what is transient
			// (minio-go would also retry an unknown host or refused
			// credentials for seconds), and Argo retries the step.
			MaxRetries: 1,
		})
	}
	client, err := newClient(cfg.idleTimeout)
	if err != nil {
		return nil, err
	}
	copier, err := newClient(cfg.copyIdleTimeout)
	if err != nil {
		return nil, err
	}
	return &S3Backend{client: client, copier: copier, cfg: cfg}, nil
}

// Client is the minio-go client, for tests and checks that need more than the
// Backend interface.
func (b *S3Backend) Client() *minio.Client { return b.client }

// Bucket is the bucket objects are stored in.
func (b *S3Backend) Bucket() string { return b.cfg.Bucket }

// FullKey is the key of an object in the bucket, with the prefix.
func (b *S3Backend) FullKey(key string) string { return JoinKey(b.cfg.Prefix, key) }

func (b *S3Backend) String() string {
	return "s3://" + strings.TrimSuffix(b.cfg.Bucket+"/"+strings.Trim(b.cfg.Prefix, "/"), "/")
}

// Put uploads r, replacing the object key if it exists. Memory stays
// bounded whatever the size (see uploader). A reader that fails, a store that
// fails or a cancelled ctx leaves neither an object nor an unfinished upload.
func (b *S3Backend) Put(ctx context.Context, key string, r io.Reader, metadata map[string]string) error {
	return b.put(ctx, key, r, objectOptions{metadata: metadata})
}

// Create is Put for an object that must not exist: the upload completes only
// if no object has the key by then (If-None-Match: *, checked by the store
// atomically with the completion), and fails with ErrExists otherwise.
func (b *S3Backend) Create(ctx context.Context, key string, r io.Reader, metadata map[string]string) error {
	return b.put(ctx, key, r, objectOptions{metadata: metadata, ifAbsent: true})
}

func (b *S3Backend) put(ctx context.Context, key string, r io.Reader, opts objectOptions) error {
	u := uploader{store: s3Parts{b}, limits: b.cfg.limits, threads: uploadThreads, cleanupTimeout: b.cfg.cleanupTimeout}
	if err := u.upload(ctx, b.FullKey(key), r, opts); err != nil {
		if errors.Is(err, ErrExists) {
			return fmt.Errorf("%s/%s: %w", b, key, err)
		}
		return fmt.Errorf("uploading %s/%s: %w", b, key, err)
	}
	return nil
}

func (b *S3Backend) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if _, err := b.Stat(ctx, key); err != nil {
		return nil, err
	}
	obj, err := b.client.GetObject(ctx, b.cfg.Bucket, b.FullKey(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", b, key, classify(err))
	}
	return classifiedReader{obj}, nil
}

// classifiedReader classifies the errors of reading an object, so that a
// connection dropped mid-stream is transient.
type classifiedReader struct{ io.ReadCloser }

func (r classifiedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = classify(err)
	}
	return n, err
}

func (b *S3Backend) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	var info minio.ObjectInfo
	err := retry(ctx, requestAttempts, func(ctx context.Context) (err error) {
		info, err = b.client.StatObject(ctx, b.cfg.Bucket, b.FullKey(key), minio.StatObjectOptions{})
		if isNotFound(err) {
			return ErrNotFound
		}
		return classify(err)
	})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("%s/%s: %w", b, key, err)
	}
	metadata := make(map[string]string, len(info.UserMetadata))
	for k, v := range info.UserMetadata {
		metadata[strings.ToLower(k)] = v
	}
	return ObjectInfo{Key: key, Size: info.Size, LastModified: info.LastModified, Metadata: metadata}, nil
}

func (b *S3Backend) List(ctx context.Context, dir string) ([]ObjectInfo, error) {
	prefix := b.FullKey(dir) // ends in '/' (or is "" for a bucket without prefix)
	var out []ObjectInfo
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing %s/%s: %w", b, dir, classify(obj.Err))
		}
		if strings.HasSuffix(obj.Key, "/") {
			continue // a "directory" marker some tools create
		}
		out = append(out, ObjectInfo{Key: dir + strings.TrimPrefix(obj.Key, prefix), Size: obj.Size, LastModified: obj.LastModified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (b *S3Backend) Delete(ctx context.Context, key string) error {
	if err := (s3Parts{b}).removeObject(ctx, b.FullKey(key)); err != nil {
		return fmt.Errorf("deleting %s/%s: %w", b, key, err)
	}
	return nil
}

// CheckBucket checks that the bucket exists and the credentials may list it.
func (b *S3Backend) CheckBucket(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("checking bucket %s at %s: %w", b.cfg.Bucket, b.cfg.Endpoint, classify(err))
	}
	if !ok {
		return fmt.Errorf("bucket %s does not exist at %s", b.cfg.Bucket, b.cfg.Endpoint)
	}
	return nil
}

// s3Parts is the partStore of an S3 backend: minio-go's Core, one request at
// a time, transient failures retried and every error classified.
type s3Parts struct{ b *S3Backend }

func (s s3Parts) core() minio.Core     { return minio.Core{Client: s.b.client} }
func (s s3Parts) copyCore() minio.Core { return minio.Core{Client: s.b.copier} }
func (s s3Parts) bucket() string       { return s.b.cfg.Bucket }
func (s s3Parts) options(o objectOptions) minio.PutObjectOptions {
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", UserMetadata: o.metadata, DisableContentSha256: true}
	if o.ifAbsent {
		opts.SetMatchETagExcept("*")
	}
	return opts
}

func (s s3Parts) putObject(ctx context.Context, key string, data []byte, o objectOptions) error {
	opts := s.options(o)
	return retry(ctx, requestAttempts, func(ctx context.Context) error {
		_, err := s.core().PutObject(ctx, s.bucket(), key, bytes.NewReader(data), int64(len(data)), "", "", opts)
		return classify(err)
	})
}

func (s s3Parts) createUpload(ctx context.Context, key string, o objectOptions) (id string, err error) {
	// The condition goes on the completion, where S3 checks it; MinIO would
	// also check it here, other stores may not.
	opts := s.options(objectOptions{metadata: o.metadata})
	err = retry(ctx, requestAttempts, func(ctx context.Context) (err error) {
		id, err = s.core().NewMultipartUpload(ctx, s.bucket(), key, opts)
		return classify(err)
	})
	return id, err
}

func (s s3Parts) uploadPart(ctx context.Context, key, uploadID string, number int, data []byte) (part minio.CompletePart, err error) {
	err = retry(ctx, requestAttempts, func(ctx context.Context) error {
		// No SigV4 payload signing, as minio-go already does over https:
		// over plain http it would hash every byte twice more (client and
		// server); the manifest's sha256, which verify checks, covers the
		// object.
		p, err := s.core().PutObjectPart(ctx, s.bucket(), key, uploadID, number, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectPartOptions{DisableContentSha256: true})
		part = minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag}
		return classify(err)
	})
	return part, err
}

func (s s3Parts) copyPart(ctx context.Context, srcKey, key, uploadID string, number int, offset, length int64) (part minio.CompletePart, err error) {
	err = retry(ctx, requestAttempts, func(ctx context.Context) (err error) {
		part, err = s.copyCore().CopyObjectPart(ctx, s.bucket(), srcKey, s.bucket(), key, uploadID, number, offset, length, nil)
		return classify(err)
	})
	return part, err
}

func (s s3Parts) completeUpload(ctx context.Context, key, uploadID string, parts []minio.CompletePart, o objectOptions) error {
	opts := s.options(o)
	opts.UserMetadata = nil // given when the upload was created
	return retry(ctx, requestAttempts, func(ctx context.Context) error {
		_, err := s.copyCore().CompleteMultipartUpload(ctx, s.bucket(), key, uploadID, parts, opts)
		return classify(err)
	})
}

func (s s3Parts) abortUpload(ctx context.Context, key, uploadID string) error {
	return retry(ctx, requestAttempts, func(ctx context.Context) error {
		err := s.core().AbortMultipartUpload(ctx, s.bucket(), key, uploadID)
		if isNotFound(err) {
			return nil // aborted by an earlier attempt whose answer was lost
		}
		return classify(err)
	})
}

func (s s3Parts) removeObject(ctx context.Context, key string) error {
	return retry(ctx, requestAttempts, func(ctx context.Context) error {
		err := s.b.client.RemoveObject(ctx, s.bucket(), key, minio.RemoveObjectOptions{})
		if isNotFound(err) {
			return nil
		}
		return classify(err)
	})
}

// isNotFound says that the object (or upload) does not exist; a missing
// bucket is not that, but a permanent failure.
func isNotFound(err error) bool {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.Code != minio.NoSuchBucket {
		return resp.StatusCode == http.StatusNotFound || resp.Code == minio.NoSuchKey || resp.Code == "NoSuchUpload"
	}
	return false
}

// transport is minio-go's default transport to the endpoint, trusting it as
// tlsConfig says and, with RefuseAddr, asking about each address it dials.
func (cfg S3Config) transport(ep *url.URL, tlsConfig *tls.Config) (*http.Transport, error) {
	transport, err := minio.DefaultTransport(ep.Scheme == schemeHTTPS)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		transport.TLSClientConfig = tlsConfig
	}
	if refuse := cfg.RefuseAddr; refuse != nil {
		// minio.DefaultTransport's dialer, asking about each address.
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
			addrPort, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			return refuse(addrPort.Addr())
		}}
		transport.DialContext = dialer.DialContext
	}
	return transport, nil
}
