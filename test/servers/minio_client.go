package servers

import (
	"context"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Client is a minio-go client for the server, for tests that inspect the
// bucket directly.
func (m *MinIO) Client() *minio.Client {
	u, _ := url.Parse(m.Endpoint)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		panic(err)
	}
	return c
}

// MakeBucket creates a bucket.
func (m *MinIO) MakeBucket(ctx context.Context, name string) error {
	return m.Client().MakeBucket(ctx, name, minio.MakeBucketOptions{})
}

// StorageURL is the backflow storage URL of a prefix of the bucket.
func (m *MinIO) StorageURL(prefix string) string {
	q := url.Values{"endpoint": {m.Endpoint}, "pathStyle": {"true"}}
	return (&url.URL{Scheme: "s3", Host: m.Bucket, Path: "/" + prefix, RawQuery: q.Encode()}).String()
}
