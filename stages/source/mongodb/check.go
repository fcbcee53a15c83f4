package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Check is a restore test's query: Filter must match at least one document
// of Collection in the scratch database.
type Check struct {
	Collection string          `json:"collection"`
	Filter     json.RawMessage `json:"filter,omitempty"`
}

// RestoreTest restores an archive into the scratch database opts.Database,
// checks it and drops it, whatever happened, on one connection: with a
// check, its filter must match a document; without one, every restored
// collection must hold as many documents as the archive had, and the
// archive at least one.
func RestoreTest(ctx context.Context, opts RestoreOptions, r io.Reader, check *Check) error {
	if opts.Database == "" {
		return errors.New("a MongoDB restore test needs restoreTest.connection.database: the scratch database, which is dropped afterwards")
	}
	opts.Drop = true
	_, err := restore(ctx, opts, r, func(client *mongo.Client, restored []RestoredCollection, err error) error {
		if err == nil {
			err = verifyRestored(ctx, client.Database(opts.Database), restored, check)
		}
		// The step's context may be cancelled already.
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if dropErr := client.Database(opts.Database).Drop(dropCtx); dropErr != nil {
			err = errors.Join(err, fmt.Errorf("dropping the scratch database: %w", dropErr))
		}
		return err
	})
	return err
}

func verifyRestored(ctx context.Context, db *mongo.Database, restored []RestoredCollection, check *Check) error {
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
		n, err := db.Client().Database(c.Database).Collection(c.Collection).CountDocuments(ctx, bson.D{})
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
