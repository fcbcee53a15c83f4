package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"slices"
	"sync"
)

var terminatorBytes = binary.LittleEndian.AppendUint32(nil, terminator)

// segmentBuffers recycles segment buffers between namespaces, so that dumping thousands of small
// collections one after another does not allocate a segment buffer for each.
var segmentBuffers = sync.Pool{New: func() any { b := make([]byte, 0, SegmentSize); return &b }}

type namespaceKey struct{ db, collection string }

func (k namespaceKey) String() string { return namespaceString(k.db, k.collection) }

// preludeEntry tracks what the body has done for one prelude entry.
type preludeEntry struct {
	name   namespaceKey // as written in the prelude
	opened bool         // a NamespaceWriter was handed out for it
	ended  bool         // its EOF is written
}

// Writer writes an archive. Namespace and Close may be called from any goroutine, and several
// NamespaceWriters may be written at once, each from its own goroutine (mongodump's
// --numParallelCollections). Each NamespaceWriter buffers up to SegmentSize bytes of documents and writes
// them as one whole segment under the Writer's lock, so segments of different namespaces interleave but
// never mix, and memory stays below open namespaces × SegmentSize (plus the caller's document).
type Writer struct {
	mu     sync.Mutex
	out    io.Writer
	err    error // once a write fails the stream is corrupt, so every later call fails with it
	closed bool
	// entries holds the prelude in order; byName maps every body namespace the prelude allows (a
	// timeseries collection's buckets too) to its entry.
	entries []*preludeEntry
	byName  map[namespaceKey]*preludeEntry
	open    map[namespaceKey]bool
}

// NewWriter writes the magic number, the header and the prelude, which must announce every namespace
// the body will hold: mongorestore refuses data for a namespace it has not seen in the prelude. For
// `mongodump --oplog` compatibility include OplogCollectionMetadata() when writing the oplog. An empty
// h.Version is written as FormatVersion.
func NewWriter(w io.Writer, h Header, prelude []CollectionMetadata) (*Writer, error) {
	if h.Version == "" {
		h.Version = FormatVersion
	}
	aw := &Writer{
		out:    w,
		byName: make(map[namespaceKey]*preludeEntry, len(prelude)),
		open:   make(map[namespaceKey]bool),
	}
	for _, m := range prelude {
		if m.Collection == "" {
			return nil, fmt.Errorf("archive: prelude entry in database %q has no collection name", m.Database)
		}
		key := namespaceKey{m.Database, m.Collection}
		if _, dup := aw.byName[key]; dup {
			return nil, fmt.Errorf("archive: namespace %s appears twice in the prelude", key)
		}
		e := &preludeEntry{name: key}
		aw.entries = append(aw.entries, e)
		aw.byName[key] = e
	}
	// A timeseries collection's data goes under its buckets name on sources before 8.3; allow that name
	// unless the prelude claims it for itself.
	for i, m := range prelude {
		if m.Type == "timeseries" {
			buckets := namespaceKey{m.Database, TimeseriesBucketPrefix + m.Collection}
			if _, taken := aw.byName[buckets]; !taken {
				aw.byName[buckets] = aw.entries[i]
			}
		}
	}

	header, err := marshalHeader(h)
	if err != nil {
		return nil, fmt.Errorf("archive: encoding header: %w", err)
	}
	pieces := [][]byte{binary.LittleEndian.AppendUint32(nil, MagicNumber), header}
	for _, m := range prelude {
		doc, err := marshalCollectionMetadata(m)
		if err != nil {
			return nil, fmt.Errorf("archive: encoding prelude entry for %s: %w", namespaceString(m.Database, m.Collection), err)
		}
		if len(doc) > MaxRestorableDocumentSize {
			return nil, fmt.Errorf("archive: prelude entry for %s is %d bytes, more than mongorestore reads", namespaceString(m.Database, m.Collection), len(doc))
		}
		pieces = append(pieces, doc)
	}
	pieces = append(pieces, terminatorBytes)
	if err := aw.write(pieces...); err != nil {
		return nil, fmt.Errorf("archive: writing prelude: %w", err)
	}
	return aw, nil
}

// Namespace starts the body of one namespace of the prelude (or a timeseries collection's
// "system.buckets." namespace). Each namespace can be written once: mongorestore rejects a namespace that
// continues after its EOF.
func (w *Writer) Namespace(db, collection string) (*NamespaceWriter, error) {
	key := namespaceKey{db, collection}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	if w.closed {
		return nil, errors.New("archive: Namespace called on a closed Writer")
	}
	e, ok := w.byName[key]
	if !ok {
		return nil, fmt.Errorf("archive: namespace %s is not in the prelude", key)
	}
	if e.opened {
		return nil, fmt.Errorf("archive: namespace %s was already written", e.name)
	}
	e.opened = true
	w.open[key] = true
	return &NamespaceWriter{w: w, key: key, entry: e}, nil
}

