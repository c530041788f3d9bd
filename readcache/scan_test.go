package readcache

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// typesRow is shop.types, the demo table of every column type the pipeline encodes
// (local/debeziumserver/fixtures_test.go), as a service would declare it.
type typesRow struct {
	ID   uint32          `db:"id"`
	Ti   *int8           `db:"ti"`
	B    *bool           `db:"b"`
	Si   *uint16         `db:"si"`
	Mi   *uint32         `db:"mi"`
	I    *uint32         `db:"i"`
	Bi   *int64          `db:"bi"`
	Ubi  *uint64         `db:"ubi"`
	D    *string         `db:"d"`
	D0   *string         `db:"d0"`
	Dn   *string         `db:"dn"`
	F    *float32        `db:"f"`
	Db   *float64        `db:"db"`
	Dt0  *time.Time      `db:"dt0"`
	Dt3  *time.Time      `db:"dt3"`
	Dt6  *time.Time      `db:"dt6"`
	Ts0  *time.Time      `db:"ts0"`
	Ts3  *time.Time      `db:"ts3"`
	Ts6  *time.Time      `db:"ts6"`
	Dd   *time.Time      `db:"dd"`
	Tm   *time.Duration  `db:"tm"`
	Tm6  *time.Duration  `db:"tm6"`
	Y    *int16          `db:"y"`
	C    *string         `db:"c"`
	Vc   *string         `db:"vc"`
	Tx   *string         `db:"tx"`
	Bin  []byte          `db:"bin"`
	Vb   []byte          `db:"vb"`
	Bl   []byte          `db:"bl"`
	Bt1  *bool           `db:"bt1"`
	Bt10 []byte          `db:"bt10"`
	E    *string         `db:"e"`
	St   *string         `db:"st"`
	Js   json.RawMessage `db:"js"`
}

// The rows real Debezium Server published for shop.types (testdata/debezium/real), and the statements
// that made them (local/debeziumserver/fixtures_test.go, steps "snapshot" and "insert").
// typesFixtures are named by what they hold, not their number: a recapture renumbers the files (each
// capture's sequence starts with however many schema records its snapshot made).
var typesFixtures = []struct {
	file, insert string
}{
	{"snapshot-types-r.json", "INSERT INTO types (id) VALUES (1)"},
	{"insert-types-c.json", "INSERT INTO types VALUES (2, -128, TRUE, 65535, 16777215, 4294967295, -9000000000, 18446744073709551615," +
		"'-12.3', 42, '-12345678901234567890.0123456789', 3.14159274, 0.30000000000000004, '2024-01-02 03:04:05', '1969-12-31 23:59:59.999', '2024-01-02 03:04:05.123456'," +
		"'2024-01-02 03:04:05', '2024-01-02 03:04:05.120', '2038-01-19 03:14:07.999999', '1960-01-02', '-838:59:59', '12:00:00.000005', 1901," +
		"'ab ', 'h\"é\\n\\t<>\\\\', REPEAT('x', 300), X'0100', X'00ff00', X'cafe', b'0', b'1000000001', 'it''s big', 'a,b,c', '{\"b\": 1, \"a\": [true, null, 1.5e300]}')"},
	{"insert-types-c.json#2", "INSERT INTO types (id, f, db, e, st, bt10) VALUES (3, -0.000001, 1e20, 'small', '', b'0')"},
}

