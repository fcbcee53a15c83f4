// Package archive reads and writes the byte format of `mongodump --archive`, so that what we write restores
// with `mongorestore --archive` and what mongodump writes can be read here.
//
// An archive is, in order:
//
//	magic number   4 bytes, 0x8199e26d little-endian (6d e2 99 81)
//	header         BSON {concurrent_collections int32, version "0.1", server_version, tool_version}
//	prelude        zero or more BSON {db, collection, metadata, size, type}, one per namespace in the archive
//	terminator     4 bytes ff ff ff ff
//	body           any interleaving of, per namespace:
//	                 segment: BSON {db, collection, EOF: false, CRC: int64 0}, zero or more documents, terminator
//	                 EOF:     BSON {db, collection, EOF: true,  CRC: int64 checksum}, terminator
//
// A namespace's documents may be spread over many segments, interleaved with other namespaces' segments
// (mongodump dumps several collections at once); its EOF comes after its last segment. The checksum is
// CRC-64/ECMA (hash/crc64 with the ECMA table) over the namespace's documents, each in full with its length
// prefix, concatenated in archive order; headers and terminators are not hashed. The uint64 is stored as
// the int64 with the same bits.
//
// Details the published spec (mongo-tools common/archive/spec.md) does not tell, taken from mongo-tools'
// mongodump and mongorestore:
//   - mongodump opens and closes every namespace it dumps, so an empty collection (and every view) is an
//     empty segment (header then terminator, no documents) followed by its EOF; the spec's grammar demands
//     at least one document per segment, but mongorestore's parser accepts none, and it also accepts an
//     EOF with no segment before it. The Writer writes what mongodump writes.
//   - mongorestore rejects an archive in which a namespace of the prelude never gets its EOF, and a body
//     namespace that is not in the prelude; the Writer refuses to produce either.
//   - `mongodump --oplog` writes the captured oplog as namespace db "" collection "oplog" (OplogDatabase,
//     OplogCollection), listed in the prelude with an empty metadata string; mongorestore --oplogReplay
//     finds it only through that prelude entry.
//   - a timeseries collection X (prelude type "timeseries") has its data under "system.buckets.X" when the
//     source server is older than 8.3 and under "X" from 8.3 on (mongorestore decides by the header's
//     server_version).
//   - size is written as int32, or int64 if it does not fit (Go int through the BSON encoder), and current
//     mongodump always writes 0; the type field is absent from archives of mongodump before 100.4.0 (2021).
//   - mongorestore's parser refuses any BSON document (header or data) above 16 MiB, although the server
//     allows oplog entries up to 16 MiB + 16 KiB.
package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MagicNumber begins every archive, written little-endian.
const MagicNumber uint32 = 0x8199e26d

// FormatVersion is the only archive format version mongodump has ever written.
const FormatVersion = "0.1"

// terminator ends the prelude and every segment; it cannot be mistaken for a BSON length because BSON
// lengths are positive int32s.
const terminator uint32 = 0xffffffff

const minDocumentSize = 5 // length prefix and the trailing NUL of an empty document

// MaxDocumentSize is the largest BSON document the Reader accepts: the server's limit for a user document
// (16 MiB) plus the 16 KiB of headroom it allows oplog entries.
const MaxDocumentSize = 16*1024*1024 + 16*1024

// MaxRestorableDocumentSize is the largest document mongorestore's archive parser accepts (16 MiB, with no
// oplog headroom). The Writer refuses larger documents rather than produce an archive that cannot be
// restored.
const MaxRestorableDocumentSize = 16 * 1024 * 1024

// SegmentSize bounds how many document bytes a NamespaceWriter buffers before it writes them as one
// segment. A single larger document becomes a segment of its own.
const SegmentSize = 1024 * 1024

// The namespace `mongodump --oplog` writes the captured oplog entries to.
const (
	OplogDatabase   = ""
	OplogCollection = "oplog"
)

// TimeseriesBucketPrefix prefixes the collection that holds a timeseries collection's data on servers
// before 8.3.
const TimeseriesBucketPrefix = "system.buckets."

var crcTable = crc64.MakeTable(crc64.ECMA)

// Header is the archive-wide document after the magic number.
type Header struct {
	// ConcurrentCollections is mongodump's --numParallelCollections; mongorestore restores at least this
	// many collections at once.
	ConcurrentCollections int32
	// Version is the archive format version; the Writer writes FormatVersion when it is empty.
	Version string
	// ServerVersion is the source server's version (e.g. "7.0.14"); mongorestore parses it to warn about
	// cross-version restores and to locate timeseries data.
	ServerVersion string
	ToolVersion   string
}

// CollectionMetadata is one prelude entry, announcing a namespace of the archive.
type CollectionMetadata struct {
	Database   string
	Collection string
	// Metadata is the collection's <coll>.metadata.json as mongodump writes it (see EncodeMetadata); empty
	// for the oplog.
	Metadata string
	// Size is meant to be the collection's uncompressed size in bytes; mongorestore uses it only to order
	// and report work, and mongodump writes 0.
	Size int64
	// Type is the listCollections type ("collection", "view", "timeseries"); empty for the oplog and in
	// archives from mongodump before 100.4.0.
	Type string
}

// OplogCollectionMetadata is the prelude entry mongodump writes for the oplog it captures with --oplog.
func OplogCollectionMetadata() CollectionMetadata {
	return CollectionMetadata{Database: OplogDatabase, Collection: OplogCollection}
}

func namespaceString(db, collection string) string {
	return db + "." + collection
}

