package main

// FerretDB 1.24's SQLite backend looks a document up by _id with
// `_ferretdb_sjson->'$._id' = ?`, but builds the collection's _id index on
// `_ferretdb_sjson->"_id"`. SQLite uses an expression index only for the same
// expression, so every findOne, updateOne and replaceOne by _id read the whole
// table: a submission got slower with every stored response.
//
// The launcher therefore adds, for every collection, an index on exactly the
// expression FerretDB queries: once before it reports READY, then whenever a
// new collection appears (polled, since FerretDB tells no one). FerretDB does
// not know these indexes (listIndexes does not show them) and does not need
// to: SQLite drops them with their table.

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite"
)

const idIndexSuffix = "_ferretdb_id_path"

// indexAllCollections adds the missing _id path indexes in every database file of dir.
func indexAllCollections(ctx context.Context, dir string) (created int, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil {
		return 0, err
	}
	for _, file := range files {
		n, err := indexDatabase(ctx, file)
		created += n
		if err != nil {
			return created, fmt.Errorf("%s: %w", filepath.Base(file), err)
		}
	}
	return created, nil
}

func indexDatabase(ctx context.Context, file string) (int, error) {
	// mode=rw: never create a file FerretDB has just removed (a dropped database).
	dsn := "file:" + (&url.URL{Path: file}).EscapedPath() + "?mode=rw&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	rows, err := db.QueryContext(ctx,
		`SELECT c.table_name FROM _ferretdb_collections c
		 WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = c.table_name || ?)`,
		idIndexSuffix)
	if err != nil {
		if _, statErr := os.Stat(file); os.IsNotExist(statErr) || strings.Contains(err.Error(), "no such table") {
			return 0, nil // dropped meanwhile, or no collection yet
		}
		return 0, err
	}
	var tables []string
	for rows.Next() {
		var table string
		if err := rows.Scan(&table); err != nil {
			rows.Close()
			return 0, err
		}
		tables = append(tables, table)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}

	created := 0
	for _, table := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idIndexSuffix, table)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue // the collection was dropped meanwhile
			}
			return created, err
		}
		created++
	}
	return created, nil
}

// watchNewCollections indexes collections as they appear, until ctx ends.
func watchNewCollections(ctx context.Context, dir string, every time.Duration, logger *slog.Logger) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if _, err := indexAllCollections(ctx, dir); err != nil && ctx.Err() == nil {
				logger.Warn("cannot add _id path indexes", "error", err)
			}
		}
	}
}
