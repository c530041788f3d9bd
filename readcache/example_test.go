package readcache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/cloudsql-cache/cloudsql-cache/mysqlenv"
	"github.com/cloudsql-cache/cloudsql-cache/readcache"
	"github.com/cloudsql-cache/cloudsql-cache/redisenv"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// OrderLine is a row of shop.order_lines, as a service would declare it: Row.Scan fills it with Go
// values by column type (DECIMAL as its exact string; DATETIME as time.Time, …).
type OrderLine struct {
	OrderID   int    `db:"order_id"`
	LineNo    int    `db:"line_no"`
	SKU       string `db:"sku"`
	Qty       int    `db:"qty"`
	UnitPrice string `db:"unit_price"`
}

// A service reads rows through the cache: one Redis GET for a hit, the database on a miss. The README
// shows this example; it is compiled with the tests, not run (it needs a Redis and a MySQL).
func Example() {
	ctx := context.Background()

	rdb, err := redisenv.NewClient(os.Getenv) // REDIS_*, as the function connects: TLS with the Memorystore CA, AUTH
	if err != nil {
		log.Fatal(err)
	}
	db, err := mysqlenv.Open(os.Getenv) // MYSQL_*: TLS with the Cloud SQL server CA; parseTime off, UTC
	if err != nil {
		log.Fatal(err)
	}
	tables, err := tablepolicy.FromEnv(os.Getenv) // the same CACHE_* settings as the function
	if err != nil {
		log.Fatal(err)
	}
	c, err := readcache.New(ctx, readcache.Options{Redis: rdb, DB: db, Tables: tables, L1Size: 10000})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	row, err := c.Get(ctx, "shop.order_lines", 1, 2) // primary-key values in key order
	switch {
	case errors.Is(err, readcache.ErrNotFound): // deleted (tombstone) or not in the database
	case errors.Is(err, readcache.ErrNotCached): // not in Redis, and no Options.DB to ask (never here)
	case errors.Is(err, readcache.ErrUnavailable): // Redis and the database both failed
	case err == nil:
		var line OrderLine
		err = row.Scan(&line) // or readcache.ScanAs[OrderLine](ctx, c, "shop.order_lines", 1, 2)
		fmt.Println(line.SKU, line.Qty, line.UnitPrice, err)
	}

	// Many rows: one Redis round trip, one query for the misses; a Result per key, in order.
	lines, err := c.GetMany(ctx, "shop.order_lines", [][]any{{1, 1}, {1, 2}, {2, 1}})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range lines {
		var line OrderLine
		if r.Err == nil {
			r.Err = r.Row.Scan(&line)
		}
		fmt.Println(line.OrderID, line.LineNo, r.Err)
	}
}
