package archive

import (
	"bytes"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Metadata is a collection's metadata as mongodump writes it to <coll>.metadata.json and to the metadata
// string of the archive prelude. The field order and omissions are mongodump's.
type Metadata struct {
	// Options are the collection's listCollections options (capped, size, max, collation, validator,
	// viewOn, pipeline, timeseries, ...); omitted from the JSON when empty.
	Options bson.D `bson:"options,omitempty"`
	// Indexes are the listIndexes documents; always present, as [] when there are none (views), because
	// older tools choke on null.
	Indexes []bson.D `bson:"indexes"`
	// UUID is the collection UUID as 32 lowercase hex digits without dashes; omitted when unknown.
	UUID string `bson:"uuid,omitempty"`
	// CollectionName survives file-name truncation of long collection names.
	CollectionName string `bson:"collectionName"`
	// Type is the listCollections type ("collection", "view", "timeseries"); omitted when empty.
	Type string `bson:"type,omitempty"`
}

// EncodeMetadata renders m as compact canonical Extended JSON v2 without HTML escaping, as mongodump does.
// Like mongodump it refuses metadata whose JSON would not decode back to the same BSON (mongorestore
// would restore something else), e.g. values the Extended JSON parser reads as a type wrapper.
func EncodeMetadata(m Metadata) (string, error) {
	if m.Indexes == nil {
		m.Indexes = []bson.D{}
	}
	out, err := bson.MarshalExtJSON(m, true, false)
	if err != nil {
		return "", fmt.Errorf("encoding metadata of %q as extended JSON: %w", m.CollectionName, err)
	}
	var back Metadata
	if err := bson.UnmarshalExtJSON(out, true, &back); err != nil {
		return "", fmt.Errorf("metadata of %q does not decode from its own extended JSON: %w", m.CollectionName, err)
	}
	want, err := bson.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding metadata of %q as BSON: %w", m.CollectionName, err)
	}
	got, err := bson.Marshal(back)
	if err != nil {
		return "", fmt.Errorf("re-encoding metadata of %q as BSON: %w", m.CollectionName, err)
	}
	if !bytes.Equal(want, got) {
		return "", fmt.Errorf("metadata of %q changes when round-tripped through extended JSON", m.CollectionName)
	}
	return string(out), nil
}

// DecodeMetadata parses a metadata string as mongorestore does (canonical Extended JSON; relaxed numbers
// are accepted too, as older mongodump wrote them). The empty string, which mongodump writes for the
// oplog, decodes to the zero Metadata.
func DecodeMetadata(s string) (Metadata, error) {
	var m Metadata
	if s == "" {
		return m, nil
	}
	if err := bson.UnmarshalExtJSON([]byte(s), true, &m); err != nil {
		return Metadata{}, fmt.Errorf("decoding collection metadata: %w", err)
	}
	return m, nil
}
