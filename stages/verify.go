package stages

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"filippo.io/age"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
	"github.com/backflow-dev/backflow/stages/storage"
)

// VerifyConfig is what a verify needs.
type VerifyConfig struct {
	Storage storage.Backend
	// Key of the object to verify.
	Key string
	// KeyPrefix, when set, is the namespace's prefix the key must lie
	// inside; a key outside is refused before anything is read.
	KeyPrefix string
	// Identities decrypt the object.
	Identities []age.Identity
	// ExpectChecksum, when set, is the sha256:<hex> the object must have:
	// the one its dump reported, or its Backup recorded. A manifest that
	// records another is refused before the object is read.
	ExpectChecksum string
	// ReadOnly checks without writing: the manifest is not marked verified,
	// so that read-only credentials (GetObject only) suffice.
	ReadOnly bool
	// RestoreTest, when set, restores the stream while verifying it.
	RestoreTest *RestoreTestConfig
	// SourceOptions resolve the scratch database's connection.
	SourceOptions source.Options
	ProgressFile  string
	Stderr        io.Writer
	Now           func() time.Time
}

// RestoreTestConfig restores into a scratch database and checks it, or,
// without one, lists a PostgreSQL custom or tar archive with pg_restore
// --list.
type RestoreTestConfig struct {
	// Target is the scratch database; nil for the structural check.
	Target *v1.RestoreTarget
	// CheckQuery must return a row after the restore (for MongoDB, match a
	// document; see v1alpha1.RestoreTest).
	CheckQuery string
}

// Verify reads the object back, decrypts and decompresses it, and compares
// sizes and checksums with its manifest; then it marks the manifest
// verified. With a restore test it also restores the stream.
func Verify(ctx context.Context, cfg VerifyConfig) (*Manifest, error) {
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := ConfineKey(cfg.KeyPrefix, cfg.Key); err != nil {
		return nil, fmt.Errorf("verify refused: the key %w", err)
	}
	m, err := readPinnedManifest(ctx, cfg.Storage, cfg.Key, cfg.ExpectChecksum)
	if err != nil {
		return nil, fmt.Errorf("verify of %s refused: %w", cfg.Key, err)
	}
	obj, err := cfg.Storage.Get(ctx, cfg.Key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	progress := StartProgress(cfg.ProgressFile, m.Size)
	defer progress.Finish(false)

	plain := io.Writer(io.Discard)
	var consumer *source.Consumer
	if cfg.RestoreTest != nil {
		consumer, err = startRestoreTest(ctx, cfg, m)
		if err != nil {
			return nil, err
		}
		plain = consumer.Input
	}
	hold := newHoldBack(plain, holdBackSize)
	if err := readBack(progress.Reader(obj), m, cfg.Identities, hold); err != nil {
		if consumer != nil {
			consumer.Abort()
		}
		return nil, fmt.Errorf("verify of %s failed: %w", cfg.Key, err)
	}
	if consumer != nil {
		if err := finishRestore(consumer, hold); err != nil {
			return nil, fmt.Errorf("restore test of %s failed: %w", cfg.Key, err)
		}
	}
	if cfg.ReadOnly {
		return m, nil
	}
	now := cfg.Now().UTC()
	m.VerifiedAt = &now
	if err := WriteManifest(ctx, cfg.Storage, m); err != nil {
		return nil, fmt.Errorf("marking %s verified: %w", cfg.Key, err)
	}
	return m, nil
}

// holdBackSize is the tail of the plain stream held back from a restore
// target until the checksums matched.
const holdBackSize = 64 << 10

func startRestoreTest(ctx context.Context, cfg VerifyConfig, m *Manifest) (*source.Consumer, error) {
	return source.StartRestoreTest(ctx, cfg.RestoreTest.Target, m.Format, cfg.RestoreTest.CheckQuery, cfg.SourceOptions, cfg.Stderr)
}

// finishRestore releases the held-back tail to a target and waits for it.
func finishRestore(c *source.Consumer, hold *holdBack) error {
	err := hold.Release()
	if cerr := c.Input.Close(); err == nil {
		err = cerr
	}
	if werr := c.Wait(); werr != nil {
		return werr
	}
	return err
}
