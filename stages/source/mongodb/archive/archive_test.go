package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The helpers below build BSON by hand from bsonspec.org, so that the byte-level test does not trust the
// same encoder the Writer uses.

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func cstring(s string) []byte { return append([]byte(s), 0) }

func elemString(key, val string) []byte {
	return cat([]byte{0x02}, cstring(key), le32(uint32(len(val)+1)), cstring(val))
}
func elemInt32(key string, v int32) []byte  { return cat([]byte{0x10}, cstring(key), le32(uint32(v))) }
func elemInt64(key string, v uint64) []byte { return cat([]byte{0x12}, cstring(key), le64(v)) }
func elemBool(key string, v bool) []byte {
	b := byte(0)
	if v {
		b = 1
	}
	return cat([]byte{0x08}, cstring(key), []byte{b})
}

func document(elems ...[]byte) []byte {
	body := cat(elems...)
	return cat(le32(uint32(4+len(body)+1)), body, []byte{0})
}

var (
	magicBytes = []byte{0x6d, 0xe2, 0x99, 0x81}
	termBytes  = []byte{0xff, 0xff, 0xff, 0xff}
)

func handHeader(db, coll string, eof bool, crc uint64) []byte {
	return document(elemString("db", db), elemString("collection", coll), elemBool("EOF", eof), elemInt64("CRC", crc))
}

func handChecksum(docs ...[]byte) uint64 {
	return crc64.Checksum(cat(docs...), crc64.MakeTable(crc64.ECMA))
}

// handArchive is a small archive written by hand from the spec, as pieces so that tests can cut it at
// known places. The Writer, given layoutPrelude and layoutDocs, must produce exactly its bytes.
type handArchive struct {
	pieces []handPiece
}

type handPiece struct {
	what  string
	bytes []byte
}

func (a handArchive) bytes() []byte {
	var out []byte
	for _, p := range a.pieces {
		out = append(out, p.bytes...)
	}
	return out
}

// offset returns where the named piece starts.
func (a handArchive) offset(what string) int {
	off := 0
	for _, p := range a.pieces {
		if p.what == what {
			return off
		}
		off += len(p.bytes)
	}
	panic("no piece " + what)
}

const layoutMetadataA = `{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"collectionName":"a","type":"collection"}`

var (
	docA1 = document(elemInt32("_id", 1), elemString("x", "one"))
	docA2 = document(elemInt32("_id", 2), elemString("x", "two"))
	docB1 = document(elemInt32("_id", 1), elemBool("ok", true))
	docO1 = document(elemString("op", "n"), elemString("ns", ""))
)

var layoutHeader = Header{ConcurrentCollections: 4, ServerVersion: "7.0.14", ToolVersion: "backflow-test"}

var layoutPrelude = []CollectionMetadata{
	{Database: "test", Collection: "a", Metadata: layoutMetadataA, Type: "collection"},
	{Database: "test", Collection: "b", Metadata: `{"indexes":[],"collectionName":"b"}`, Size: 5_000_000_000, Type: "collection"},
	{Database: "test", Collection: "empty", Type: "collection"},
	OplogCollectionMetadata(),
}

