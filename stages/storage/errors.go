package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
)

// ErrExists says that an object exists already and was not replaced.
var ErrExists = errors.New("object already exists")

// ErrNoCredentials says that an S3 store was opened without an access key
// ID or a secret access key.
var ErrNoCredentials = errors.New("S3 credentials missing")

// ErrTransient marks a storage failure that a later attempt may not meet:
// the store unreachable or failing (a refused, dropped or stalled connection,
// 5xx, throttling). Everything else the store answers (credentials refused,
// access denied, no such bucket, an unknown host, a certificate that does not
// verify) is permanent: no retry changes it.
var ErrTransient = errors.New("transient storage failure")

// IsTransient says whether err, as returned by a Backend (through any
// wrapping), is worth retrying: the one classification the steps' exit codes
// are made from.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// ErrAccessDenied says that the storage answered and refused the request, as
// it does to credentials that may read objects but not list the bucket.
var ErrAccessDenied = errors.New("access denied by the storage")

// accessDeniedError marks err as ErrAccessDenied, naming it in the message.
type accessDeniedError struct{ err error }

func (e accessDeniedError) Error() string { return ErrAccessDenied.Error() + ": " + e.err.Error() }
func (e accessDeniedError) Unwrap() []error {
	return []error{e.err, ErrAccessDenied}
}

// transientError marks err as ErrTransient without changing its message.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() []error {
	return []error{e.err, ErrTransient}
}

// classify marks what S3 or the network answered as transient, or names the
// permanent cause in its message; nil stays nil. It is applied to every error
// the S3 backend returns, so callers only ever ask IsTransient.
func classify(err error) error {
	if err == nil || IsTransient(err) || errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrAccessDenied) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err // the step was stopped: not the store's doing
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch {
		case resp.StatusCode == http.StatusPreconditionFailed || resp.Code == minio.PreconditionFailed:
			return fmt.Errorf("%w (%s)", ErrExists, resp.Message)
		case resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch":
			return fmt.Errorf("the storage refused the credentials (%s, %s): %w", EnvAccessKeyID, EnvSecretAccessKey, err)
		case resp.Code == minio.AccessDenied || resp.StatusCode == http.StatusForbidden:
			return accessDeniedError{err}
		case resp.Code == minio.NoSuchBucket:
			return fmt.Errorf("the bucket %s does not exist: %w", resp.BucketName, err)
		case transientStatus(resp.StatusCode) || transientCode(resp.Code):
			return transientError{err}
		}
		return err
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return fmt.Errorf("unknown host %s: %w", dnsErr.Name, err)
		}
		return transientError{err} // the resolver failed, not the name
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		record           tls.RecordHeaderError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &record) {
		return fmt.Errorf("the storage's TLS certificate does not verify: %w", err)
	}
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case errors.Is(err, errIdle), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.As(err, &netErr):
		return transientError{err}
	case errors.As(err, &urlErr) && errors.Is(err, io.EOF):
		return transientError{err} // the server closed the connection mid-request
	}
	return err
}

// transientStatus: the server is failing, overloaded or timed out.
func transientStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return status >= 500
}

func transientCode(code string) bool {
	switch code {
	case "RequestTimeout", "SlowDown", "SlowDownWrite", "SlowDownRead", "Throttling",
		"ThrottlingException", "RequestLimitExceeded", "RequestThrottled", "InternalError", "ServiceUnavailable",
		"XMinioServerNotInitialized", "XMinioReadQuorum", "XMinioWriteQuorum", "ExpiredToken", "ExpiredTokenException":
		return true
	}
	return false
}

// Attempts of one request: a blip (a connection reset, a 503) is retried
// within the step, an outage makes the step fail as transient after a few
// seconds, and Argo retries the step with its own backoff.
const (
	requestAttempts = 3
	retryWait       = 500 * time.Millisecond
	retryMaxWait    = 5 * time.Second
)

// retry runs op until it succeeds, fails permanently, has run attempts times
// (0: until ctx ends), waiting longer after each transient failure. op's
// errors are classified ones.
func retry(ctx context.Context, attempts int, op func(context.Context) error) error {
	wait := retryWait
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || !IsTransient(err) || (attempts > 0 && attempt >= attempts) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMaxWait)
	}
}

// retryCleanup runs a cleanup (an abort, a delete) with a context of its own,
// since the failed operation's may be cancelled, and keeps trying transient
// failures for timeout: after an outage, the store that comes back within it
// is left without the unfinished upload.
func retryCleanup(timeout time.Duration, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return retry(ctx, 0, op)
}