// Close checks that the archive is complete: no namespace is still open and every prelude namespace got
// its EOF (mongorestore fails on an archive that ends before it has seen all of them). It writes nothing
// and does not close the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("archive: Writer closed twice")
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if len(w.open) > 0 {
		return fmt.Errorf("archive: closing with namespaces still open: %v", sortedNames(w.open))
	}
	var missing []string
	for _, e := range w.entries {
		if !e.ended {
			missing = append(missing, e.name.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("archive: prelude namespaces never written, mongorestore would reject the archive: %v", missing)
	}
	return nil
}

// write writes pieces in order; the caller holds w.mu unless no other goroutine can have the Writer yet.
func (w *Writer) write(pieces ...[]byte) error {
	if w.err != nil {
		return w.err
	}
	for _, p := range pieces {
		n, err := w.out.Write(p)
		if err == nil && n != len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.err = fmt.Errorf("archive: write failed, the stream is incomplete: %w", err)
			return w.err
		}
	}
	return nil
}

// writeSegment writes one segment of key holding docs (possibly none); the caller holds w.mu.
func (w *Writer) writeSegment(key namespaceKey, docs []byte) error {
	header, err := marshalNamespaceHeader(namespaceHeader{Database: key.db, Collection: key.collection})
	if err != nil {
		return fmt.Errorf("archive: encoding segment header of %s: %w", key, err)
	}
	return w.write(header, docs, terminatorBytes)
}

// NamespaceWriter writes the documents of one namespace. It is meant for one goroutine; different
// NamespaceWriters of a Writer may be used concurrently.
type NamespaceWriter struct {
	w     *Writer
	key   namespaceKey
	entry *preludeEntry
	buf   *[]byte // pending documents, at most SegmentSize bytes; from segmentBuffers
	crc   uint64  // over every document accepted so far
	// wroteSegment records whether a segment is out, because a namespace with no documents still gets
	// one (empty), as mongodump writes it.
	wroteSegment bool
	closed       bool
}

// WriteDocument adds one BSON document. The document is copied or written before WriteDocument
// returns, so doc may be reused. Its length prefix must match len(doc), and it may not exceed
// MaxRestorableDocumentSize.
func (n *NamespaceWriter) WriteDocument(doc []byte) error {
	if n.closed {
		return fmt.Errorf("archive: WriteDocument on closed namespace %s", n.key)
	}
	if err := checkDocument(doc, MaxRestorableDocumentSize); err != nil {
		return fmt.Errorf("archive: namespace %s: %w", n.key, err)
	}
	if n.buf != nil && len(*n.buf)+len(doc) > SegmentSize {
		if err := n.flush(); err != nil {
			return err
		}
	}
	if len(doc) > SegmentSize {
		// Writing it directly keeps the buffer at SegmentSize.
		if err := n.segment(doc); err != nil {
			return err
		}
	} else {
		if n.buf == nil {
			n.buf = segmentBuffers.Get().(*[]byte)
		}
		*n.buf = append(*n.buf, doc...)
	}
	n.crc = crc64.Update(n.crc, crcTable, doc)
	return nil
}

func (n *NamespaceWriter) flush() error {
	if err := n.segment(*n.buf); err != nil {
		return err
	}
	*n.buf = (*n.buf)[:0]
	return nil
}

func (n *NamespaceWriter) segment(docs []byte) error {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if n.w.closed {
		return fmt.Errorf("archive: namespace %s written after its Writer was closed", n.key)
	}
	n.wroteSegment = true
	return n.w.writeSegment(n.key, docs)
}

// Close writes the buffered documents and the namespace's EOF with its checksum.
func (n *NamespaceWriter) Close() error {
	if n.closed {
		return fmt.Errorf("archive: namespace %s closed twice", n.key)
	}
	n.closed = true
	defer n.releaseBuffer()

	eof, err := marshalNamespaceHeader(namespaceHeader{Database: n.key.db, Collection: n.key.collection, EOF: true, CRC: n.crc})
	if err != nil {
		return fmt.Errorf("archive: encoding EOF of %s: %w", n.key, err)
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("archive: namespace %s closed after its Writer was closed", n.key)
	}
	delete(w.open, n.key)
	if (n.buf != nil && len(*n.buf) > 0) || !n.wroteSegment {
		var pending []byte
		if n.buf != nil {
			pending = *n.buf
		}
		if err := w.writeSegment(n.key, pending); err != nil {
			return err
		}
	}
	if err := w.write(eof, terminatorBytes); err != nil {
		return err
	}
	n.entry.ended = true
	return nil
}

func (n *NamespaceWriter) releaseBuffer() {
	if n.buf == nil {
		return
	}
	*n.buf = (*n.buf)[:0]
	segmentBuffers.Put(n.buf)
	n.buf = nil
}

func sortedNames(set map[namespaceKey]bool) []string {
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k.String())
	}
	slices.Sort(names)
	return names
}
