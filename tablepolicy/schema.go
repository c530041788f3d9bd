package tablepolicy

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// The cache's own keys for the rules that remove rows without row events (README: Versions), all under
// MetaPrefix: a table's floor (FloorKey), its schema fingerprint (SchemaKey), the registry of tables
// seen, and the join of a snapshot's completion.

// KnownTablesKey is a Redis set of every "db.table" a schema change or a row change has named: with
// the include-list, the tables a DROP DATABASE removes.
const KnownTablesKey = MetaPrefix + "tables"

// SchemaKey holds the fingerprint of the table's row shape from its newest schema change.
func (t *Table) SchemaKey() string {
	return MetaPrefix + "schema:" + EscapeName(t.DB) + "." + EscapeName(t.Name)
}

// Floor is the floor a truncate, a completed snapshot or a DDL statement of this table at src raises:
// its binlog position in the table's epoch, column and row 0 (a query event's row number is stale; a
// snapshot's rows carry exactly its position, row 0).
func (t *Table) Floor(src debezium.Source) rowcache.Version {
	return rowcache.Version{Epoch: t.epoch, File: src.FileSeq, Pos: src.Pos}
}

// SnapshotKeys are where the completion of the snapshot that src belongs to is joined: one snapshot
// is one Debezium source (topic.prefix) at one position, in the policy's epoch.
func (p *Policy) SnapshotKeys(src debezium.Source) rowcache.SnapshotKeys {
	at := rowcache.Version{Epoch: p.epoch, File: src.FileSeq, Pos: src.Pos}.String()
	base := MetaPrefix + "snapshot:" + EscapeName(src.Name) + ":" + at
	return rowcache.SnapshotKeys{Tables: base + ":tables", Last: base + ":last"}
}

// Listed returns the include-list's tables of database db, sorted; none when every table is cached.
func (p *Policy) Listed(db string) []string {
	var out []string
	for id := range p.include {
		if d, t, _ := splitTable(id); d == db {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// TableID names a table in the cache's own sets (KnownTablesKey, a snapshot's announced tables): its
// database and table escaped as in keys and joined with ".", so that names holding dots stay apart.
func TableID(db, table string) string { return EscapeName(db) + "." + EscapeName(table) }

// ParseTableID undoes TableID.
func ParseTableID(id string) (db, table string, err error) {
	d, t, ok := strings.Cut(id, ".")
	if !ok || strings.Contains(t, ".") {
		return "", "", fmt.Errorf("tablepolicy: %q is not an escaped db.table", id)
	}
	if db, err = url.PathUnescape(d); err == nil {
		table, err = url.PathUnescape(t)
	}
	if err != nil || db == "" || table == "" {
		return "", "", fmt.Errorf("tablepolicy: %q is not an escaped db.table", id)
	}
	return db, table, nil
}
