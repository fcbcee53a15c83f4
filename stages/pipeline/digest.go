package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// Digest counts and hashes what is written to it. Put it beside a stream with
// io.TeeReader or io.MultiWriter.
type Digest struct {
	h hash.Hash
	n int64
}

// NewDigest returns an empty sha256 Digest.
func NewDigest() *Digest { return &Digest{h: sha256.New()} }

func (d *Digest) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

// Size is the number of bytes written.
func (d *Digest) Size() int64 { return d.n }

// Checksum is the sha256 of the bytes written, as sha256:<hex>.
func (d *Digest) Checksum() string { return ChecksumPrefix + hex.EncodeToString(d.h.Sum(nil)) }

// ChecksumPrefix starts every checksum backflow records.
const ChecksumPrefix = "sha256:"
