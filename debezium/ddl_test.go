package debezium

import (
	"reflect"
	"testing"
)

func TestReadDDL(t *testing.T) {
	n := func(db, table string) TableName { return TableName{DB: db, Table: table} }
	cases := map[string]Statement{
		"DROP DATABASE shop":                                       {DropDatabase: "shop"},
		"drop schema if exists `my db`":                            {DropDatabase: "my db"},
		"DROP DATABASE IF EXISTS `shop`":                           {DropDatabase: "shop"},
		"DROP TABLE `shop`.`doomed`":                               {},
		"CREATE DATABASE shop":                                     {},
		"RENAME TABLE renamed_from TO renamed_to":                  {Renames: []Rename{{n("", "renamed_from"), n("", "renamed_to")}}},
		"RENAME TABLE `t.2` TO `new.t.2`":                          {Renames: []Rename{{n("", "t.2"), n("", "new.t.2")}}},
		"rename table a to a_old, a_new to a":                      {Renames: []Rename{{n("", "a"), n("", "a_old")}, {n("", "a_new"), n("", "a")}}},
		"RENAME TABLE shop.a TO other.`b``c`":                      {Renames: []Rename{{n("shop", "a"), n("other", "b`c")}}},
		"ALTER TABLE a RENAME TO b":                                {Renames: []Rename{{n("", "a"), n("", "b")}}},
		"ALTER TABLE `s`.`a` ADD COLUMN x INT, RENAME AS s.b":      {Renames: []Rename{{n("s", "a"), n("s", "b")}}},
		"ALTER TABLE a RENAME b":                                   {Renames: []Rename{{n("", "a"), n("", "b")}}},
		"ALTER TABLE a RENAME COLUMN x TO y":                       {},
		"ALTER TABLE a RENAME INDEX i TO j":                        {},
		"ALTER TABLE parted TRUNCATE PARTITION p0":                 {Partition: true},
		"ALTER ONLINE TABLE IF EXISTS t DROP PARTITION p0, p1":     {Partition: true},
		"ALTER TABLE t EXCHANGE PARTITION p0 WITH TABLE `shop`.t2": {Partition: true, Exchanged: []TableName{n("shop", "t2")}},
		"ALTER TABLE t ADD COLUMN `partition` INT":                 {},
		"ALTER TABLE t ADD COLUMN partition_key INT":               {},
		"ALTER TABLE t COMMENT 'rename to x; partition'":           {},
		"ALTER TABLE customers ADD COLUMN note VARCHAR(20) NULL":   {},
		"/* a comment */ RENAME TABLE a TO b -- done":              {Renames: []Rename{{n("", "a"), n("", "b")}}},
		"":                  {},
		"RENAME TABLE":      {},
		"RENAME TABLE a TO": {},
		"ALTER TABLE":       {},
		"DROP DATABASE":     {},
		"`unclosed":         {},
	}
	for ddl, want := range cases {
		if got := ReadDDL(ddl); !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", ddl, got, want)
		}
	}
}

func FuzzReadDDL(f *testing.F) {
	for _, s := range []string{"RENAME TABLE a TO b, c TO d", "ALTER TABLE `a` EXCHANGE PARTITION p WITH TABLE b", "DROP SCHEMA IF EXISTS x", "'unclosed", "/* x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ddl string) {
		st := ReadDDL(ddl) // never panics
		for _, r := range st.Renames {
			if r.From.Table == "" || r.To.Table == "" {
				t.Fatalf("%q: rename with an empty name: %+v", ddl, r)
			}
		}
	})
}