func marshalHeader(h Header) ([]byte, error) {
	return bson.Marshal(bson.D{
		{Key: "concurrent_collections", Value: h.ConcurrentCollections},
		{Key: "version", Value: h.Version},
		{Key: "server_version", Value: h.ServerVersion},
		{Key: "tool_version", Value: h.ToolVersion},
	})
}

// Fields that name a namespace, in the prelude's collection entries and in
// the namespace headers.
const (
	fieldDB         = "db"
	fieldCollection = "collection"
)

// unmarshalHeader ignores unknown fields and tolerates missing ones, as mongorestore's struct decoding does.
func unmarshalHeader(doc []byte) (Header, error) {
	var h Header
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		return h, err
	}
	for _, e := range elems {
		v := e.Value()
		var ok bool
		switch e.Key() {
		case "concurrent_collections":
			var n int64
			n, ok = integer(v)
			if ok && (n < math.MinInt32 || n > math.MaxInt32) {
				ok = false
			}
			h.ConcurrentCollections = int32(n)
		case "version":
			h.Version, ok = v.StringValueOK()
		case "server_version":
			h.ServerVersion, ok = v.StringValueOK()
		case "tool_version":
			h.ToolVersion, ok = v.StringValueOK()
		default:
			ok = true
		}
		if !ok {
			return h, fmt.Errorf("field %q has BSON type %s", e.Key(), v.Type)
		}
	}
	return h, nil
}

func marshalCollectionMetadata(m CollectionMetadata) ([]byte, error) {
	// Go's BSON encoder writes mongodump's `int` size as int32 when it fits, so we do the same.
	var size any = m.Size
	if m.Size >= math.MinInt32 && m.Size <= math.MaxInt32 {
		size = int32(m.Size)
	}
	return bson.Marshal(bson.D{
		{Key: fieldDB, Value: m.Database},
		{Key: fieldCollection, Value: m.Collection},
		{Key: "metadata", Value: m.Metadata},
		{Key: "size", Value: size},
		{Key: "type", Value: m.Type},
	})
}

func unmarshalCollectionMetadata(doc []byte) (CollectionMetadata, error) {
	var m CollectionMetadata
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		return m, err
	}
	for _, e := range elems {
		v := e.Value()
		var ok bool
		switch e.Key() {
		case fieldDB:
			m.Database, ok = v.StringValueOK()
		case fieldCollection:
			m.Collection, ok = v.StringValueOK()
		case "metadata":
			m.Metadata, ok = v.StringValueOK()
		case "size":
			m.Size, ok = integer(v)
		case "type":
			m.Type, ok = v.StringValueOK()
		default:
			ok = true
		}
		if !ok {
			return m, fmt.Errorf("field %q has BSON type %s", e.Key(), v.Type)
		}
	}
	if m.Collection == "" {
		return m, errors.New("entry has no collection name")
	}
	return m, nil
}

// integer accepts the numeric types a Go int field decodes from.
func integer(v bson.RawValue) (int64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		n, ok := v.Int32OK()
		return int64(n), ok
	case bson.TypeInt64:
		return v.Int64OK()
	case bson.TypeDouble:
		f, ok := v.DoubleOK()
		if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

// namespaceHeader starts a segment (EOF false, CRC 0) or ends a namespace (EOF true).
type namespaceHeader struct {
	Database   string
	Collection string
	EOF        bool
	CRC        uint64
}

// marshalNamespaceHeader writes exactly the four fields, in mongodump's order: mongorestore rejects a
// namespace header with any other field, and expects CRC as int64 even when it is 0.
func marshalNamespaceHeader(h namespaceHeader) ([]byte, error) {
	return bson.Marshal(bson.D{
		{Key: fieldDB, Value: h.Database},
		{Key: fieldCollection, Value: h.Collection},
		{Key: "EOF", Value: h.EOF},
		{Key: "CRC", Value: int64(h.CRC)}, // same 64 bits, as BSON has no unsigned integers
	})
}

// unmarshalNamespaceHeader is as strict as mongorestore: unknown fields and wrong types are errors.
func unmarshalNamespaceHeader(doc []byte) (namespaceHeader, error) {
	var h namespaceHeader
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		return h, err
	}
	for _, e := range elems {
		v := e.Value()
		var ok bool
		switch e.Key() {
		case fieldDB:
			h.Database, ok = v.StringValueOK()
		case fieldCollection:
			h.Collection, ok = v.StringValueOK()
		case "EOF":
			h.EOF, ok = v.BooleanOK()
		case "CRC":
			var crc int64
			crc, ok = v.Int64OK()
			h.CRC = uint64(crc)
		default:
			return h, fmt.Errorf("unknown field %q", e.Key())
		}
		if !ok {
			return h, fmt.Errorf("field %q has BSON type %s", e.Key(), v.Type)
		}
	}
	if h.Collection == "" {
		return h, errors.New("no collection name")
	}
	return h, nil
}

// checkDocument verifies what can be checked of a BSON document without parsing it: its length prefix
// matches its length, lies within the limits, and it ends with the NUL every document ends with.
func checkDocument(doc []byte, max int) error {
	if len(doc) < minDocumentSize {
		return fmt.Errorf("document of %d bytes is shorter than the %d of an empty document", len(doc), minDocumentSize)
	}
	if n := binary.LittleEndian.Uint32(doc); int64(n) != int64(len(doc)) {
		return fmt.Errorf("document length prefix %d does not match its %d bytes", n, len(doc))
	}
	if len(doc) > max {
		return fmt.Errorf("document of %d bytes is larger than the %d allowed", len(doc), max)
	}
	if doc[len(doc)-1] != 0 {
		return errors.New("document does not end with a NUL byte")
	}
	return nil
}
