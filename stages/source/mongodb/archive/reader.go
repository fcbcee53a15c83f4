package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Event is one step through an archive's body: a document of a namespace, or that namespace's end.
type Event struct {
	Database   string
	Collection string
	// Document is the next document of the namespace, nil when End is set. It aliases the Reader's
	// buffer and is valid only until the next call to Next; copy it to keep it.
	Document bson.Raw
	// End reports the namespace's EOF: all its documents were returned and their checksum matched. Until
	// then a namespace's documents are unverified.
	End bool
}

// readerNamespace is what the Reader remembers of a namespace it has met in the body.
type readerNamespace struct {
	key   namespaceKey
	crc   uint64
	ended bool
}

// Reader reads an archive. It is not safe for concurrent use. It buffers its input, so it may read past
// the archive's last byte.
type Reader struct {
	in      *bufio.Reader
	offset  int64 // bytes consumed, for error messages
	header  Header
	prelude []CollectionMetadata
	// buf holds the latest document; it grows to the largest document met and is reused, so memory stays
	// flat however long the archive.
	buf        []byte
	segment    *readerNamespace // the namespace whose segment is being read, nil between segments
	namespaces map[namespaceKey]*readerNamespace
	err        error // sticky: after an error the position in the stream is unknown
}

// NewReader reads and checks the magic number, the header and the prelude.
func NewReader(r io.Reader) (*Reader, error) {
	ar := &Reader{
		in:         bufio.NewReaderSize(r, 64*1024),
		namespaces: make(map[namespaceKey]*readerNamespace),
	}
	var magic [4]byte
	if err := ar.readFull(magic[:], "the magic number"); err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint32(magic[:]); got != MagicNumber {
		return nil, fmt.Errorf("archive: not a mongodump archive: magic number %#08x, want %#08x", got, MagicNumber)
	}

	word, err := ar.readWord("the archive header")
	if err != nil {
		return nil, err
	}
	if word == terminator {
		return nil, fmt.Errorf("archive: terminator at offset %d where the archive header belongs", ar.offset-4)
	}
	doc, err := ar.readDocument(word, "the archive header")
	if err != nil {
		return nil, err
	}
	if ar.header, err = unmarshalHeader(doc); err != nil {
		return nil, fmt.Errorf("archive: header: %w", err)
	}

	for {
		word, err := ar.readWord("the prelude")
		if err != nil {
			return nil, err
		}
		if word == terminator {
			break
		}
		doc, err := ar.readDocument(word, "the prelude")
		if err != nil {
			return nil, err
		}
		m, err := unmarshalCollectionMetadata(doc)
		if err != nil {
			return nil, fmt.Errorf("archive: prelude entry %d: %w", len(ar.prelude)+1, err)
		}
		ar.prelude = append(ar.prelude, m)
	}
	return ar, nil
}

// Header returns the archive header.
func (r *Reader) Header() Header { return r.header }

// Prelude returns the prelude entries in archive order. Namespaces of the prelude need not appear in the
// body, and the Reader does not insist that body namespaces be in the prelude; mongorestore insists on
// both.
func (r *Reader) Prelude() []CollectionMetadata { return slices.Clone(r.prelude) }

// Next returns the next event of the body, or io.EOF after the archive's last byte. The stream ending
// inside any structure, or before a namespace that had segments got its EOF, is an error (wrapping
// io.ErrUnexpectedEOF for a cut inside a structure), as is a checksum mismatch, which names the
// namespace. Errors are sticky.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	ev, err := r.next()
	if err != nil {
		r.err = err
	}
	return ev, err
}

