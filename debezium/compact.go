package debezium

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The compact form is what Debezium's ExtractNewRecordState SMT ("unwrap") publishes with
// delete.tombstone.handling.mode=rewrite and add.fields=CompactAddFields: the row image itself (the
// after image; the before image for a delete) with the change's metadata appended as "__"-prefixed
// members. Decode tells it from the full envelope by its "__op" member, which no envelope has, so
// both forms can arrive on one subscription (during a migration) with no configuration.
//
// Only the members below are metadata; every other member, "__"-prefixed or not, is a column. Debezium
// refuses a table whose columns collide with the added fields (the SMT cannot add a field twice), so a
// metadata name is never also a column.
const (
	compactOp          = "__op"
	compactDeleted     = "__deleted"
	compactName        = "__name"
	compactDB          = "__db"
	compactTable       = "__table"
	compactFile        = "__file"
	compactPos         = "__pos"
	compactRow         = "__row"
	compactSnapshot    = "__snapshot"
	compactSourceTsMs  = "__source_ts_ms"
	compactTotalOrder  = "__total_order"
	compactEnvelopeTs  = "__ts_ms"
	compactGTID        = "__gtid"
	compactTxID        = "__id"
	compactDataCollOrd = "__data_collection_order"
)

// CompactAddFields is the SMT's add.fields list the compact form needs: everything the function reads
// from a full envelope's op, source and transaction blocks. name (topic.prefix) identifies a snapshot;
// total_order tells apart the changes of a compressed transaction (null without transaction metadata).
const CompactAddFields = "op,name,db,table,file,pos,row,snapshot,source.ts_ms,total_order"

// compactMeta are the metadata members of the compact form, as decodeCompact reads them.
var compactMeta = map[string]bool{
	compactOp: true, compactDeleted: true, compactName: true, compactDB: true, compactTable: true,
	compactFile: true, compactPos: true, compactRow: true, compactSnapshot: true, compactSourceTsMs: true,
	compactTotalOrder: true, compactEnvelopeTs: true, compactGTID: true, compactTxID: true, compactDataCollOrd: true,
}

// decodeCompact decodes a compact-form change: raw is the flat object (the payload, with schemas on),
// types the logical types of its fields.
func decodeCompact(raw json.RawMessage, types map[string]logicalType) (*Event, error) {
	all, err := splitObject(raw)
	if err != nil {
		return nil, invalid("compact event: %v", err)
	}
	meta := map[string]json.RawMessage{}
	row := make(Row, 0, len(all))
	for _, c := range all {
		if compactMeta[c.Name] {
			meta[c.Name] = c.Value
			continue
		}
		if lt, ok := types[c.Name]; ok {
			v, err := lt.convert(c.Value)
			if err != nil {
				return nil, invalid("compact event: column %q: %v", c.Name, err)
			}
			c.Value = v
		}
		row = append(row, c)
	}
	var op string
	if err := json.Unmarshal(meta[compactOp], &op); err != nil || len(op) != 1 || !bytes.ContainsAny([]byte("cudr"), op) {
		// A truncate has no row, so the SMT drops it: the shipped configuration routes truncates
		// around the SMT and they arrive in the full form.
		return nil, invalid("compact event: %s %s is not one of c, u, d, r", compactOp, truncate(string(meta[compactOp]), 40))
	}
	ev := &Event{Kind: Change, Op: Op(op[0])}
	if d, ok := meta[compactDeleted]; ok {
		var deleted string
		if err := json.Unmarshal(d, &deleted); err != nil || (deleted != "true" && deleted != "false") {
			return nil, invalid("compact event: %s %s is not \"true\" or \"false\"", compactDeleted, truncate(string(d), 40))
		}
		if (deleted == "true") != (ev.Op == Delete) {
			return nil, invalid("compact event: %s %s with %s %q", compactDeleted, deleted, compactOp, op)
		}
	}
	if ev.Op == Delete {
		ev.Before = row
	} else {
		ev.After = row
	}

	src := Source{}
	str := func(name string, required bool) (string, error) {
		v, ok := meta[name]
		if !ok || isNull(v) {
			if required {
				return "", invalid("compact event without %s (add it to the SMT's add.fields: %s)", name, CompactAddFields)
			}
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", invalid("compact event: %s: %v", name, err)
		}
		return s, nil
	}
	num := func(name string, required bool) (int64, bool, error) {
		v, ok := meta[name]
		if !ok || isNull(v) {
			if required {
				return 0, false, invalid("compact event without %s (add it to the SMT's add.fields: %s)", name, CompactAddFields)
			}
			return 0, false, nil
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return 0, false, invalid("compact event: %s %s is not an integer", name, truncate(string(v), 40))
		}
		return n, true, nil
	}
	if src.Name, err = str(compactName, true); err != nil {
		return nil, err
	}
	if src.DB, err = str(compactDB, true); err != nil {
		return nil, err
	}
	if src.Table, err = str(compactTable, true); err != nil {
		return nil, err
	}
	if src.DB == "" || src.Table == "" {
		return nil, invalid("source has no db or table")
	}
	if src.File, err = str(compactFile, true); err != nil {
		return nil, err
	}
	if src.FileSeq, err = FileSequence(src.File); err != nil {
		return nil, err
	}
	pos, _, err := num(compactPos, true)
	if err != nil {
		return nil, err
	}
	if pos < 0 {
		return nil, invalid("source.pos missing or negative")
	}
	src.Pos = uint64(pos)
	r, _, err := num(compactRow, false)
	if err != nil {
		return nil, err
	}
	if r < 0 {
		return nil, invalid("source.row negative")
	}
	src.Row = uint64(r)
	if src.Snapshot, err = str(compactSnapshot, false); err != nil {
		return nil, err
	}
	if src.GTID, err = str(compactGTID, false); err != nil {
		return nil, err
	}
	if src.TsMs, _, err = num(compactSourceTsMs, false); err != nil {
		return nil, err
	}
	ev.Source = src
	if ev.TsMs, _, err = num(compactEnvelopeTs, false); err != nil {
		return nil, err
	}
	order, hasOrder, err := num(compactTotalOrder, false)
	if err != nil {
		return nil, err
	}
	if hasOrder {
		if order < 1 {
			return nil, invalid("transaction block without a positive total_order")
		}
		ev.Transaction = &TransactionInfo{TotalOrder: uint64(order)}
		if ev.Transaction.ID, err = str(compactTxID, false); err != nil {
			return nil, err
		}
		dco, _, err := num(compactDataCollOrd, false)
		if err != nil {
			return nil, err
		}
		if dco > 0 {
			ev.Transaction.DataCollectionOrder = uint64(dco)
		}
	}
	return ev, nil
}