// realFixture reads the recorded event whose file name, without its sequence number, is name; "#n"
// picks the nth of several (in capture order).
func realFixture(t *testing.T, name string) []byte {
	t.Helper()
	suffix, nth, _ := strings.Cut(name, "#")
	n := 1
	if nth != "" {
		var err error
		if n, err = strconv.Atoi(nth); err != nil {
			t.Fatalf("fixture %q: %v", name, err)
		}
	}
	files := realFixtures(t, suffix)
	if len(files) < n {
		t.Fatalf("fixture %q: %d recorded events end in -%s", name, len(files), suffix)
	}
	b, err := os.ReadFile(files[n-1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// realFixtures lists the recorded events whose names end in "-"+suffix, in capture order.
func realFixtures(t *testing.T, suffix string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "debezium", "real", "*-"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// typesTable creates shop.types with the DDL Debezium recorded for it and the fixtures' rows, and
// returns each row's Debezium after image by id.
func (f *fixture) typesTable(t *testing.T) map[uint32]debezium.Row {
	t.Helper()
	var ddl string
	for _, name := range realFixtures(t, "snapshot-schema-change.json") {
		var ev struct{ DDL string }
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ev.DDL, "CREATE TABLE `types`") {
			ddl = ev.DDL
		}
	}
	if ddl == "" {
		t.Fatal("no CREATE TABLE `types` among the fixtures")
	}
	f.my.Exec(f.db, ddl)
	rows := map[uint32]debezium.Row{}
	for _, fx := range typesFixtures {
		f.my.Exec(f.db, fx.insert)
		ev, err := debezium.Decode(realFixture(t, fx.file))
		if err != nil {
			t.Fatal(err)
		}
		id, ok := ev.After.Get("id")
		if !ok {
			t.Fatalf("%s: no id", fx.file)
		}
		n, err := strconv.ParseUint(string(id), 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		rows[uint32(n)] = ev.After
	}
	return rows
}

// scanned is the row as database/sql scans it from MariaDB into typesRow's types (binary protocol,
// parseTime): the expected values. database/sql cannot scan TIME into a time.Duration, BIT(1) into a
// bool nor NULL into a json.RawMessage, so those are converted here from what it returns.
func scanned(t *testing.T, db *sql.DB, id uint32) typesRow {
	t.Helper()
	var r typesRow
	var tm, tm6 *string
	var bt1, js []byte
	err := db.QueryRow("SELECT id, ti, b, si, mi, i, bi, ubi, d, d0, dn, f, db, dt0, dt3, dt6, ts0, ts3, ts6, dd, tm, tm6, y, c, vc, tx, bin, vb, bl, bt1, bt10, e, st, js FROM types WHERE id = ?", id).Scan(
		&r.ID, &r.Ti, &r.B, &r.Si, &r.Mi, &r.I, &r.Bi, &r.Ubi, &r.D, &r.D0, &r.Dn, &r.F, &r.Db, &r.Dt0, &r.Dt3, &r.Dt6, &r.Ts0, &r.Ts3, &r.Ts6, &r.Dd,
		&tm, &tm6, &r.Y, &r.C, &r.Vc, &r.Tx, &r.Bin, &r.Vb, &r.Bl, &bt1, &r.Bt10, &r.E, &r.St, &js)
	if err != nil {
		t.Fatal(err)
	}
	r.Tm, r.Tm6, r.Js = mysqlTime(t, tm), mysqlTime(t, tm6), js
	if bt1 != nil {
		b := bt1[0] != 0
		r.Bt1 = &b
	}
	return r
}

// mysqlTime reads "[-]HHH:MM:SS[.ffffff]" as MySQL prints TIME.
func mysqlTime(t *testing.T, s *string) *time.Duration {
	t.Helper()
	if s == nil {
		return nil
	}
	v := strings.TrimPrefix(*s, "-")
	var h, m, sec, us int64
	hms, frac, _ := strings.Cut(v, ".")
	p := strings.Split(hms, ":")
	h, _ = strconv.ParseInt(p[0], 10, 64)
	m, _ = strconv.ParseInt(p[1], 10, 64)
	sec, _ = strconv.ParseInt(p[2], 10, 64)
	if frac != "" {
		us, _ = strconv.ParseInt((frac + "000000")[:6], 10, 64)
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond
	if *s != v {
		d = -d
	}
	return &d
}

// A row as Debezium encoded it and the function cached it, and the same row filled from the database,
// scan into the Go values database/sql scans from MariaDB, for every column type of the demo schema,
// NULLs and extremes included.
func TestScanGivesTheValuesDatabaseSQLScans(t *testing.T) {
	f := newFixture(t)
	rows := f.typesTable(t)
	ctx := context.Background()
	c := f.client(nil)
	tbl, _ := c.policy.Table("shop", "types")
	parsed, err := sql.Open("mysql", strings.Replace(f.my.DSN("shop"), "parseTime=false", "parseTime=true", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer parsed.Close()

	cachedValues := map[uint32]map[string]any{}
	for id, after := range rows {
		key, err := tbl.Key(debezium.Row{{Name: "id", Value: json.RawMessage(strconv.FormatUint(uint64(id), 10))}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Upsert(ctx, key, tbl.FloorKey, rowcache.Version{File: 1, Pos: uint64(id)}, tbl.RowJSON(after)); err != nil {
			t.Fatal(err)
		}
		want := scanned(t, parsed, id)
		row, err := c.Get(ctx, "shop.types", id)
		if err != nil || row.From != FromRedis {
			t.Fatalf("Get(%d): from %s, %v; want the cached row", id, row.From, err)
		}
		var got typesRow
		if err := row.Scan(&got); err != nil {
			t.Fatalf("Scan row %d: %v", id, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("row %d from the cache (Debezium's encoding):\n got %s\nwant %s", id, show(got), show(want))
		}
		if cachedValues[id], err = row.Values(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.rdb.Del(ctx, key).Result(); err != nil {
			t.Fatal(err)
		}
	}

	// The database path: read from MariaDB (mysqlrow), then the fill it made read back from Redis.
	for id := range rows {
		want := scanned(t, parsed, id)
		for _, from := range []Source{FromDatabase, FromRedis} {
			row, err := c.Get(ctx, "shop.types", id)
			if err != nil || row.From != from {
				t.Fatalf("Get(%d): from %s, %v; want from %s", id, row.From, err, from)
			}
			var got typesRow
			if err := row.Scan(&got); err != nil {
				t.Fatalf("Scan row %d from %s: %v", id, from, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("row %d from %s:\n got %s\nwant %s", id, from, show(got), show(want))
			}
			vals, err := row.Values()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(vals, cachedValues[id]) {
				t.Errorf("row %d: Values from %s differ from the cached row's:\n got %v\nwant %v", id, from, vals, cachedValues[id])
			}
		}
	}
}

// show prints r with its pointers followed (json.Marshal does), for a failure message.
func show(r typesRow) string {
	b, err := json.Marshal(r)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Values' Go types, as the documentation lists them; NULL is nil.
func TestValuesTypes(t *testing.T) {
	f := newFixture(t)
	f.typesTable(t)
	c := f.client(nil)
	row, err := c.Get(context.Background(), "shop.types", 2)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := row.Values()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"id": "int64", "ti": "int64", "b": "int64", "ubi": "uint64", "d": "string", "f": "float32", "db": "float64",
		"dt0": "time.Time", "ts3": "time.Time", "dd": "time.Time", "tm": "time.Duration", "y": "int64", "bin": "[]uint8", "bt1": "bool",
		"bt10": "[]uint8", "e": "string", "st": "string", "js": "string" /* MariaDB's JSON is LONGTEXT */}
	for col, typ := range want {
		if got := reflect.TypeOf(vals[col]).String(); got != typ {
			t.Errorf("%s: %s, want %s", col, got, typ)
		}
	}
	if v := vals["ubi"]; v != uint64(18446744073709551615) {
		t.Errorf("ubi = %v, want 2^64-1 (Debezium's long -1 undone)", v)
	}
	row, err = c.Get(context.Background(), "shop.types", 1)
	if err != nil {
		t.Fatal(err)
	}
	if vals, err = row.Values(); err != nil || vals["ti"] != nil || len(vals) != 34 {
		t.Fatalf("NULL row: %v, %v; want 34 nil values", vals, err)
	}
}

// Scan refuses what it cannot store without loss, naming the column; NULL goes only where it fits.
func TestScanRefusesLossyFields(t *testing.T) {
	f := newFixture(t)
	f.typesTable(t)
	c := f.client(nil)
	ctx := context.Background()
	two, err := c.Get(ctx, "shop.types", 2)
	if err != nil {
		t.Fatal(err)
	}
	one, err := c.Get(ctx, "shop.types", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		row  Row
		dest any
	}{
		{two, &struct {
			Ti uint8 `db:"ti"` // -128
		}{}},
		{two, &struct {
			Si int8 `db:"si"` // 65535
		}{}},
		{two, &struct {
			Dt0 string `db:"dt0"`
		}{}},
		{two, &struct {
			D int64 `db:"d"`
		}{}},
		{one, &struct {
			Ti int `db:"ti"` // NULL
		}{}},
		{two, struct{}{}},
	} {
		if err := tc.row.Scan(tc.dest); err == nil {
			t.Errorf("Scan into %T: no error", tc.dest)
		}
	}
	// Conversions that lose nothing, untagged fields by name, sql.Scanner, a map.
	var ok struct {
		ID   int
		B    bool
		D    float64
		Bt10 uint64
		Dt0  sql.NullTime
		Tm   *time.Duration
		Skip string `db:"-"`
	}
	if err := two.Scan(&ok); err != nil {
		t.Fatal(err)
	}
	if ok.ID != 2 || !ok.B || ok.D != -12.3 || ok.Bt10 != 0x201 || !ok.Dt0.Valid || !ok.Dt0.Time.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) || *ok.Tm != -(838*time.Hour+59*time.Minute+59*time.Second) {
		t.Errorf("Scan: %+v", ok)
	}
	m := map[string]any{}
	if err := two.Scan(&m); err != nil || m["vc"] != "h\"é\n\t<>\\" {
		t.Errorf("Scan into a map: %v, %v", m["vc"], err)
	}
}

// Without a database there are no column types: Values and Scan say so; Decode still works.
func TestScanWithoutTheDatabase(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.DB = nil })
	ctx := context.Background()
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 1}, []byte(`{"id":1,"name":"Ann"}`)); err != nil {
		t.Fatal(err)
	}
	row, err := c.Get(ctx, "shop.customers", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := row.Values(); !errors.Is(err, ErrNoColumnTypes) {
		t.Fatalf("Values without a database: %v, want ErrNoColumnTypes", err)
	}
	var v struct{ Name string }
	if err := row.Decode(&v); err != nil || v.Name != "Ann" {
		t.Fatalf("Decode: %+v, %v", v, err)
	}
	if err := (Row{JSON: []byte(`{}`)}).Scan(&v); err == nil {
		t.Fatal("Scan of a Row not from a Client: no error")
	}
}
