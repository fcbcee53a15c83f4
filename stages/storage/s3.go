package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultPartSizeMiB is the multipart part size when none is configured. A
// dump holds about (parallel parts + 1) parts in memory; the largest object is
// 10,000 parts (156 GiB at 16 MiB).
const DefaultPartSizeMiB = 16

// uploadThreads is the number of parts uploaded at once: one filling while
// one uploads keeps the pipeline busy without holding more parts in memory.
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
	cfg    S3Config
}

// NewS3Backend connects to an S3-compatible store. It makes no request.
func NewS3Backend(cfg S3Config) (*S3Backend, error) {
	ep, err := url.Parse(cfg.Endpoint)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != schemeHTTPS) || ep.Host == "" {
		return nil, fmt.Errorf("s3 endpoint %q must be an http:// or https:// URL", cfg.Endpoint)
	}
	if cfg.PartSizeMiB == 0 {
		cfg.PartSizeMiB = DefaultPartSizeMiB
	}
	transport, err := minio.DefaultTransport(ep.Scheme == schemeHTTPS)
	if err != nil {
		return nil, err
	}
	if ep.Scheme == schemeHTTPS {
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
		pem, source := cfg.CAPEM, "the CA bundle"
		if cfg.CAFile != "" {
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
		transport.TLSClientConfig = tlsConfig
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	creds := credentials.NewStaticV4(cfg.Credentials.AccessKeyID, cfg.Credentials.SecretAccessKey, cfg.Credentials.SessionToken)
	if cfg.Credentials.AccessKeyID == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.IAM{}})
	}
	client, err := minio.New(ep.Host, &minio.Options{
		Creds:        creds,
		Secure:       ep.Scheme == schemeHTTPS,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
	})
	if err != nil {
		return nil, err
	}
	return &S3Backend{client: client, cfg: cfg}, nil
}

// Client is the minio-go client, for tests and checks that need more than the
// Backend interface.
func (b *S3Backend) Client() *minio.Client { return b.client }

// Bucket is the bucket objects are stored in.
func (b *S3Backend) Bucket() string { return b.cfg.Bucket }

// FullKey is the key of an object in the bucket, with the prefix.
func (b *S3Backend) FullKey(key string) string { return joinKey(b.cfg.Prefix, key) }

func (b *S3Backend) String() string {
	return "s3://" + strings.TrimSuffix(b.cfg.Bucket+"/"+strings.Trim(b.cfg.Prefix, "/"), "/")
}

// Put uploads r as a multipart upload of fixed-size parts, two in flight, so
// memory stays bounded whatever the size. minio-go aborts the upload when r
// fails; the abort is repeated here with a fresh context, because a cancelled
// ctx also cancels minio-go's own abort request.
func (b *S3Backend) Put(ctx context.Context, key string, r io.Reader, metadata map[string]string) error {
	full := b.FullKey(key)
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, full, r, -1, minio.PutObjectOptions{
		PartSize:              uint64(b.cfg.PartSizeMiB) << 20,
		NumThreads:            uploadThreads,
		ConcurrentStreamParts: true,
		// No SigV4 payload signing, as minio-go already does over https:
		// over plain http it would hash every byte twice more (client and
		// server) for an integrity the per-part CRC32C checksum the server
		// checks and the sha256 of the manifest already give.
		DisableContentSha256: true,
		ContentType:          "application/octet-stream",
		UserMetadata:         metadata,
	})
	if err != nil {
		cleanup, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.client.RemoveIncompleteUpload(cleanup, b.cfg.Bucket, full)
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
		return nil, fmt.Errorf("reading %s/%s: %w", b, key, err)
	}
	return obj, nil
}

func (b *S3Backend) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	info, err := b.client.StatObject(ctx, b.cfg.Bucket, b.FullKey(key), minio.StatObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return ObjectInfo{}, fmt.Errorf("%s/%s: %w", b, key, ErrNotFound)
		}
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
			return nil, fmt.Errorf("listing %s/%s: %w", b, dir, obj.Err)
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
	err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.FullKey(key), minio.RemoveObjectOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deleting %s/%s: %w", b, key, err)
	}
	return nil
}

// CheckBucket checks that the bucket exists and the credentials may list it.
func (b *S3Backend) CheckBucket(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("checking bucket %s at %s: %w", b.cfg.Bucket, b.cfg.Endpoint, err)
	}
	if !ok {
		return fmt.Errorf("bucket %s does not exist at %s", b.cfg.Bucket, b.cfg.Endpoint)
	}
	return nil
}

func isNotFound(err error) bool {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.StatusCode == http.StatusNotFound || resp.Code == "NoSuchKey"
	}
	return false
}
