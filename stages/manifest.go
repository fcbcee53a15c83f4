package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/stages/storage"
)

// ManifestSuffix is appended to an object's key to name its manifest. An
// object is a backup only when its manifest exists: the manifest is written
// after the object is complete, and deleted before it.
const ManifestSuffix = ".backflow.json"

// manifestFormatVersion is bumped when the manifest changes incompatibly.
const manifestFormatVersion = 1

// Manifest records how a backup was made, so that verify, restore and rotate
// need nothing but the object's key.
type Manifest struct {
	FormatVersion int `json:"formatVersion"`
	// Key of the object, relative to the storage prefix.
	Key string `json:"key"`
	// Size and Checksum (sha256:<hex>) of the stored bytes.
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"`
	// RawSize and RawChecksum of the stream the source wrote; RawChecksum
	// names its algorithm: blake3:<hex>, or sha256:<hex> in manifests of
	// backflow before BLAKE3, which verify and restore still check.
	RawSize     int64  `json:"rawSize"`
	RawChecksum string `json:"rawChecksum"`
	// Compression applied to the stream, and its level.
	Compression      pipeline.Algorithm `json:"compression"`
	CompressionLevel int                `json:"compressionLevel,omitempty"`
	// Encryption is "age" or "none".
	Encryption string `json:"encryption"`
	// Recipients are the fingerprints of the age recipients.
	Recipients []string `json:"recipients,omitempty"`
	// Source kind and the raw stream's format (see source.Runner.Format).
	Source string `json:"source"`
	Format string `json:"format"`
	// Resource the backup belongs to.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Series    string `json:"series,omitempty"`
	// Storage is the BackupStorage the backup was written to, as
	// <namespace>/<name>: with Namespace and Series it says which series
	// rotate may count and delete the backup in.
	Storage string `json:"storage,omitempty"`
	// StartedAt and FinishedAt bound the dump.
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// VerifiedAt is set by verify once the object was read back and matched.
	VerifiedAt *time.Time `json:"verifiedAt,omitempty"`
	// BackflowVersion that wrote the backup.
	BackflowVersion string `json:"backflowVersion"`
}

// EncryptionAge and EncryptionNone are the values of Manifest.Encryption.
const (
	EncryptionAge  = "age"
	EncryptionNone = "none"
)

// User metadata dump stores on every object, naming the series that wrote
// it: an object whose manifest is missing (a dump killed between its upload
// and its manifest) is proven to be this series' own by it, and only then may
// rotate delete it.
const (
	MetadataNamespace = "backflow-namespace"
	MetadataSeries    = "backflow-series"
	MetadataStorage   = "backflow-storage"
)

// IsManifestKey says whether a key names a manifest.
func IsManifestKey(key string) bool { return strings.HasSuffix(key, ManifestSuffix) }

// ErrInvalidManifest says that a manifest could be read but not understood.
var ErrInvalidManifest = errors.New("invalid manifest")

// ReadManifest reads the manifest of the object key.
func ReadManifest(ctx context.Context, b storage.Backend, key string) (*Manifest, error) {
	r, err := b.Get(ctx, key+ManifestSuffix)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%s/%s is not a backup: it has no manifest (%s): %w", b, key, ManifestSuffix, storage.ErrNotFound)
		}
		return nil, err
	}
	defer r.Close()
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w: %w", key, ErrInvalidManifest, err)
	}
	if m.FormatVersion > manifestFormatVersion {
		return nil, fmt.Errorf("the manifest of %s has format version %d; this backflow reads up to %d: %w", key, m.FormatVersion, manifestFormatVersion, ErrInvalidManifest)
	}
	return &m, nil
}

// readPinnedManifest reads the manifest of the object key, for a step that
// reads that object: the manifest describes the object beside it, whatever
// key it names (Key is set to key, so that nothing a manifest says sends a
// step to another object), and, when expect is set, it must record that
// checksum.
func readPinnedManifest(ctx context.Context, b storage.Backend, key, expect string) (*Manifest, error) {
	m, err := ReadManifest(ctx, b, key)
	if err != nil {
		return nil, err
	}
	m.Key = key
	if expect != "" && m.Checksum != expect {
		return nil, fmt.Errorf("%w: the manifest of %s records %s, but the backup recorded %s: the object or its manifest was replaced in the bucket since",
			ErrChecksumMismatch, key, m.Checksum, expect)
	}
	return m, nil
}

// WriteManifest writes (or replaces) the manifest of m.Key.
func WriteManifest(ctx context.Context, b storage.Backend, m *Manifest) error {
	m.FormatVersion = manifestFormatVersion
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return b.Put(ctx, m.Key+ManifestSuffix, bytes.NewReader(append(data, '\n')), map[string]string{"backflow-manifest": "true"})
}