func newHandArchive() handArchive {
	crcA := handChecksum(docA1, docA2)
	crcB := handChecksum(docB1)
	crcO := handChecksum(docO1)
	return handArchive{pieces: []handPiece{
		{"magic", magicBytes},
		{"header", document(
			elemInt32("concurrent_collections", 4),
			elemString("version", "0.1"),
			elemString("server_version", "7.0.14"),
			elemString("tool_version", "backflow-test"),
		)},
		{"prelude a", document(elemString("db", "test"), elemString("collection", "a"), elemString("metadata", layoutMetadataA), elemInt32("size", 0), elemString("type", "collection"))},
		// A size beyond int32 is an int64, as Go's BSON encoder writes mongodump's int.
		{"prelude b", document(elemString("db", "test"), elemString("collection", "b"), elemString("metadata", `{"indexes":[],"collectionName":"b"}`), elemInt64("size", 5_000_000_000), elemString("type", "collection"))},
		{"prelude empty", document(elemString("db", "test"), elemString("collection", "empty"), elemString("metadata", ""), elemInt32("size", 0), elemString("type", "collection"))},
		{"prelude oplog", document(elemString("db", ""), elemString("collection", "oplog"), elemString("metadata", ""), elemInt32("size", 0), elemString("type", ""))},
		{"prelude end", termBytes},
		{"segment a", handHeader("test", "a", false, 0)},
		{"doc a1", docA1},
		{"doc a2", docA2},
		{"segment a end", termBytes},
		{"eof a", handHeader("test", "a", true, crcA)},
		{"eof a end", termBytes},
		// An empty collection is an empty segment and an EOF with the checksum of nothing, as mongodump writes it.
		{"segment empty", handHeader("test", "empty", false, 0)},
		{"segment empty end", termBytes},
		{"eof empty", handHeader("test", "empty", true, 0)},
		{"eof empty end", termBytes},
		{"segment oplog", handHeader("", "oplog", false, 0)},
		{"doc o1", docO1},
		{"segment oplog end", termBytes},
		{"eof oplog", handHeader("", "oplog", true, crcO)},
		{"eof oplog end", termBytes},
		{"segment b", handHeader("test", "b", false, 0)},
		{"doc b1", docB1},
		{"segment b end", termBytes},
		{"eof b", handHeader("test", "b", true, crcB)},
		{"eof b end", termBytes},
	}}
}

func TestWriterMatchesHandBuiltLayout(t *testing.T) {
	// The checksum is stored as the int64 with the uint64's bits; make sure the layout exercises a
	// checksum with the top bit set, which is where a sign conversion would go wrong.
	if handChecksum(docA1, docA2)>>63 == 0 && handChecksum(docB1)>>63 == 0 && handChecksum(docO1)>>63 == 0 {
		t.Fatal("test layout has no checksum with the top bit set; change a document")
	}

	var out bytes.Buffer
	w, err := NewWriter(&out, layoutHeader, layoutPrelude)
	if err != nil {
		t.Fatal(err)
	}
	open := func(db, coll string) *NamespaceWriter {
		t.Helper()
		n, err := w.Namespace(db, coll)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// All four are open at once; each buffers until Close, so the body follows the order of the Closes.
	a, b, empty, oplog := open("test", "a"), open("test", "b"), open("test", "empty"), open(OplogDatabase, OplogCollection)
	for _, step := range []struct {
		n   *NamespaceWriter
		doc []byte
	}{{a, docA1}, {b, docB1}, {a, docA2}, {oplog, docO1}} {
		if err := step.n.WriteDocument(step.doc); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*NamespaceWriter{a, empty, oplog, b} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	want := newHandArchive().bytes()
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("archive bytes differ from the hand-built layout\n got: % x\nwant: % x", out.Bytes(), want)
	}
}

// recorded is an event with its document copied.
type recorded struct {
	ns  string
	doc []byte
	end bool
}

func readAll(data []byte) (*Reader, []recorded, error) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	var events []recorded
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return r, events, nil
		}
		if err != nil {
			return r, events, err
		}
		if ev.End != (ev.Document == nil) {
			return r, events, fmt.Errorf("event for %s.%s has End=%v and a %d-byte document", ev.Database, ev.Collection, ev.End, len(ev.Document))
		}
		events = append(events, recorded{ns: ev.Database + "." + ev.Collection, doc: bytes.Clone(ev.Document), end: ev.End})
	}
}

func TestReaderReadsHandBuiltLayout(t *testing.T) {
	r, events, err := readAll(newHandArchive().bytes())
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := layoutHeader
	wantHeader.Version = FormatVersion
	if r.Header() != wantHeader {
		t.Errorf("header = %+v, want %+v", r.Header(), wantHeader)
	}
	if !reflect.DeepEqual(r.Prelude(), layoutPrelude) {
		t.Errorf("prelude = %+v, want %+v", r.Prelude(), layoutPrelude)
	}
	want := []recorded{
		{ns: "test.a", doc: docA1}, {ns: "test.a", doc: docA2}, {ns: "test.a", end: true},
		{ns: "test.empty", end: true},
		{ns: ".oplog", doc: docO1}, {ns: ".oplog", end: true},
		{ns: "test.b", doc: docB1}, {ns: "test.b", end: true},
	}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
}

