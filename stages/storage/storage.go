// Package storage is where backups are kept: S3-compatible object stores and,
// for laptops and tests, a local directory, behind one small interface.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// ErrNotFound says that an object does not exist.
var ErrNotFound = errors.New("object not found")

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	// Key relative to the storage's prefix.
	Key          string
	Size         int64
	LastModified time.Time
	// Metadata is the user metadata Put stored with the object, with keys
	// in lower case; only Stat fills it, and only a backend that keeps
	// metadata (S3; the file backend keeps none).
	Metadata map[string]string
}

// Backend stores objects under keys relative to its prefix.
type Backend interface {
	// Put streams r into the object key. The object exists only when Put
	// returns nil: a reader that fails, or a cancelled ctx, leaves neither an
	// object nor an unfinished upload behind.
	Put(ctx context.Context, key string, r io.Reader, metadata map[string]string) error
	// Create is Put for an object that must not exist yet: when key exists,
	// or another writer creates it first, Create fails with ErrExists and
	// stores nothing; it never replaces an object.
	Create(ctx context.Context, key string, r io.Reader, metadata map[string]string) error
	// Get opens the object for reading; ErrNotFound when it does not exist.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object; ErrNotFound when it does not exist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List lists every object below dir (a key prefix ending in '/', or ""
	// for the top), those in its subdirectories too, sorted by key.
	List(ctx context.Context, dir string) ([]ObjectInfo, error)
	// Delete deletes the object. Deleting an object that does not exist is
	// not an error.
	Delete(ctx context.Context, key string) error
	// String names the storage for messages, without credentials.
	String() string
}

// Credentials of an S3-compatible store.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// The standard AWS variables the steps read their credentials from.
const (
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken    = "AWS_SESSION_TOKEN"
)

// CredentialsFromEnv reads the standard AWS variables.
func CredentialsFromEnv(getenv func(string) string) Credentials {
	return Credentials{
		AccessKeyID:     getenv(EnvAccessKeyID),
		SecretAccessKey: getenv(EnvSecretAccessKey),
		SessionToken:    getenv(EnvSessionToken),
	}
}

// Open opens the storage a URL names:
//
//	file:///var/backups
//	s3://bucket/prefix?endpoint=https://s3.example.com&region=eu-west-1&pathStyle=true&insecureSkipVerify=false&caFile=/etc/ca.pem&partSizeMiB=16
func Open(rawURL string, creds Credentials) (Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("storage URL %q: a file URL names a local path: file:///dir", rawURL)
		}
		return NewFileBackend(u.Path)
	case "s3":
		cfg, err := s3ConfigFromURL(u)
		if err != nil {
			return nil, err
		}
		cfg.Credentials = creds
		return NewS3Backend(cfg)
	default:
		return nil, fmt.Errorf("storage URL %q: scheme must be s3 or file", rawURL)
	}
}

// JoinKey joins a prefix and a key with exactly one slash between them.
func JoinKey(prefix, key string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return key
	}
	return prefix + "/" + key
}
