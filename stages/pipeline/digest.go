package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/zeebo/blake3"
)

// The hash algorithms of the checksums backflow records, as each checksum
// names its own: <algorithm>:<hex>.
const (
	// SHA256 hashes the stored object, so that `sha256sum` of the object
	// downloaded by any tool matches what the Backup reports.
	SHA256 = "sha256"
	// BLAKE3 hashes the plain stream, every byte the source wrote: as
	// collision resistant as sha256 at twice its speed and more (the plain
	// stream is the largest the dump handles, and sha256 of it was the
	// largest share of the dump's CPU after compression). `b3sum` checks
	// it by hand.
	BLAKE3 = "blake3"
)

// Digest counts and hashes what is written to it. Put it beside a stream with
// io.TeeReader or io.MultiWriter.
type Digest struct {
	algorithm string
	h         hash.Hash
	n         int64
}

// NewDigest returns an empty sha256 Digest, the stored object's.
func NewDigest() *Digest { return &Digest{algorithm: SHA256, h: sha256.New()} }

// NewRawDigest returns an empty Digest of the algorithm a dump records the
// plain stream's checksum in.
func NewRawDigest() *Digest { return &Digest{algorithm: BLAKE3, h: blake3.New()} }

// DigestFor returns an empty Digest of the algorithm that checksum (as
// recorded in a manifest: <algorithm>:<hex>) names, so that a backup is
// checked with the algorithm it was made with: manifests written before the
// plain stream was hashed with BLAKE3 record sha256.
func DigestFor(checksum string) (*Digest, error) {
	algorithm, _, _ := strings.Cut(checksum, ":")
	switch algorithm {
	case SHA256:
		return NewDigest(), nil
	case BLAKE3:
		return NewRawDigest(), nil
	}
	return nil, fmt.Errorf("the checksum %q names no hash algorithm backflow knows (%s, %s)", abbreviate(checksum), SHA256, BLAKE3)
}

func (d *Digest) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

// Size is the number of bytes written.
func (d *Digest) Size() int64 { return d.n }

// Checksum is the hash of the bytes written, as <algorithm>:<hex>.
func (d *Digest) Checksum() string { return d.algorithm + ":" + hex.EncodeToString(d.h.Sum(nil)) }

// HashingWriter writes to a writer and to a Digest at once: each write is
// hashed on a goroutine of its own while the writer writes it, so that a
// restore's plain stream is hashed on one core while another feeds the
// target. Close stops the goroutine.
type HashingWriter struct {
	w      io.Writer
	d      *Digest
	work   chan []byte
	hashed chan struct{}
}

// NewHashingWriter returns a HashingWriter of w and d.
func NewHashingWriter(w io.Writer, d *Digest) *HashingWriter {
	h := &HashingWriter{w: w, d: d, work: make(chan []byte), hashed: make(chan struct{})}
	go func() {
		for p := range h.work {
			_, _ = h.d.Write(p)
			h.hashed <- struct{}{}
		}
	}()
	return h
}

func (h *HashingWriter) Write(p []byte) (int, error) {
	h.work <- p
	n, err := h.w.Write(p)
	<-h.hashed // p is the caller's again only once both are done with it
	return n, err
}

// Close stops the hashing goroutine; the Digest holds everything written.
func (h *HashingWriter) Close() error {
	close(h.work)
	return nil
}
