package storage

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// defaultSTSTimeout bounds an AssumeRole request whose context has no
// deadline.
const defaultSTSTimeout = 30 * time.Second

// AssumeRole asks the store's STS, at its endpoint, for temporary
// credentials that policy (an IAM policy document) restricts for duration,
// signing the request with cfg's credentials and trusting the endpoint as
// the backend does (cfg's CA bundle or InsecureSkipVerify). MinIO serves
// AssumeRole at the S3 endpoint and enforces the session policy on every
// request made with the credentials. It returns the credentials and when
// they expire.
func AssumeRole(ctx context.Context, cfg S3Config, policy string, duration time.Duration) (Credentials, time.Time, error) {
	ep, err := cfg.endpoint()
	if err != nil {
		return Credentials{}, time.Time{}, err
	}
	tlsConfig, err := cfg.tlsConfig(ep)
	if err != nil {
		return Credentials{}, time.Time{}, err
	}
	transport, err := cfg.transport(ep, tlsConfig)
	if err != nil {
		return Credentials{}, time.Time{}, err
	}
	sts, err := credentials.NewSTSAssumeRole(cfg.Endpoint, credentials.STSAssumeRoleOptions{
		AccessKey: cfg.Credentials.AccessKeyID, SecretKey: cfg.Credentials.SecretAccessKey, SessionToken: cfg.Credentials.SessionToken,
		Policy: policy, Location: cfg.Region, DurationSeconds: int(duration / time.Second),
	})
	if err != nil {
		return Credentials{}, time.Time{}, err
	}
	// minio-go's STS client takes no context: its deadline bounds the
	// request instead.
	timeout := defaultSTSTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	v, err := sts.GetWithContext(&credentials.CredContext{Client: &http.Client{Transport: transport, Timeout: timeout}})
	if err != nil {
		return Credentials{}, time.Time{}, fmt.Errorf("AssumeRole at %s: %w", cfg.Endpoint, err)
	}
	return Credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.SessionToken}, v.Expiration, nil
}
