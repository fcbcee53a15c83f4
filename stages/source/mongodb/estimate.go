package mongodb

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// EstimateSize is the size of the documents a dump would read, as the
// server reports it: dbStats' dataSize of each database, or collStats'
// size of each collection when includeCollections or excludeCollections
// select some. Both count the documents' BSON, which the archive holds as
// it is, so the archive is about as large (plus its prelude and segment
// headers).
func EstimateSize(ctx context.Context, opts DumpOptions) (int64, error) {
	client, err := connect(ctx, opts.Client)
	if err != nil {
		return 0, err
	}
	defer disconnect(client)
	namespaces, err := listNamespaces(ctx, client, opts)
	if err != nil {
		return 0, err
	}
	var total int64
	if len(opts.Include) == 0 && len(opts.Exclude) == 0 {
		seen := map[string]bool{}
		for _, ns := range namespaces {
			if seen[ns.db] {
				continue
			}
			seen[ns.db] = true
			size, err := statsSize(ctx, client.Database(ns.db), bson.D{{Key: "dbStats", Value: 1}}, "dataSize")
			if err != nil {
				return 0, fmt.Errorf("dbStats of %s: %w", ns.db, err)
			}
			total += size
		}
		return total, nil
	}
	for _, ns := range namespaces {
		if ns.info.Type != typeCollection {
			continue
		}
		size, err := statsSize(ctx, client.Database(ns.db), bson.D{{Key: "collStats", Value: ns.info.Name}}, "size")
		if err != nil {
			return 0, fmt.Errorf("collStats of %s: %w", ns, err)
		}
		total += size
	}
	return total, nil
}

// statsSize runs a statistics command and reads one of its sizes, which
// servers report as an int32, an int64 or a double.
func statsSize(ctx context.Context, db *mongo.Database, cmd bson.D, field string) (int64, error) {
	var reply bson.Raw
	if err := db.RunCommand(ctx, cmd).Decode(&reply); err != nil {
		return 0, err
	}
	v, err := reply.LookupErr(field)
	if err != nil {
		return 0, fmt.Errorf("no %s in the reply", field)
	}
	if n, ok := v.AsInt64OK(); ok {
		return n, nil
	}
	if f, ok := v.DoubleOK(); ok {
		return int64(f), nil
	}
	return 0, fmt.Errorf("%s is a %s, not a number", field, v.Type)
}
