package servers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Client is a minio-go client for the server, for tests that inspect the
// bucket directly.
func (m *MinIO) Client() *minio.Client {
	u, _ := url.Parse(m.Endpoint)
	c, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), BucketLookup: minio.BucketLookupPath,
		Secure: u.Scheme == "https", Transport: m.httpClient().Transport,
	})
	if err != nil {
		panic(err)
	}
	return c
}

// httpClient trusts the server's CA when it serves https.
func (m *MinIO) httpClient() *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if len(m.CAPEM) > 0 {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(m.CAPEM)
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: transport}
}

// writeServerCertificate makes a CA and a certificate for host signed by it,
// writes the certificate and key as MinIO's certs directory expects them, and
// returns the CA certificate as PEM.
func writeServerCertificate(dir, host string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backflow test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(host)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for name, block := range map[string]*pem.Block{
		"public.crt":  {Type: "CERTIFICATE", Bytes: leafDER},
		"private.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, err
		}
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
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

// ReadOnlyCredentials are temporary credentials of the server's user that
// may only read objects of the bucket (s3:GetObject: no ListBucket, no
// PutObject, no DeleteObject), as a restore-only Secret would hold. They come
// from MinIO's STS AssumeRole with a session policy, which MinIO enforces on
// every request made with them.
func (m *MinIO) ReadOnlyCredentials() (accessKey, secretKey, sessionToken string, err error) {
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + m.Bucket + `/*"]}]}`
	sts, err := credentials.NewSTSAssumeRole(m.Endpoint, credentials.STSAssumeRoleOptions{
		AccessKey: m.AccessKey, SecretKey: m.SecretKey, Policy: policy, DurationSeconds: 3600,
	})
	if err != nil {
		return "", "", "", err
	}
	v, err := sts.GetWithContext(&credentials.CredContext{Client: m.httpClient()})
	if err != nil {
		return "", "", "", fmt.Errorf("assuming a read-only role on MinIO: %w", err)
	}
	return v.AccessKeyID, v.SecretAccessKey, v.SessionToken, nil
}
