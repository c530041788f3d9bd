package apply

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// Rows can leave a table without a row event: TRUNCATE, a re-snapshot that no longer finds them,
// DROP TABLE, DROP DATABASE, partition DDL, a table swapped in by RENAME. Each raises the table's
// floor to the statement's (or the snapshot's) binlog position and sweeps the table: one rule
// (rowcache.Store.RaiseFloor), whatever order the table's row changes and the event arrive in, since
// every decision is by binlog position.

// snapshotEnds reports whether a snapshot marker says a table's (or the whole snapshot's) data has
// been read: the last row of a table, or the last record of the snapshot. Incremental snapshots carry
// "incremental" and never complete anything: their chunks are not statements about every row.
func snapshotEnds(marker string) bool {
	return marker == "last_in_data_collection" || marker == "last"
}

// snapshotPhase reports whether a schema change belongs to a snapshot's schema phase (every record of
// it carries the snapshot's position), as opposed to a DDL statement read from the binlog.
func snapshotPhase(marker string) bool {
	switch marker {
	case "", "false", "incremental":
		return false
	}
	return true
}

// snapshotMarker completes what a snapshot data record's marker says has been read, and returns the
// number of tables completed:
//   - last_in_data_collection: its own table;
//   - last (the snapshot's very last record): its own table and every table the snapshot's schema
//     records announced (tables that emitted no row, being empty, included). It leaves its mark so
//     that a schema record delivered after it completes its table itself (schemaChange).
//
// Completing a table means raising its floor to the snapshot's position and sweeping it: the rows the
// snapshot read carry exactly that position and stay, rows of the table the snapshot did not find
// (deleted while the binlog was unavailable) are removed, and so are older changes delivered late.
// Completing early (the table's other rows are still in flight, unordered with this one) costs only a
// miss for rows whose snapshot copy has not arrived yet: they are never refused.
func (h *Handler) snapshotMarker(ctx context.Context, ev *debezium.Event) (int, error) {
	src := ev.Source
	ids := []string{tablepolicy.TableID(src.DB, src.Table)}
	if src.Snapshot == "last" {
		announced, err := h.store.SnapshotLast(ctx, h.policy.SnapshotKeys(src))
		if err != nil {
			return 0, err
		}
		ids = append(ids, announced...)
	}
	n := 0
	for _, t := range h.cachedTables(ids) {
		if _, err := h.raiseFloor(ctx, t, t.Floor(src), rowcache.FloorSnapshot, ""); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// schemaChange applies a schema-change event (include.schema.changes=true; topic.prefix's topic).
func (h *Handler) schemaChange(ctx context.Context, ev *debezium.Event, obs *observation) Result {
	sc, src := ev.Schema, ev.Source
	res := Result{Op: "ddl", Table: sc.DatabaseName + ".*"}
	if len(sc.Tables) > 0 {
		res.Table = sc.Tables[0].DB + "." + sc.Tables[0].Table
	}
	obs.source, obs.hasSource, obs.wrote = src, true, true
	fail := func(err error) Result {
		obs.redisErr = err
		res.Err = err
		return res
	}
	var ids []string
	for _, tc := range sc.Tables {
		ids = append(ids, tablepolicy.TableID(tc.DB, tc.Table))
	}
	if err := h.store.AddToSet(ctx, tablepolicy.KnownTablesKey, ids...); err != nil {
		return fail(err)
	}

	if snapshotPhase(src.Snapshot) {
		// Announce each table for the snapshot's completion; if the snapshot's last record was already
		// seen, complete it here. A schema record marked "last" is the snapshot's last record when no
		// table had a row (or no data was read: no_data, recovery): it completes every announced table
		// as a data record marked "last" does. After an empty snapshot that removes what the tables no
		// longer hold; after a schema-only one it flushes the tables' cached rows (misses, not wrong
		// rows), the price of not telling the two apart.
		completed := 0
		announce := map[*tablepolicy.Table]string{} // the table → its fingerprint, if the record has one
		for _, tc := range sc.Tables {
			if t, ok := h.policy.Table(tc.DB, tc.Table); ok {
				announce[t] = tc.Fingerprint
			}
		}
		if db := debezium.ReadDDL(sc.DDL).DropDatabase; len(sc.Tables) == 0 && db != "" {
			// DROP DATABASE IF EXISTS of a captured database, before the CREATE of each of its tables: the
			// snapshot is a statement about every table of the database, so a known table that no
			// CREATE follows (a restored database without it) completes too, and its rows go.
			known, err := h.knownTables(ctx, db)
			if err != nil {
				return fail(err)
			}
			for _, t := range known {
				if _, ok := announce[t]; !ok {
					announce[t] = ""
				}
			}
		}
		for t, fp := range announce {
			if fp != "" {
				if err := h.store.SetFingerprint(ctx, t.SchemaKey(), t.Floor(src), fp); err != nil {
					return fail(err)
				}
			}
			lastSeen, err := h.store.SnapshotTable(ctx, h.policy.SnapshotKeys(src), tablepolicy.TableID(t.DB, t.Name))
			if err != nil {
				return fail(err)
			}
			if lastSeen {
				if _, err := h.raiseFloor(ctx, t, t.Floor(src), rowcache.FloorSnapshot, ""); err != nil {
					return fail(err)
				}
				completed++
			}
		}
		if src.Snapshot == "last" {
			announced, err := h.store.SnapshotLast(ctx, h.policy.SnapshotKeys(src))
			if err != nil {
				return fail(err)
			}
			for _, t := range h.cachedTables(announced) {
				if _, err := h.raiseFloor(ctx, t, t.Floor(src), rowcache.FloorSnapshot, ""); err != nil {
					return fail(err)
				}
				completed++
			}
		}
		obs.replied = time.Now()
		if completed > 0 {
			res.Outcome, res.Reason = Applied, "snapshot_sweep"
		} else {
			res.Outcome, res.Reason = Ignored, "snapshot_schema"
		}
		return res
	}

	targets, err := h.ddlTargets(ctx, sc)
	if err != nil {
		return fail(err)
	}
	raised, stale := 0, 0
	for _, t := range targets {
		r, err := h.raiseFloor(ctx, t, t.Floor(src), rowcache.FloorDDL, sc.DDL)
		if err != nil {
			return fail(err)
		}
		if r == rowcache.Stale {
			stale++ // a replay: a newer floor (and its sweep) already covers it
		} else {
			raised++
		}
	}
	for _, tc := range sc.Tables {
		if t, ok := h.policy.Table(tc.DB, tc.Table); ok && tc.Fingerprint != "" {
			if err := h.store.SetFingerprint(ctx, t.SchemaKey(), t.Floor(src), tc.Fingerprint); err != nil {
				return fail(err)
			}
		}
	}
	obs.replied = time.Now()
	switch {
	case raised > 0:
		res.Outcome, res.Reason = Applied, "ddl_sweep"
	case stale > 0:
		res.Outcome, res.Reason = Stale, "ddl"
	default:
		res.Outcome, res.Reason = Ignored, "ddl_no_rows"
	}
	return res
}

// ddlTargets are the cached tables a DDL statement may have removed or replaced rows of without row
// events, by statement:
//   - DROP TABLE, CREATE TABLE (a table re-created under a name whose drop was missed): the table;
//   - DROP DATABASE (no tableChanges): every known table of the database, from the include-list and
//     the registry of tables seen;
//   - ALTER TABLE that renames (RENAME TABLE a TO b, ALTER TABLE a RENAME TO b): both names, since
//     Debezium reports the new one only and the rows under both changed; with a partition clause (DROP,
//     TRUNCATE, EXCHANGE … WITH TABLE x: x too); or whose row shape changed (a column added, dropped,
//     retyped, a new key), compared with the fingerprint the table's previous schema record stored;
//     none stored: swept, to be safe;
//   - anything else (CREATE DATABASE, an ALTER that leaves the row shape as it was: ADD INDEX, ENGINE,
//     COMMENT): none.
func (h *Handler) ddlTargets(ctx context.Context, sc *debezium.SchemaChangeInfo) ([]*tablepolicy.Table, error) {
	stmt := debezium.ReadDDL(sc.DDL)
	var ids []string
	add := func(db, table, defaultDB string) {
		if db == "" {
			db = defaultDB
		}
		ids = append(ids, tablepolicy.TableID(db, table))
	}
	var targets []*tablepolicy.Table
	if len(sc.Tables) == 0 && stmt.DropDatabase != "" {
		known, err := h.knownTables(ctx, stmt.DropDatabase)
		if err != nil {
			return nil, err
		}
		targets = known
	}
	for _, tc := range sc.Tables {
		defaultDB := sc.DatabaseName
		if defaultDB == "" {
			defaultDB = tc.DB
		}
		switch tc.Type {
		case "DROP", "CREATE":
			add(tc.DB, tc.Table, "")
		case "ALTER":
			sweep := len(stmt.Renames) > 0 || stmt.Partition
			for _, r := range stmt.Renames {
				add(r.From.DB, r.From.Table, defaultDB)
				add(r.To.DB, r.To.Table, defaultDB)
			}
			for _, x := range stmt.Exchanged {
				add(x.DB, x.Table, defaultDB)
			}
			if !sweep {
				if t, ok := h.policy.Table(tc.DB, tc.Table); ok {
					_, fp, stored, err := h.store.Fingerprint(ctx, t.SchemaKey())
					if err != nil {
						return nil, err
					}
					sweep = !stored || fp != tc.Fingerprint || tc.Fingerprint == ""
				}
			}
			if sweep {
				add(tc.DB, tc.Table, "")
			}
		}
	}
	return append(targets, h.cachedTables(ids)...), nil
}

// knownTables are the cached tables of database db the function knows of: the include-list's, and
// those in the registry of tables seen in schema records and row changes.
func (h *Handler) knownTables(ctx context.Context, db string) ([]*tablepolicy.Table, error) {
	var ids []string
	for _, t := range h.policy.Listed(db) {
		ids = append(ids, tablepolicy.TableID(db, t))
	}
	known, err := h.store.SetMembers(ctx, tablepolicy.KnownTablesKey)
	if err != nil {
		return nil, err
	}
	for _, id := range known {
		if d, _, err := tablepolicy.ParseTableID(id); err == nil && d == db {
			ids = append(ids, id)
		}
	}
	return h.cachedTables(ids), nil
}

// cachedTables returns the cached tables among ids (tablepolicy.TableID), each once, in order.
func (h *Handler) cachedTables(ids []string) []*tablepolicy.Table {
	sort.Strings(ids)
	var out []*tablepolicy.Table
	for i, id := range ids {
		if i > 0 && ids[i-1] == id {
			continue
		}
		db, table, err := tablepolicy.ParseTableID(id)
		if err != nil {
			continue // not written by this version: nothing to complete
		}
		if t, ok := h.policy.Table(db, table); ok {
			out = append(out, t)
		}
	}
	return out
}

// raiseFloor raises t's floor to v and sweeps the table, counting and logging what it did.
func (h *Handler) raiseFloor(ctx context.Context, t *tablepolicy.Table, v rowcache.Version, why rowcache.FloorReason, ddl string) (rowcache.Result, error) {
	r, deleted, err := h.store.RaiseFloor(ctx, tableKeys(t), v, why)
	table := t.DB + "." + t.Name
	h.metrics.sweep(ctx, table, string(why), r, deleted)
	if err != nil {
		return r, fmt.Errorf("%s floor of %s: %w", why, table, err)
	}
	if r != rowcache.Stale {
		attrs := []slog.Attr{slog.String("table", table), slog.String("reason", string(why)), slog.String("floor", v.String()),
			slog.String("result", r.String()), slog.Int("deleted", deleted)}
		if ddl != "" {
			attrs = append(attrs, slog.String("ddl", truncateText(ddl, 300)))
		}
		h.log.LogAttrs(ctx, slog.LevelInfo, "table floor raised: older rows removed", attrs...)
	}
	return r, nil
}

// register adds t to the registry of known tables once per process (DROP DATABASE needs them when
// every table is cached).
func (h *Handler) register(ctx context.Context, t *tablepolicy.Table) error {
	id := tablepolicy.TableID(t.DB, t.Name)
	if _, ok := h.known.Load(id); ok {
		return nil
	}
	if err := h.store.AddToSet(ctx, tablepolicy.KnownTablesKey, id); err != nil {
		return err
	}
	h.known.Store(id, struct{}{})
	return nil
}

// tableKeys names the keys of t for a sweep: whatever its SCAN glob matches, only the keys the table
// owns exactly (Table.OwnsKey) are examined, so a sweep never touches another table's row.
func tableKeys(t *tablepolicy.Table) rowcache.TableKeys {
	return rowcache.TableKeys{FloorKey: t.FloorKey, Pattern: t.Pattern, Owns: t.OwnsKey}
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
