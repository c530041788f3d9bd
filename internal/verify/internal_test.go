package verify

import (
	"context"
	"database/sql"
	"math"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

// Redis walks a table of 8 buckets in the cursor order 0, 4, 2, 6, 1, 5, 3, 7 (reverse-binary
// increments); the cursor returned after each bucket says how many are done.
func TestScanFraction(t *testing.T) {
	order := []uint64{4, 2, 6, 1, 5, 3, 7}
	for i, c := range order {
		if got, want := scanFraction(c, 8), float64(i+1)/8; got != want {
			t.Errorf("cursor %d of 8 buckets: %v, want %v", c, got, want)
		}
	}
	if scanFraction(0, 8) != 1 {
		t.Error("cursor 0 (the end) is not 1")
	}
	// A table grown past the next power of two of the keys: the cursor's own length counts.
	if got := scanFraction(8, 5); got != 1.0/16 {
		t.Errorf("cursor 8 over 5 keys: %v, want 1/16", got)
	}
}

func TestLiteralPrefix(t *testing.T) {
	for pattern, want := range map[string]string{`app.t:*`: "app.t:", `a\*b\[c\]\\d:*`: `a*b[c]\d:`} {
		if got := literalPrefix(pattern); got != want {
			t.Errorf("literalPrefix(%q) = %q, want %q", pattern, got, want)
		}
	}
}

// The Wilson interval is sound at the edges: no difference in 400 rows still leaves up to ~1%.
func TestEstimate(t *testing.T) {
	e := estimate(0, 400, 1_000_000)
	if e.Rate != 0 || e.RateLow != 0 || math.Abs(e.RateHigh-0.0095) > 0.0005 || e.DriftHigh < 9000 {
		t.Errorf("0 of 400: %+v", e)
	}
	e = estimate(40, 400, 1000)
	if e.RateLow > 0.1 || e.RateHigh < 0.1 || e.DriftLow > 100 || e.DriftHigh < 100 {
		t.Errorf("40 of 400: %+v", e)
	}
}

// Every keyset query is an index range read, also for a composite key on MariaDB, which reads a row
// comparison ((a,b) > (x,y)) with a full index scan: that would make a check quadratic in the table.
func TestKeysetQueriesReadIndexRanges(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("app")
	srv.Exec(db, "CREATE TABLE c (a INT NOT NULL, b VARCHAR(8) NOT NULL, v INT, PRIMARY KEY (a, b))",
		"INSERT INTO c SELECT seq DIV 10, seq MOD 10, 1 FROM app.seq_1_to_20000", "ANALYZE TABLE c")
	mt, err := mysqlrow.LoadTable(context.Background(), db, "app", "c")
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: Config{DB: db, From: []string{"10"}, To: []string{"1500", "3"}}}
	c := &tableCheck{r: r, t: mt, pkCols: []string{"`a`", "`b`"}, st: &tableState{}}
	for name, q := range map[string]func() (string, []any){
		"first chunk": func() (string, []any) { return c.chunkQuery(nil, 100) },
		"next chunk":  func() (string, []any) { return c.chunkQuery([]string{"700", "5"}, 100) },
	} {
		query, args := q()
		var id, selectType, table, typ string
		var rest [6]sql.NullString
		if err := db.QueryRow("EXPLAIN "+query, args...).Scan(&id, &selectType, &table, &typ, &rest[0], &rest[1], &rest[2], &rest[3], &rest[4], &rest[5]); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if typ != "range" {
			t.Errorf("%s: %s reads %s, not an index range", name, query, typ)
		}
		rows, err := db.Query(query, args...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		if n != 100 {
			t.Errorf("%s: %d rows, want 100", name, n)
		}
	}
}