func TestReaderReusesDocumentBuffer(t *testing.T) {
	r, err := NewReader(bytes.NewReader(newHandArchive().bytes()))
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	kept := first.Document
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	// The documented contract: a Document is valid only until the next Next, whose document overwrites it.
	if !bytes.Equal(kept, docA2[:len(kept)]) {
		t.Errorf("the buffer was not reused: first document still reads % x", kept)
	}
}

// makeDoc is a document with the types a test server here cannot store
// (decimal128, arrays inside arrays), so that the archive carries them.
func makeDoc(t testing.TB, id int, ns string, pad int) []byte {
	t.Helper()
	dec, err := bson.ParseDecimal128(fmt.Sprintf("%d.000000000000000000000000001", id))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := bson.Marshal(bson.D{{Key: "_id", Value: int32(id)}, {Key: "ns", Value: ns}, {Key: "pad", Value: strings.Repeat("x", pad)},
		{Key: "dec", Value: dec}, {Key: "nested", Value: bson.A{bson.A{int32(id), bson.A{"deep"}}, bson.A{}}}})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestRoundTripConcurrentNamespaces(t *testing.T) {
	type plan struct {
		db, coll string
		docs     [][]byte
	}
	var plans []*plan
	for i := range 6 {
		p := &plan{db: "db1", coll: fmt.Sprintf("c%d", i)}
		// About 1.3 MB each, so every namespace spans several segments that interleave with the others.
		for j := range 2500 {
			p.docs = append(p.docs, makeDoc(t, j, p.coll, 200+(i*37+j*11)%600))
		}
		plans = append(plans, p)
	}
	big := &plan{db: "db1", coll: "big", docs: [][]byte{
		makeDoc(t, 1, "big", 10),
		makeDoc(t, 2, "big", SegmentSize+SegmentSize/2), // larger than a segment: a segment of its own
		makeDoc(t, 3, "big", 10),
	}}
	empty := &plan{db: "db2", coll: "empty"}
	oplog := &plan{db: OplogDatabase, coll: OplogCollection}
	for i := range 50 {
		entry, err := bson.Marshal(bson.D{
			{Key: "ts", Value: bson.Timestamp{T: 1700000000, I: uint32(i + 1)}},
			{Key: "op", Value: "i"},
			{Key: "ns", Value: "db1.c0"},
			{Key: "o", Value: bson.D{{Key: "_id", Value: int32(10000 + i)}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		oplog.docs = append(oplog.docs, entry)
	}
	plans = append(plans, big, empty, oplog)

	var prelude []CollectionMetadata
	for _, p := range plans {
		if p == oplog {
			prelude = append(prelude, OplogCollectionMetadata())
			continue
		}
		meta, err := EncodeMetadata(Metadata{CollectionName: p.coll, Type: "collection"})
		if err != nil {
			t.Fatal(err)
		}
		prelude = append(prelude, CollectionMetadata{Database: p.db, Collection: p.coll, Metadata: meta, Type: "collection"})
	}

	var out bytes.Buffer
	w, err := NewWriter(&out, Header{ConcurrentCollections: int32(len(plans)), ServerVersion: "8.0.4", ToolVersion: "test"}, prelude)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(plans))
	for _, p := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := w.Namespace(p.db, p.coll)
			if err != nil {
				errs <- err
				return
			}
			for _, d := range p.docs {
				if err := n.WriteDocument(d); err != nil {
					errs <- err
					return
				}
			}
			errs <- n.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	_, events, err := readAll(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string][][]byte)
	ended := make(map[string]bool)
	for _, ev := range events {
		if ended[ev.ns] {
			t.Fatalf("event for %s after its end", ev.ns)
		}
		if ev.end {
			ended[ev.ns] = true
			continue
		}
		got[ev.ns] = append(got[ev.ns], ev.doc)
	}
	for _, p := range plans {
		ns := p.db + "." + p.coll
		if !ended[ns] {
			t.Errorf("%s never ended", ns)
		}
		if len(got[ns]) != len(p.docs) {
			t.Errorf("%s: read %d documents, wrote %d", ns, len(got[ns]), len(p.docs))
			continue
		}
		for i := range p.docs {
			if !bytes.Equal(got[ns][i], p.docs[i]) {
				t.Errorf("%s: document %d differs", ns, i)
				break
			}
		}
	}
}

func TestSegmentsInterleaveWithoutMixing(t *testing.T) {
	// 400 KiB documents: the third of a namespace no longer fits the 1 MiB segment, so the first two go out.
	const pad = 400 * 1024
	prelude := []CollectionMetadata{{Database: "d", Collection: "a"}, {Database: "d", Collection: "b"}}
	var out bytes.Buffer
	w, err := NewWriter(&out, Header{}, prelude)
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.Namespace("d", "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.Namespace("d", "b")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*NamespaceWriter{a, b} {
		for i := range 3 {
			if err := n.WriteDocument(makeDoc(t, i, "", pad)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, events, err := readAll(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, ev := range events {
		s := ev.ns
		if ev.end {
			s += " end"
		}
		order = append(order, s)
	}
	want := []string{"d.a", "d.a", "d.b", "d.b", "d.a", "d.a end", "d.b", "d.b end"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("event order %v, want %v", order, want)
	}
}

func TestWriterErrors(t *testing.T) {
	prelude := []CollectionMetadata{
		{Database: "d", Collection: "a"},
		{Database: "d", Collection: "ts", Type: "timeseries"},
	}
	newWriter := func(t *testing.T) *Writer {
		w, err := NewWriter(io.Discard, Header{}, prelude)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	valid := document(elemInt32("_id", 1))

	tests := []struct {
		name string
		run  func(t *testing.T, w *Writer) error
		want string
	}{
		{"namespace not in prelude", func(t *testing.T, w *Writer) error {
			_, err := w.Namespace("d", "nope")
			return err
		}, "not in the prelude"},
		{"namespace twice", func(t *testing.T, w *Writer) error {
			n, _ := w.Namespace("d", "a")
			_ = n.Close()
			_, err := w.Namespace("d", "a")
			return err
		}, "already written"},
		{"timeseries under both names", func(t *testing.T, w *Writer) error {
			if _, err := w.Namespace("d", "system.buckets.ts"); err != nil {
				t.Fatalf("buckets namespace of a timeseries collection refused: %v", err)
			}
			_, err := w.Namespace("d", "ts")
			return err
		}, "already written"},
		{"close with a namespace open", func(t *testing.T, w *Writer) error {
			_, _ = w.Namespace("d", "a")
			return w.Close()
		}, "still open: [d.a]"},
		{"close before every prelude namespace is written", func(t *testing.T, w *Writer) error {
			n, _ := w.Namespace("d", "a")
			_ = n.Close()
			return w.Close()
		}, "never written, mongorestore would reject the archive: [d.ts]"},
		{"length prefix does not match", func(t *testing.T, w *Writer) error {
			n, _ := w.Namespace("d", "a")
			return n.WriteDocument(append(bytes.Clone(valid), 0))
		}, "does not match"},
		{"shorter than an empty document", func(t *testing.T, w *Writer) error {
			n, _ := w.Namespace("d", "a")
			return n.WriteDocument([]byte{4, 0, 0, 0})
		}, "shorter"},
		{"no trailing NUL", func(t *testing.T, w *Writer) error {
			n, _ := w.Namespace("d", "a")
			bad := bytes.Clone(valid)
			bad[len(bad)-1] = 1
			return n.WriteDocument(bad)
		}, "NUL"},
		{"larger than mongorestore reads", func(t *testing.T, w *Writer) error {
			n, _ := w.Namespace("d", "a")
			return n.WriteDocument(makeDoc(t, 1, "", MaxRestorableDocumentSize))
		}, "larger than"},
		{"write after close", func(t *testing.T, w *Writer) error {
			n, _ := w.Namespace("d", "a")
			_ = n.Close()
			return n.WriteDocument(valid)
		}, "closed namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(t, newWriter(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestWriterErrorIsSticky(t *testing.T) {
	// The prelude takes magic, header, one entry and the terminator: four writes.
	w, err := NewWriter(&failingWriter{after: 4}, Header{}, []CollectionMetadata{{Database: "d", Collection: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.Namespace("d", "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WriteDocument(document(elemInt32("_id", 1))); err != nil {
		t.Fatal(err) // buffered, nothing written yet
	}
	if err := n.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close error %v, want the write failure", err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Writer.Close error %v, want the earlier write failure", err)
	}
}

func TestReaderErrors(t *testing.T) {
	hand := newHandArchive()
	data := hand.bytes()
	at := hand.offset
	replaced := func(offset int, b ...byte) []byte {
		out := bytes.Clone(data)
		copy(out[offset:], b)
		return out
	}

	tests := []struct {
		name       string
		data       []byte
		unexpected bool // want io.ErrUnexpectedEOF in the chain
		want       string
	}{
		{"empty stream", nil, true, "magic number"},
		{"bad magic", replaced(0, 0x6d, 0xe2, 0x99, 0x80), false, "not a mongodump archive"},
		{"cut inside the magic number", data[:2], true, "magic number"},
		{"cut inside the header length", data[:at("header")+2], true, "archive header"},
		{"cut inside the header", data[:at("header")+20], true, "archive header"},
		{"cut inside a prelude entry", data[:at("prelude b")+30], true, "prelude"},
		{"cut before the prelude terminator", data[:at("prelude end")], true, "prelude"},
		{"cut inside a segment header", data[:at("segment a")+10], true, "namespace header"},
		{"cut inside a document", data[:at("doc a2")+7], true, "segment of namespace test.a"},
		{"cut before a segment terminator", data[:at("segment a end")], true, "segment of namespace test.a"},
		{"cut before an EOF", data[:at("eof a")], true, "before the EOF of namespaces [test.a]"},
		{"cut inside an EOF header", data[:at("eof a")+12], true, "namespace header"},
		{"cut before the EOF terminator", data[:at("eof a end")], true, "EOF of namespace test.a"},
		{"cut before a later EOF", data[:at("eof b")], true, "before the EOF of namespaces [test.b]"},
		{"flipped byte in a document", replaced(at("doc a1")+len(docA1)-3, 'X'), false, "CRC mismatch in namespace test.a"},
		{"flipped byte in the oplog", replaced(at("doc o1")+12, 'X'), false, "CRC mismatch in namespace .oplog"},
		{"document length over the limit", replaced(at("doc a1"), le32(MaxDocumentSize+1)...), false, "neither a terminator nor a BSON length"},
		{"document length below 5", replaced(at("doc a1"), le32(4)...), false, "neither a terminator nor a BSON length"},
		{"prelude entry length over the limit", replaced(at("prelude a"), le32(0x7fffffff)...), false, "neither a terminator nor a BSON length"},
		{"document without trailing NUL", replaced(at("doc a1")+len(docA1)-1, 1), false, "does not end with a NUL"},
		{"EOF followed by data", cat(data[:at("eof a end")], docA1), false, "followed by data"},
		{"namespace continues after its EOF", cat(data[:at("segment empty")], handHeader("test", "a", false, 0), docA1, termBytes), false, "after its EOF"},
		{"terminator instead of a namespace header", cat(data, termBytes), false, "where a namespace header belongs"},
		{"unknown field in a namespace header", cat(data, document(elemString("db", "x"), elemString("collection", "y"), elemBool("EOF", false), elemInt64("CRC", 0), elemInt32("extra", 1)), termBytes), false, `unknown field "extra"`},
		{"CRC of the wrong type", cat(data, document(elemString("db", "x"), elemString("collection", "y"), elemBool("EOF", true), elemInt32("CRC", 0)), termBytes), false, `field "CRC" has BSON type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(tt.data)
			if err == nil {
				t.Fatal("read without error")
			}
			if errors.Is(err, io.ErrUnexpectedEOF) != tt.unexpected {
				t.Errorf("errors.Is(err, io.ErrUnexpectedEOF) = %v, want %v (err: %v)", !tt.unexpected, tt.unexpected, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestReaderAcceptsWhatMongodumpWrites covers shapes our Writer does not produce but mongodump archives have.
func TestReaderAcceptsWhatMongodumpWrites(t *testing.T) {
	doc := document(elemInt32("_id", 7))
	crc := handChecksum(doc)
	data := cat(
		magicBytes,
		// An old header: the format fields only.
		document(elemInt32("concurrent_collections", 4), elemString("version", "0.1"), elemString("server_version", "4.0.2"), elemString("tool_version", "r4.1.3")),
		// Old prelude entries: no type field, relaxed JSON metadata; plus a namespace that never appears.
		document(elemString("db", "test"), elemString("collection", "foo"), elemString("metadata", `{"options":{},"indexes":[{"v":2,"key":{"_id":1},"name":"_id_","ns":"test.foo"}]}`), elemInt32("size", 0)),
		document(elemString("db", "test"), elemString("collection", "eofonly"), elemString("metadata", ""), elemInt32("size", 0)),
		document(elemString("db", "test"), elemString("collection", "absent"), elemString("metadata", ""), elemInt64("size", 1<<40)),
		termBytes,
		// foo: an empty segment, a segment with a document, another empty segment, then its EOF.
		handHeader("test", "foo", false, 0), termBytes,
		handHeader("test", "foo", false, 0), doc, termBytes,
		handHeader("test", "foo", false, 0), termBytes,
		handHeader("test", "foo", true, crc), termBytes,
		// eofonly: an EOF with no segment at all.
		handHeader("test", "eofonly", true, 0), termBytes,
	)
	r, events, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []recorded{{ns: "test.foo", doc: doc}, {ns: "test.foo", end: true}, {ns: "test.eofonly", end: true}}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
	prelude := r.Prelude()
	if len(prelude) != 3 || prelude[0].Type != "" || prelude[2].Size != 1<<40 {
		t.Errorf("prelude = %+v", prelude)
	}
	m, err := DecodeMetadata(prelude[0].Metadata)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Indexes) != 1 || m.Indexes[0][0] != (bson.E{Key: "v", Value: int32(2)}) {
		t.Errorf("relaxed metadata decoded to %+v", m)
	}
}

func TestMetadataJSON(t *testing.T) {
	idIndex := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}
	const idIndexJSON = `{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}`
	tests := []struct {
		name string
		meta Metadata
		json string
	}{
		{
			name: "plain collection, options omitted",
			meta: Metadata{
				Indexes: []bson.D{idIndex, {{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "score", Value: -1.0}}}, {Key: "name", Value: "score_-1"}}},
				UUID:    "5a3c4f0e9b2d4c61a7e8f90b1c2d3e4f", CollectionName: "scores", Type: "collection",
			},
			json: `{"indexes":[` + idIndexJSON + `,{"v":{"$numberInt":"2"},"key":{"score":{"$numberDouble":"-1.0"}},"name":"score_-1"}],"uuid":"5a3c4f0e9b2d4c61a7e8f90b1c2d3e4f","collectionName":"scores","type":"collection"}`,
		},
		{
			name: "validator, collation, unique partial index",
			meta: Metadata{
				Options: bson.D{
					{Key: "validator", Value: bson.D{{Key: "$jsonSchema", Value: bson.D{{Key: "bsonType", Value: "object"}, {Key: "required", Value: bson.A{"name"}}}}}},
					{Key: "validationLevel", Value: "strict"},
					{Key: "collation", Value: bson.D{{Key: "locale", Value: "fr"}, {Key: "strength", Value: int32(2)}}},
				},
				Indexes: []bson.D{idIndex, {
					{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "email", Value: int32(1)}}}, {Key: "name", Value: "email_1"},
					{Key: "unique", Value: true},
					{Key: "partialFilterExpression", Value: bson.D{{Key: "email", Value: bson.D{{Key: "$exists", Value: true}}}}},
				}},
				UUID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", CollectionName: "people", Type: "collection",
			},
			json: `{"options":{"validator":{"$jsonSchema":{"bsonType":"object","required":["name"]}},"validationLevel":"strict","collation":{"locale":"fr","strength":{"$numberInt":"2"}}},` +
				`"indexes":[` + idIndexJSON + `,{"v":{"$numberInt":"2"},"key":{"email":{"$numberInt":"1"}},"name":"email_1","unique":true,"partialFilterExpression":{"email":{"$exists":true}}}],` +
				`"uuid":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","collectionName":"people","type":"collection"}`,
		},
		{
			name: "capped",
			meta: Metadata{
				Options: bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int64(1 << 20)}, {Key: "max", Value: int32(1000)}},
				Indexes: []bson.D{idIndex}, UUID: "00112233445566778899aabbccddeeff", CollectionName: "log", Type: "collection",
			},
			json: `{"options":{"capped":true,"size":{"$numberLong":"1048576"},"max":{"$numberInt":"1000"}},"indexes":[` + idIndexJSON + `],"uuid":"00112233445566778899aabbccddeeff","collectionName":"log","type":"collection"}`,
		},
		{
			// mongodump writes no indexes and no UUID for a view, but indexes as [] rather than null.
			name: "view",
			meta: Metadata{
				Options: bson.D{
					{Key: "viewOn", Value: "people"},
					{Key: "pipeline", Value: bson.A{
						bson.D{{Key: "$match", Value: bson.D{{Key: "active", Value: true}}}},
						bson.D{{Key: "$project", Value: bson.D{{Key: "name", Value: int32(1)}}}},
					}},
				},
				CollectionName: "active_people", Type: "view",
			},
			json: `{"options":{"viewOn":"people","pipeline":[{"$match":{"active":true}},{"$project":{"name":{"$numberInt":"1"}}}]},"indexes":[],"collectionName":"active_people","type":"view"}`,
		},
		{
			name: "html characters are not escaped",
			meta: Metadata{Indexes: []bson.D{}, CollectionName: "a<b>&c"},
			json: `{"indexes":[],"collectionName":"a<b>&c"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeMetadata(tt.meta)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.json {
				t.Errorf("EncodeMetadata\n got: %s\nwant: %s", got, tt.json)
			}
			back, err := DecodeMetadata(got)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.meta
			if want.Indexes == nil {
				want.Indexes = []bson.D{}
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("DecodeMetadata\n got: %#v\nwant: %#v", back, want)
			}
		})
	}

	t.Run("refuses what would not round-trip", func(t *testing.T) {
		// A document shaped like a type wrapper comes back from JSON as the wrapped value.
		_, err := EncodeMetadata(Metadata{CollectionName: "c", Options: bson.D{{Key: "x", Value: bson.D{{Key: "$numberInt", Value: "5"}}}}})
		if err == nil {
			t.Fatal("EncodeMetadata accepted metadata that changes through extended JSON")
		}
	})
	t.Run("empty string", func(t *testing.T) {
		m, err := DecodeMetadata("")
		if err != nil || !reflect.DeepEqual(m, Metadata{}) {
			t.Errorf("DecodeMetadata(\"\") = %+v, %v", m, err)
		}
	})
}

// TestRealArchive reads an archive written by real mongodump, when MONGODUMP_ARCHIVE names one, and checks
// that writing its contents back through the Writer reads the same.
func TestRealArchive(t *testing.T) {
	path := os.Getenv("MONGODUMP_ARCHIVE")
	if path == "" {
		t.Skip("set MONGODUMP_ARCHIVE to the path of a `mongodump --archive` output")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, events, err := readAll(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("header %+v", r.Header())
	for _, m := range r.Prelude() {
		t.Logf("prelude %s.%s type %q size %d metadata %s", m.Database, m.Collection, m.Type, m.Size, m.Metadata)
		if _, err := DecodeMetadata(m.Metadata); err != nil {
			t.Error(err)
		}
	}

	var out bytes.Buffer
	w, err := NewWriter(&out, r.Header(), r.Prelude())
	if err != nil {
		t.Fatal(err)
	}
	open := make(map[string]*NamespaceWriter)
	for _, ev := range events {
		n := open[ev.ns]
		if n == nil {
			db, coll, _ := strings.Cut(ev.ns, ".")
			if n, err = w.Namespace(db, coll); err != nil {
				t.Fatal(err)
			}
			open[ev.ns] = n
		}
		if ev.end {
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := n.WriteDocument(ev.doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, again, err := readAll(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, events) {
		t.Error("rewritten archive reads differently")
	}
	t.Logf("%d events; rewritten %d bytes, original %d", len(events), out.Len(), len(data))
}
