package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"filippo.io/age"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/stages/source"
	_ "github.com/backflow-dev/backflow/stages/source/engines"
	"github.com/backflow-dev/backflow/stages/storage"
)

// DumpConfig is what a dump needs.
type DumpConfig struct {
	// Source is what to dump, as in the Backup spec.
	Source v1.BackupSource
	// SourceOptions resolve the source's connection and volume.
	SourceOptions source.Options
	// Storage receives the object and its manifest.
	Storage storage.Backend
	// PathTemplate renders the object key.
	PathTemplate string
	// KeyPrefix, when set, is the namespace's prefix the key must lie
	// inside (pathtemplate.Confine): a key outside is refused before the
	// source starts or anything is written.
	KeyPrefix string
	// Namespace, Name and Series of the Backup, for the path template and the
	// manifest.
	Namespace, Name, Series string
	// StorageID names the BackupStorage (<namespace>/<name>) in the manifest
	// and the object's metadata; empty outside a cluster.
	StorageID string
	// Compression and its level (0 for the default).
	Compression pipeline.Algorithm
	Level       int
	// Recipients to encrypt to; none stores the stream unencrypted.
	Recipients []age.Recipient
	// RecipientNames are the recipients' public keys, for fingerprints.
	RecipientNames []string
	// ProgressFile receives Argo progress; empty for none.
	ProgressFile string
	// ExpectedSize is the raw size the dump expects, for progress: the
	// series' previous verified backup's; 0 asks the source for an
	// estimate (see expectedSize).
	ExpectedSize int64
	// Version of backflow, recorded in the manifest.
	Version string
	// Stderr receives the source's diagnostics. Defaults to os.Stderr.
	Stderr io.Writer
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// ErrEmptyDump says the source wrote nothing.
var ErrEmptyDump = errors.New("the source wrote no data; set source.allowEmpty if an empty backup is expected")

// Dump streams the source's output through compression, encryption and
// checksums (BLAKE3 of the plain stream, sha256 of the stored bytes) into
// the storage, then writes the manifest. Nothing is staged on
// disk. When anything fails, no object and no manifest are left behind.
func Dump(ctx context.Context, cfg DumpConfig) (*Manifest, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	algo, level, err := pipeline.ParseAlgorithm(string(cfg.Compression), cfg.Level)
	if err != nil {
		return nil, err
	}
	engine, err := source.ForSource(cfg.Source)
	if err != nil {
		return nil, err
	}
	kind, format := engine.Name(), engine.Format(cfg.Source)
	cfg.SourceOptions.Version = cfg.Version
	m := &Manifest{
		Compression: algo, CompressionLevel: level, Encryption: EncryptionNone,
		Source: kind, Format: format.Name,
		Namespace: cfg.Namespace, Name: cfg.Name, Series: cfg.Series, Storage: cfg.StorageID,
		StartedAt: cfg.Now().UTC().Truncate(time.Second), BackflowVersion: cfg.Version,
	}
	ext := format.Extension + algo.Extension()
	if len(cfg.Recipients) > 0 {
		m.Encryption = EncryptionAge
		ext += ".age"
		for _, r := range cfg.RecipientNames {
			m.Recipients = append(m.Recipients, pipeline.Fingerprint(r))
		}
	}
	m.Key, err = pathtemplate.Render(cfg.PathTemplate, pathtemplate.Data{
		Namespace: cfg.Namespace, Name: cfg.Name, Series: cfg.Series, Source: kind,
		Database: engine.DatabaseName(cfg.Source, cfg.SourceOptions), Timestamp: m.StartedAt, Extension: ext,
	})
	if err != nil {
		return nil, err
	}
	if err := ConfineKey(cfg.KeyPrefix, m.Key); err != nil {
		return nil, fmt.Errorf("dump refused, nothing was stored: the path template's key %w", err)
	}
	// A fast path: the upload's completion is conditional anyway, for the
	// dump that renders the same key at the same time.
	if _, err := cfg.Storage.Stat(ctx, m.Key); err == nil {
		return nil, errKeyExists(cfg.Storage, m.Key)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}

	progress := StartProgress(cfg.ProgressFile, expectedSize(ctx, engine, cfg))
	producer, err := engine.StartDump(ctx, cfg.Source, cfg.SourceOptions, cfg.Stderr)
	if err != nil {
		progress.Finish(false)
		return nil, err
	}
	defer producer.Stop()

	raw, stored := pipeline.NewRawDigest(), pipeline.NewDigest()
	pr, pw := io.Pipe()
	sink := &uploadSink{w: pw}
	encodeErr := make(chan error, 1)
	go func() {
		err := encode(io.MultiWriter(sink, stored), progress.Reader(io.TeeReader(producer, raw)), algo, level, cfg.Recipients)
		if err == nil && raw.Size() == 0 && !cfg.Source.AllowEmpty {
			err = ErrEmptyDump
		}
		// Closing with an error makes the upload fail and abort, so a failed
		// dump never completes an object.
		pw.CloseWithError(err)
		encodeErr <- err
	}()
	putErr := cfg.Storage.Create(ctx, m.Key, pr, map[string]string{
		"backflow-source": kind, "backflow-format": format.Name,
		"backflow-compression": string(algo), "backflow-encryption": m.Encryption,
		MetadataNamespace: cfg.Namespace, MetadataSeries: cfg.Series, MetadataStorage: cfg.StorageID,
	})
	pr.CloseWithError(errUploadEnded) // unblocks the encoder if the upload stopped early
	encErr := <-encodeErr
	switch {
	case encErr != nil && (!sink.uploadEnded() || putErr == nil):
		// The source or the encoder failed; the upload failed of it.
		progress.Finish(false)
		cleanupObject(cfg.Storage, m.Key, putErr == nil)
		return nil, fmt.Errorf("dump failed, nothing was stored: %w", encErr)
	case errors.Is(putErr, storage.ErrExists):
		// Another dump completed the key first: its object stays.
		progress.Finish(false)
		return nil, fmt.Errorf("dump failed, nothing was stored: %w", errKeyExists(cfg.Storage, m.Key))
	case putErr != nil:
		progress.Finish(false)
		return nil, fmt.Errorf("dump failed, nothing was stored: %w", putErr)
	}
	progress.Finish(true)

	m.FinishedAt = cfg.Now().UTC()
	m.Size, m.Checksum = stored.Size(), stored.Checksum()
	m.RawSize, m.RawChecksum = raw.Size(), raw.Checksum()
	if err := WriteManifest(ctx, cfg.Storage, m); err != nil {
		cleanupObject(cfg.Storage, m.Key, true)
		return nil, fmt.Errorf("writing the manifest failed, the object was removed: %w", err)
	}
	return m, nil
}

var errUploadEnded = errors.New("the upload ended")

// errKeyExists is the refusal to overwrite key, found before the upload or
// by its conditional completion.
func errKeyExists(b storage.Backend, key string) error {
	return fmt.Errorf("%s/%s already exists; refusing to overwrite a backup (make the path template unique per run, e.g. with .Timestamp): %w", b, key, storage.ErrExists)
}

// uploadSink is the encoder's end of the upload's pipe. It records whether a
// write failed because the upload had ended, so that a dump that failed
// reports the upload's error rather than the pipe's.
type uploadSink struct {
	w     io.Writer
	ended atomic.Bool
}

func (s *uploadSink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if errors.Is(err, errUploadEnded) {
		s.ended.Store(true)
	}
	return n, err
}

func (s *uploadSink) uploadEnded() bool { return s.ended.Load() }

// encode compresses and encrypts src into dst.
func encode(dst io.Writer, src io.Reader, algo pipeline.Algorithm, level int, recipients []age.Recipient) error {
	enc, err := pipeline.NewEncryptor(dst, recipients)
	if err != nil {
		return err
	}
	comp, err := pipeline.NewCompressor(enc, algo, level)
	if err != nil {
		return err
	}
	if _, err := io.Copy(comp, src); err != nil {
		_ = comp.Close()
		return err
	}
	if err := comp.Close(); err != nil {
		return err
	}
	return enc.Close()
}

// cleanupObject removes an object that must not exist, with a context of its
// own: the step's may already be cancelled.
func cleanupObject(b storage.Backend, key string, exists bool) {
	if !exists {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.Delete(ctx, key)
}
