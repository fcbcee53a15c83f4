package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Check is a restore test's query: Filter must match at least one document
// of Collection in the scratch database.
type Check struct {
	Collection string          `json:"collection"`
	Filter     json.RawMessage `json:"filter,omitempty"`
}

// VerifyRestored checks a restore into database: with a check, its filter
// must match a document; without one, every restored collection must hold
// as many documents as the archive had, and the archive at least one.
func VerifyRestored(ctx context.Context, clientOpts *options.ClientOptions, database string, restored []RestoredCollection, check *Check) error {
	client, err := connect(ctx, clientOpts)
	if err != nil {
		return err
	}
	defer disconnect(client)
	db := client.Database(database)
	if check != nil {
		filter := bson.D{}
		if len(check.Filter) > 0 {
			// Extended JSON, so that {"$oid": ...} and dates can be asked for.
			if err := bson.UnmarshalExtJSON(check.Filter, false, &filter); err != nil {
				return fmt.Errorf("checkQuery filter is not a JSON document: %w", err)
			}
		}
		n, err := db.Collection(check.Collection).CountDocuments(ctx, filter)
		if err != nil {
			return fmt.Errorf("check query on %s: %w", check.Collection, err)
		}
		if n == 0 {
			return fmt.Errorf("check query matched no document of %s", check.Collection)
		}
		return nil
	}
	var total int64
	for _, c := range restored {
		n, err := client.Database(c.Database).Collection(c.Collection).CountDocuments(ctx, bson.D{})
		if err != nil {
			return fmt.Errorf("counting the documents of %s: %w", c, err)
		}
		if n != c.Documents {
			return fmt.Errorf("%s holds %d documents after the restore, the backup had %d", c, n, c.Documents)
		}
		total += n
	}
	if total == 0 {
		return errors.New("the backup restored no document")
	}
	return nil
}

// DropDatabase drops a database, such as a restore test's scratch database.
func DropDatabase(ctx context.Context, clientOpts *options.ClientOptions, database string) error {
	client, err := connect(ctx, clientOpts)
	if err != nil {
		return err
	}
	defer disconnect(client)
	return client.Database(database).Drop(ctx)
}
