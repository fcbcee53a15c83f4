package stages

import (
	"context"
	"fmt"
	"io"
	"os"

	"filippo.io/age"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/stages/source"
	"github.com/backflow-dev/backflow/stages/storage"
)

// RestoreConfig is what a restore needs.
type RestoreConfig struct {
	Storage storage.Backend
	// Key of the object to restore.
	Key string
	// KeyPrefix, when set, is the namespace's prefix the key must lie
	// inside; a key outside is refused before anything is read.
	KeyPrefix  string
	Identities []age.Identity
	// Target to restore into.
	Target v1.RestoreTarget
	// VerifyFirst reads the object once to check its checksum before the
	// target sees a byte of it.
	VerifyFirst bool
	// ExpectChecksum, when set, is the sha256:<hex> the Backup recorded for
	// the object. A manifest that records another is refused before
	// anything is read, and so, through the manifest's checksum, is an
	// object that differs.
	ExpectChecksum string
	SourceOptions  source.Options
	ProgressFile   string
	Stdout         io.Writer
	Stderr         io.Writer
}

// Restore streams an object back, decrypts and decompresses it, and feeds it
// to the target while checking its checksums. With VerifyFirst the target
// never sees a byte of an object whose stored checksum does not match. In
// any case the last 64 KiB are held back until the checksums matched, so the
// target never sees the end of a bad stream, and psql and pg_restore, which
// run in a single transaction, roll back; other targets may keep what they
// read before the failure, and the restore fails loudly.
func Restore(ctx context.Context, cfg RestoreConfig) (*Manifest, error) {
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Stdout == nil {
		// What a restore command prints is diagnostics, not data.
		cfg.Stdout = cfg.Stderr
	}
	if err := ConfineKey(cfg.KeyPrefix, cfg.Key); err != nil {
		return nil, fmt.Errorf("restore refused before it started: the key %w", err)
	}
	m, err := readPinnedManifest(ctx, cfg.Storage, cfg.Key, cfg.ExpectChecksum)
	if err != nil {
		return nil, fmt.Errorf("restore of %s refused before it started: %w", cfg.Key, err)
	}
	if m.Encryption == EncryptionAge && len(cfg.Identities) == 0 {
		return nil, ErrIdentityRequired
	}
	if cfg.VerifyFirst {
		if err := checkStoredObject(ctx, cfg.Storage, cfg.Key, m); err != nil {
			return nil, fmt.Errorf("restore of %s refused before it started: %w", cfg.Key, err)
		}
	}
	obj, err := cfg.Storage.Get(ctx, cfg.Key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	consumer, err := source.StartRestore(ctx, cfg.Target, m.Format, cfg.SourceOptions, cfg.Stdout, cfg.Stderr)
	if err != nil {
		return nil, err
	}
	progress := StartProgress(cfg.ProgressFile, m.Size)
	defer progress.Finish(false)
	hold := newHoldBack(consumer.Input, holdBackSize)
	if err := readBack(progress.Reader(obj), m, cfg.Identities, hold); err != nil {
		consumer.Abort()
		_ = consumer.Wait()
		return nil, fmt.Errorf("restore of %s failed, the target did not receive the end of the stream: %w", cfg.Key, err)
	}
	if err := finishRestore(consumer, hold); err != nil {
		return nil, fmt.Errorf("restore of %s failed: %w", cfg.Key, err)
	}
	return m, nil
}

// checkStoredObject reads the object key and compares its sha256 with the
// manifest's, without decrypting it.
func checkStoredObject(ctx context.Context, b storage.Backend, key string, m *Manifest) error {
	obj, err := b.Get(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	stored := pipeline.NewDigest()
	if _, err := io.Copy(stored, obj); err != nil {
		return fmt.Errorf("reading the object: %w", err)
	}
	return checkStored(m, stored)
}
