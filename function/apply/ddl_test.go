package apply_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// The real DDL statements (testdata/debezium/real) remove rows without row events. Their schema
// changes come on their own topic, unordered with the tables' row changes, so each case is run with
// the statement delivered before and after the row changes around it.
func TestDDLRemovesRowsWithoutRowEvents(t *testing.T) {
	all := realMessages(t)
	drop := one(t, all, "drop", "local", `"type":"DROP"`)                   // DROP TABLE doomed at 86598
	rename := one(t, all, "rename", "local", "RENAME TABLE")                // renamed_from → renamed_to at 83336
	renamedInsert := one(t, all, "rename", ".renamed_to")                   // INSERT INTO renamed_to at 83602
	partition := one(t, all, "truncate-partition", "local", "PARTITION p0") // parted at 88828
	addColumn := one(t, all, "add-column", "local", "ADD COLUMN")           // customers at 77403
	updateAfter := one(t, all, "add-column", ".customers")                  // UPDATE customers at 77716
	cases := []struct {
		name   string
		ddl    realMessage
		before []cachedRow // rows cached by changes before the statement
		after  realMessage // a row change after the statement
		gone   []string
		kept   map[string]string
	}{
		{"DROP TABLE", drop, []cachedRow{{"doomed", 1, `{"id":1}`}, {"doomed", 7, `{"id":7}`}}, realMessage{},
			[]string{"shop.doomed:1", "shop.doomed:7"}, nil},
		{"RENAME TABLE", rename, []cachedRow{{"renamed_from", 1, `{"id":1}`}, {"renamed_to", 9, `{"id":9}`}}, renamedInsert,
			[]string{"shop.renamed_from:1", "shop.renamed_to:9"}, map[string]string{"shop.renamed_to:2": `{"id":2}`}},
		{"TRUNCATE PARTITION", partition, []cachedRow{{"parted", 1, `{"id":1,"v":1}`}, {"parted", 200, `{"id":200,"v":2}`}}, realMessage{},
			[]string{"shop.parted:1", "shop.parted:200"}, nil},
		{"ADD COLUMN", addColumn, []cachedRow{{"customers", 1, `{"id":1,"name":"before"}`}, {"customers", 2, `{"id":2,"name":"before"}`}}, updateAfter,
			[]string{"shop.customers:2"}, map[string]string{"shop.customers:1": `"note":"added"`}},
	}
	for _, c := range cases {
		for _, ddlFirst := range []bool{false, true} {
			name := c.name + "/statement after the rows"
			if ddlFirst {
				name = c.name + "/statement before the rows"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				ctx := context.Background()
				foreign := "shop." + c.before[0].table + ":foreign"
				e.rdb.Set(ctx, foreign, "0.25", 0) // another application's key under the table's pattern
				deliverRows := func(want string) {
					for i, r := range c.before {
						e.mustDeliver(event("shop", r.table, 'c', 1, uint64(20000+i), 0, "", r.row), fmt.Sprintf(`{"id":%d}`, r.id), want)
					}
				}
				if ddlFirst {
					e.mustDeliverReal(c.ddl, "applied: ddl_sweep")
					if c.after.Data != nil {
						e.mustDeliverReal(c.after, "")
					}
					deliverRows("stale: ddl") // changes from before the statement, delivered after it
				} else {
					deliverRows("applied")
					if c.after.Data != nil {
						e.mustDeliverReal(c.after, "")
					}
					e.mustDeliverReal(c.ddl, "applied: ddl_sweep")
				}
				for _, k := range c.gone {
					if got := e.get(k); got != "" {
						t.Errorf("%s still cached: %q", k, got)
					}
				}
				for k, w := range c.kept {
					if got := e.get(k); !strings.Contains(got, w) {
						t.Errorf("%s = %q, want it to contain %q", k, got, w)
					}
				}
				if got := e.rdb.Get(ctx, foreign).Val(); got != "0.25" {
					t.Errorf("the DDL sweep touched a foreign value: %q", got)
				}
				// A replay of the statement is harmless: rows changed after it stay.
				e.mustDeliverReal(c.ddl, "")
				for k, w := range c.kept {
					if got := e.get(k); !strings.Contains(got, w) {
						t.Errorf("after a replay of the statement %s = %q, want it to contain %q", k, got, w)
					}
				}
			})
		}
	}
}

type cachedRow struct {
	table string
	id    int
	row   string
}

// An ALTER that leaves the row shape as the snapshot's CREATE recorded it (an index, a comment)
// sweeps nothing; one that changes it sweeps the table.
func TestAlterSweepsOnlyWhenTheRowShapeChanged(t *testing.T) {
	all := realMessages(t)
	create := one(t, all, "snapshot", "local", "CREATE TABLE `customers`")
	addColumn := one(t, all, "add-column", "local", "ADD COLUMN")
	// The same table definition as the snapshot's CREATE, under an ALTER … ADD INDEX at the ADD
	// COLUMN's position: what Debezium publishes for a statement that changes no column.
	addIndex := addColumn
	def := string(create.Data[strings.Index(string(create.Data), `"table":{`):])
	addIndex.Data = []byte(string(addColumn.Data[:strings.Index(string(addColumn.Data), `"table":{`)]) + def)
	addIndex.Data = []byte(strings.Replace(string(addIndex.Data), "ALTER TABLE customers ADD COLUMN note VARCHAR(20) NULL", "ALTER TABLE customers ADD INDEX (name)", 1))
	addIndex.File += "~add-index"

	e := newEnv(t)
	e.mustDeliverReal(create, "ignored: snapshot_schema")
	e.mustDeliver(event("shop", "customers", 'c', 1, 9000, 0, "", `{"id":1}`), `{"id":1}`, "applied")
	e.mustDeliverReal(addIndex, "ignored: ddl_no_rows")
	if e.get("shop.customers:1") == "" {
		t.Fatal("an ALTER that changes no column swept the table")
	}
	e.mustDeliverReal(addColumn, "applied: ddl_sweep")
	if got := e.get("shop.customers:1"); got != "" {
		t.Fatalf("ADD COLUMN left %q", got)
	}
	// Without a stored fingerprint (schema changes turned on after the snapshot) an ALTER sweeps.
	e2 := newEnv(t)
	e2.mustDeliver(event("shop", "customers", 'c', 1, 9000, 0, "", `{"id":1}`), `{"id":1}`, "applied")
	e2.mustDeliverReal(addIndex, "applied: ddl_sweep")
}

