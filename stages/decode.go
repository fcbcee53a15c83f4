package stages

import (
	"errors"
	"fmt"
	"io"

	"filippo.io/age"

	"github.com/backflow-dev/backflow/stages/pipeline"
)

// readBack streams a stored object through sha256, decryption and
// decompression into plain, checking both checksums against the manifest.
// stored counts the object's bytes and raw the plain stream's, with the
// algorithm the manifest's raw checksum names (sha256 in older manifests).
func readBack(obj io.Reader, m *Manifest, identities []age.Identity, plain io.Writer) error {
	raw, err := pipeline.DigestFor(m.RawChecksum)
	if err != nil {
		return fmt.Errorf("%w: the raw checksum: %w", ErrInvalidManifest, err)
	}
	stored := pipeline.NewDigest()
	tee := io.TeeReader(obj, stored)
	hashing := pipeline.NewHashingWriter(plain, raw)
	decodeErr := decode(tee, m, identities, hashing)
	_ = hashing.Close()
	if decodeErr != nil {
		// Read the rest, so that a corrupted object is reported as such
		// rather than as the decryption error it causes.
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return fmt.Errorf("reading the object: %w", err)
		}
		if err := checkStored(m, stored); err != nil {
			return err
		}
		return decodeErr
	}
	if err := checkStored(m, stored); err != nil {
		return err
	}
	if raw.Size() != m.RawSize || raw.Checksum() != m.RawChecksum {
		return fmt.Errorf("%w: the decoded stream is %d bytes with %s, the manifest says %d bytes with %s",
			ErrChecksumMismatch, raw.Size(), raw.Checksum(), m.RawSize, m.RawChecksum)
	}
	return nil
}

// ErrChecksumMismatch says that stored or decoded bytes differ from what the
// dump recorded.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// ErrIdentityRequired says that an encrypted backup was read without an
// identity.
var ErrIdentityRequired = errors.New("the backup is encrypted with age: an identity is needed to read it")

func checkStored(m *Manifest, stored *pipeline.Digest) error {
	if stored.Size() != m.Size || stored.Checksum() != m.Checksum {
		return fmt.Errorf("%w: the object %s is corrupted: its stored bytes are %d with %s, the manifest says %d with %s",
			ErrChecksumMismatch, m.Key, stored.Size(), stored.Checksum(), m.Size, m.Checksum)
	}
	return nil
}

// decode decrypts and decompresses src into dst.
func decode(src io.Reader, m *Manifest, identities []age.Identity, dst io.Writer) error {
	if m.Encryption == EncryptionAge {
		if len(identities) == 0 {
			return ErrIdentityRequired
		}
		d, err := pipeline.NewDecryptor(src, identities)
		if err != nil {
			return err
		}
		src = d
	} else if m.Encryption != EncryptionNone {
		return fmt.Errorf("unknown encryption %q in the manifest", m.Encryption)
	}
	dec, err := pipeline.NewDecompressor(src, m.Compression)
	if err != nil {
		return fmt.Errorf("decompressing: %w", err)
	}
	defer dec.Close()
	if _, err := io.Copy(dst, dec); err != nil {
		return fmt.Errorf("decoding the object: %w", err)
	}
	return nil
}

// holdBack writes through to w all but the last n bytes written to it, and
// those only on Release. A restore target therefore never sees the end of a
// stream before its checksums were checked: a transactional target (psql and
// pg_restore with --single-transaction) rolls back when the stream is cut.
type holdBack struct {
	w   io.Writer
	n   int
	buf []byte
}

func newHoldBack(w io.Writer, n int) *holdBack {
	return &holdBack{w: w, n: n, buf: make([]byte, 0, 2*n)}
}

func (h *holdBack) Write(p []byte) (int, error) {
	written := len(p)
	if len(h.buf)+len(p) > cap(h.buf) && len(p) > h.n {
		// A large write (the decoder's frames are megabytes) goes through
		// without a copy: what was held, then all of p but its tail, which
		// is held instead.
		if len(h.buf) > 0 {
			if _, err := h.w.Write(h.buf); err != nil {
				return 0, err
			}
		}
		if _, err := h.w.Write(p[:len(p)-h.n]); err != nil {
			return 0, err
		}
		h.buf = append(h.buf[:0], p[len(p)-h.n:]...)
		return written, nil
	}
	for len(p) > 0 {
		room := cap(h.buf) - len(h.buf)
		chunk := min(room, len(p))
		h.buf = append(h.buf, p[:chunk]...)
		p = p[chunk:]
		if len(h.buf) == cap(h.buf) {
			if _, err := h.w.Write(h.buf[:len(h.buf)-h.n]); err != nil {
				return 0, err
			}
			h.buf = h.buf[:copy(h.buf, h.buf[len(h.buf)-h.n:])]
		}
	}
	return written, nil
}

// Release writes the held-back tail.
func (h *holdBack) Release() error {
	_, err := h.w.Write(h.buf)
	h.buf = h.buf[:0]
	return err
}