func (r *Reader) next() (Event, error) {
	for {
		if ns := r.segment; ns != nil {
			where := "a segment of namespace " + ns.key.String()
			word, err := r.readWord(where)
			if err != nil {
				return Event{}, err
			}
			if word == terminator {
				r.segment = nil
				continue
			}
			doc, err := r.readDocument(word, where)
			if err != nil {
				return Event{}, err
			}
			ns.crc = crc64.Update(ns.crc, crcTable, doc)
			return Event{Database: ns.key.db, Collection: ns.key.collection, Document: doc}, nil
		}

		start := r.offset
		word, err := r.readWordOrEOF("a namespace header")
		if err == io.EOF {
			return Event{}, r.finish()
		}
		if err != nil {
			return Event{}, err
		}
		if word == terminator {
			return Event{}, fmt.Errorf("archive: terminator at offset %d where a namespace header belongs", start)
		}
		doc, err := r.readDocument(word, "a namespace header")
		if err != nil {
			return Event{}, err
		}
		h, err := unmarshalNamespaceHeader(doc)
		if err != nil {
			return Event{}, fmt.Errorf("archive: namespace header at offset %d: %w", start, err)
		}
		key := namespaceKey{h.Database, h.Collection}
		ns := r.namespaces[key]
		if ns != nil && ns.ended {
			return Event{}, fmt.Errorf("archive: namespace %s continues at offset %d after its EOF", key, start)
		}
		if ns == nil {
			// An EOF may come without any segment before it: mongorestore accepts that as an empty namespace.
			ns = &readerNamespace{key: key}
			r.namespaces[key] = ns
		}
		if !h.EOF {
			r.segment = ns
			continue
		}

		where := "the EOF of namespace " + key.String()
		word, err = r.readWord(where)
		if err != nil {
			return Event{}, err
		}
		if word != terminator {
			return Event{}, fmt.Errorf("archive: %s at offset %d is followed by data instead of a terminator", where, start)
		}
		if ns.crc != h.CRC {
			return Event{}, fmt.Errorf("archive: CRC mismatch in namespace %s: its EOF says %#016x, its documents hash to %#016x", key, h.CRC, ns.crc)
		}
		ns.ended = true
		return Event{Database: key.db, Collection: key.collection, End: true}, nil
	}
}

// finish decides whether the stream may end here: only if every namespace that had a segment got its EOF.
func (r *Reader) finish() error {
	unfinished := make(map[namespaceKey]bool)
	for key, ns := range r.namespaces {
		if !ns.ended {
			unfinished[key] = true
		}
	}
	if len(unfinished) > 0 {
		return fmt.Errorf("archive: stream ended at offset %d before the EOF of namespaces %v: %w", r.offset, sortedNames(unfinished), io.ErrUnexpectedEOF)
	}
	return io.EOF
}

// readWord reads a BSON length or a terminator inside a structure, where the stream may not end.
func (r *Reader) readWord(where string) (uint32, error) {
	word, err := r.readWordOrEOF(where)
	if err == io.EOF {
		return 0, fmt.Errorf("archive: stream ended at offset %d inside %s: %w", r.offset, where, io.ErrUnexpectedEOF)
	}
	return word, err
}

// readWordOrEOF returns a bare io.EOF if the stream ends cleanly before the word.
func (r *Reader) readWordOrEOF(where string) (uint32, error) {
	var b [4]byte
	n, err := io.ReadFull(r.in, b[:])
	r.offset += int64(n)
	switch {
	case err == io.EOF:
		return 0, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return 0, fmt.Errorf("archive: stream ended at offset %d inside a length word of %s: %w", r.offset, where, io.ErrUnexpectedEOF)
	case err != nil:
		return 0, fmt.Errorf("archive: reading %s at offset %d: %w", where, r.offset, err)
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// readDocument reads the rest of a document whose length word was just read, into r.buf.
func (r *Reader) readDocument(size uint32, where string) ([]byte, error) {
	start := r.offset - 4
	if size < minDocumentSize || size > MaxDocumentSize {
		return nil, fmt.Errorf("archive: %d at offset %d in %s is neither a terminator nor a BSON length (%d to %d)", size, start, where, minDocumentSize, MaxDocumentSize)
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	doc := r.buf[:size]
	binary.LittleEndian.PutUint32(doc, size)
	if err := r.readFull(doc[4:], where); err != nil {
		return nil, err
	}
	if doc[size-1] != 0 {
		return nil, fmt.Errorf("archive: document at offset %d in %s does not end with a NUL byte", start, where)
	}
	return doc, nil
}

func (r *Reader) readFull(p []byte, where string) error {
	n, err := io.ReadFull(r.in, p)
	r.offset += int64(n)
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("archive: stream ended at offset %d inside %s: %w", r.offset, where, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return fmt.Errorf("archive: reading %s at offset %d: %w", where, r.offset, err)
	}
	return nil
}