// DROP DATABASE has no tableChanges: every known table of the database goes, known from the
// include-list or from the registry of tables the function has seen.
func TestDropDatabase(t *testing.T) {
	all := realMessages(t)
	ddl := one(t, all, "drop", "local", `"type":"DROP"`)
	dropDB := ddl
	dropDB.Data = []byte(strings.NewReplacer(`"ddl":"DROP TABLE `+"`shop`.`doomed`"+`"`, `"ddl":"DROP DATABASE shop"`,
		`"tableChanges":[{"type":"DROP","id":"\"shop\".\"doomed\"","table":null}]`, `"tableChanges":[]`,
		`"table":"doomed"`, `"table":null`).Replace(string(ddl.Data)))
	dropDB.File += "~drop-database"
	for _, listed := range []bool{false, true} {
		e := newEnv(t, withPolicy(func(c *tablepolicy.Config) {
			if listed {
				c.Tables = []string{"shop.a", "shop.b", "other.c"}
			}
		}))
		for _, tb := range []string{"a", "b"} {
			e.mustDeliver(event("shop", tb, 'c', 1, 500, 0, "", `{"id":1}`), `{"id":1}`, "applied")
		}
		e.mustDeliver(event("other", "c", 'c', 1, 600, 0, "", `{"id":1}`), `{"id":1}`, "applied")
		if listed {
			// Rows this process never saw are found through the include-list.
			e.rdb.Set(context.Background(), "shop.b:2", "0.0.1.400.0 {\"id\":2}", 0)
		}
		e.mustDeliverReal(dropDB, "applied: ddl_sweep")
		for _, k := range []string{"shop.a:1", "shop.b:1", "shop.b:2"} {
			if got := e.get(k); got != "" {
				t.Errorf("listed=%v: %s still cached: %q", listed, k, got)
			}
		}
		if e.get("other.c:1") == "" {
			t.Errorf("listed=%v: another database's row was removed", listed)
		}
	}
}

// A CREATE DATABASE, or a schema change of a table that is not cached, changes nothing.
func TestSchemaChangesThatRemoveNothing(t *testing.T) {
	all := realMessages(t)
	create := one(t, all, "snapshot", "local", "CREATE DATABASE `shop`")
	streamed := create
	streamed.Data = []byte(strings.Replace(string(create.Data), `"snapshot":"true"`, `"snapshot":"false"`, 1))
	e := newEnv(t, withPolicy(func(c *tablepolicy.Config) { c.Tables = []string{"shop.customers"} }))
	e.mustDeliver(event("shop", "customers", 'c', 1, 500, 0, "", `{"id":1}`), `{"id":1}`, "applied")
	e.mustDeliverReal(streamed, "ignored: ddl_no_rows")
	e.mustDeliverReal(one(t, all, "drop", "local", `"type":"DROP"`), "ignored: ddl_no_rows") // doomed is not cached
	if e.get("shop.customers:1") == "" {
		t.Fatal("removed")
	}
}

// A table swapped in by RENAME TABLE a TO a_old, a_new TO a: Debezium publishes one record per pair,
// each under its new name only. Every cached row of a (now holding a_new's rows) is removed.
func TestRenameSwap(t *testing.T) {
	all := realMessages(t)
	rename := one(t, all, "rename", "local", "RENAME TABLE")
	pair := func(from, to string, pos int) realMessage {
		m := rename
		m.Data = []byte(strings.NewReplacer("RENAME TABLE renamed_from TO renamed_to", "RENAME TABLE `"+from+"` TO `"+to+"`",
			`"id":"\"shop\".\"renamed_to\""`, `"id":"\"shop\".\"`+to+`\""`, `"table":"renamed_to"`, `"table":"`+to+`"`).Replace(string(rename.Data)))
		m.Data = regexp.MustCompile(`"pos":\d+`).ReplaceAll(m.Data, []byte(fmt.Sprintf(`"pos":%d`, pos)))
		m.File += "~" + to
		return m
	}
	e := newEnv(t)
	e.mustDeliver(event("shop", "a", 'c', 1, 500, 0, "", `{"id":1}`), `{"id":1}`, "applied")
	e.mustDeliver(event("shop", "a_new", 'c', 1, 600, 0, "", `{"id":2}`), `{"id":2}`, "applied")
	e.mustDeliverReal(pair("a_new", "a", 190001), "applied: ddl_sweep")
	e.mustDeliverReal(pair("a", "a_old", 190000), "applied: ddl_sweep")
	for _, k := range []string{"shop.a:1", "shop.a_new:2"} {
		if got := e.get(k); got != "" {
			t.Errorf("%s still cached after the swap: %q", k, got)
		}
	}
	// A change of the new a, after the swap, is kept.
	e.mustDeliver(event("shop", "a", 'u', 1, 190100, 0, `{"id":2}`, `{"id":2,"v":1}`), `{"id":2}`, "applied")
}
