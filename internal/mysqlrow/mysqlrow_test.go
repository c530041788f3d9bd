package mysqlrow_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

const typesTable = "CREATE TABLE types (" +
	"id INT UNSIGNED NOT NULL, ti TINYINT, b BOOLEAN, si SMALLINT UNSIGNED, bi BIGINT, ubi BIGINT UNSIGNED," +
	"d DECIMAL(10,2), d0 DECIMAL(5,0), f FLOAT, db DOUBLE," +
	"dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts0 TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, ts6 TIMESTAMP(6) NULL," +
	"dd DATE, tm TIME, tm6 TIME(6), y YEAR," +
	"c CHAR(4), vc VARCHAR(40), tx TEXT, bin BINARY(4), vb VARBINARY(8), bl BLOB," +
	"bt1 BIT(1), bt10 BIT(10), e ENUM('small','it''s big'), st SET('a','b','c'), js JSON," +
	"PRIMARY KEY (id))"

// TypesRow is one row with every supported type, and TypesJSON the JSON Debezium sends for it.
const typesRow = "INSERT INTO types VALUES (1, -5, TRUE, 65535, -9000000000, 18446744073709551615," +
	"'12.3', 42, 3.14159274, 0.1, '2024-01-02 03:04:05', '2024-01-02 03:04:05.120', '2024-01-02 03:04:05.123456'," +
	"'2024-01-02 03:04:05', '2024-01-02 03:04:05.120', '2024-01-02 03:04:05.123456', '2024-01-02', '-01:02:03', '12:00:00.5', 2024," +
	"'ab', 'h\\\"é\\n<>', 'text', X'0102', X'00ff', X'cafe', b'1', b'1000000001', 'it''s big', 'a,c', '{\"b\": 1, \"a\": [true, null]}')"

const typesJSON = `{"id":1,"ti":-5,"b":1,"si":65535,"bi":-9000000000,"ubi":-1,"d":"12.30","d0":"42","f":3.1415927,"db":0.1,` +
	`"dt0":1704164645000,"dt3":1704164645120,"dt6":1704164645123456,"ts0":"2024-01-02T03:04:05Z","ts3":"2024-01-02T03:04:05.120Z","ts6":"2024-01-02T03:04:05.123456Z",` +
	`"dd":19724,"tm":-3723000000,"tm6":43200500000,"y":2024,"c":"ab","vc":"h\"é\n<>","tx":"text","bin":"AQIAAA==","vb":"AP8=","bl":"yv4=",` +
	`"bt1":true,"bt10":"AQI=","e":"it's big","st":"a,c","js":"{\"b\": 1, \"a\": [true, null]}"}`

const nullsRow = "INSERT INTO types (id) VALUES (2)"

func TestScanRowMatchesDebezium(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("app")
	srv.Exec(db, typesTable, typesRow, nullsRow)
	ctx := context.Background()
	tbl, err := mysqlrow.LoadTable(ctx, db, "app", "types")
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.PrimaryKey) != 1 || tbl.PrimaryKey[0] != "id" {
		t.Fatalf("primary key %v", tbl.PrimaryKey)
	}
	got := scanAll(t, db, tbl)
	if got[0] != typesJSON {
		t.Errorf("row 1:\n got %s\nwant %s", got[0], typesJSON)
	}
	if want := `{"id":2,"ti":null,`; got[1][:len(want)] != want {
		t.Errorf("row 2: %s", got[1])
	}
}

func scanAll(t *testing.T, db *sql.DB, tbl *mysqlrow.Table) []string {
	t.Helper()
	rows, err := db.Query("SELECT " + tbl.SelectList() + " FROM " + tbl.QualifiedName() + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		r, err := tbl.ScanRow(rows)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(r.AppendJSON(nil, nil)))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoadTableErrors(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("app")
	srv.Exec(db, "CREATE TABLE geo (id INT PRIMARY KEY, g POINT)", "CREATE TABLE l1 (id INT PRIMARY KEY, s VARCHAR(3) CHARACTER SET latin1)")
	ctx := context.Background()
	for _, name := range []string{"geo", "l1", "missing"} {
		if _, err := mysqlrow.LoadTable(ctx, db, "app", name); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	local, err := sql.Open("mysql", "root@tcp("+srv.Addr()+")/app?time_zone=%27-05:00%27")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if _, err := mysqlrow.LoadTable(ctx, local, "app", "geo"); err == nil {
		t.Error("a session not in UTC was accepted")
	}
}

func TestCheckDSN(t *testing.T) {
	for dsn, ok := range map[string]bool{
		"root@tcp(127.0.0.1:3306)/app":                                true,
		"root@tcp(127.0.0.1:3306)/app?parseTime=true":                 false,
		"root@tcp(127.0.0.1:3306)/app?time_zone=%27%2B00%3A00%27":     true,
		"root@tcp(127.0.0.1:3306)/app?time_zone=%27Europe%2FParis%27": false,
		"not a dsn": false,
	} {
		out, err := mysqlrow.CheckDSN(dsn)
		if (err == nil) != ok {
			t.Errorf("%s: %q %v", dsn, out, err)
		}
	}
}

// A snapshot's TIMESTAMP(n) strings drop trailing fraction zeros (testdata/debezium/real's snapshot
// reads of customers); the same instant is the same row. Nothing else is.
func TestSameRow(t *testing.T) {
	tbl := &mysqlrow.Table{DB: "shop", Name: "customers", Columns: []mysqlrow.Column{
		{Name: "id", DataType: "int"}, {Name: "at", DataType: "timestamp", FSP: 3}, {Name: "s", DataType: "varchar"}}}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{`{"id":1,"at":"2026-01-02T03:04:07.100Z","s":"x"}`, `{"id":1,"at":"2026-01-02T03:04:07.1Z","s":"x"}`, true},
		{`{"id":1,"at":"2026-01-02T03:04:06.000Z","s":"x"}`, `{"id":1,"at":"2026-01-02T03:04:06Z","s":"x"}`, true},
		{`{"id":1,"at":null,"s":"x"}`, `{"id":1,"at":null,"s":"x"}`, true},
		{`{"id":1,"at":"2026-01-02T03:04:07.100Z","s":"x"}`, `{"id":1,"at":"2026-01-02T03:04:07.101Z","s":"x"}`, false},
		{`{"id":1,"at":"2026-01-02T03:04:07.100Z","s":"x"}`, `{"id":1,"at":null,"s":"x"}`, false},
		{`{"id":1,"at":"2026-01-02T03:04:07Z","s":"2026-01-02T03:04:07.0Z"}`, `{"id":1,"at":"2026-01-02T03:04:07Z","s":"2026-01-02T03:04:07Z"}`, false}, // not a TIMESTAMP column
		{`{"id":1,"at":"2026-01-02T03:04:07Z","s":"x"}`, `{"at":"2026-01-02T03:04:07Z","id":1,"s":"x"}`, false},
		{`{"id":1,"at":"2026-01-02T03:04:07Z","s":"x"}`, `{"id":1,"at":"2026-01-02T03:04:07Z"}`, false},
		{`{"id":1}`, `not json`, false},
	} {
		if got := tbl.SameRow([]byte(tc.a), []byte(tc.b)); got != tc.same {
			t.Errorf("SameRow(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}
