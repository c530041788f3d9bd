package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// The hot key set the workload writes and the watcher watches.
const (
	hotCustomers       = 20
	hotProducts        = 20
	hotOrders, hotLine = 5, 4
	hotTypes           = 10
)

// writes numbers the customers' names, so that every write of a name is unique (the snapshot
// scenario tells a commit apart by it).
var writes atomic.Int64

// workload runs random changes on the hot keys from two connections until ctx ends and returns how
// many it made; failing statements (duplicate keys, deadlocks, a database restarting) are part of it.
func (s *stack) workload(ctx context.Context, seed uint64) int {
	var wg sync.WaitGroup
	var total atomic.Int64
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				randomChange(s.db, rnd)
				total.Add(1)
				time.Sleep(time.Duration(2+rnd.IntN(4)) * time.Millisecond) // a few hundred changes a second
			}
		}(w)
	}
	wg.Wait()
	return int(total.Load())
}

func randomChange(db *sql.DB, rnd *rand.Rand) {
	cust := func() int { return 1 + rnd.IntN(hotCustomers) }
	sku := func() string { return fmt.Sprintf("s%02d", 1+rnd.IntN(hotProducts)) }
	name := func() string { return fmt.Sprintf("w%d", writes.Add(1)) }
	var stmts []string
	switch k := rnd.IntN(100); {
	case k < 8:
		stmts = []string{fmt.Sprintf("INSERT IGNORE INTO customers (id, name, email, tier) VALUES (%d, '%s', 'c%d@example.org', '%s')", cust(), name(), rnd.IntN(100), pick(rnd, "free", "pro"))}
	case k < 18:
		stmts = []string{fmt.Sprintf("UPDATE customers SET name = '%s', tier = IF(tier = 'pro', 'free', 'pro') WHERE id = %d", name(), cust())}
	case k < 22:
		stmts = []string{fmt.Sprintf("DELETE FROM customers WHERE id = %d", cust())}
	case k < 25: // a primary-key change
		stmts = []string{fmt.Sprintf("UPDATE customers SET id = %d WHERE id = %d", cust(), cust())}
	case k < 33:
		stmts = []string{fmt.Sprintf("INSERT INTO products VALUES ('%s', 'p %d', %d.%02d, %d, NOW(6)) ON DUPLICATE KEY UPDATE price = VALUES(price), stock = stock - 1, updated_at = NOW(6)",
			sku(), rnd.IntN(9), rnd.IntN(100), rnd.IntN(100), rnd.IntN(50))}
	case k < 36:
		stmts = []string{fmt.Sprintf("DELETE FROM products WHERE sku = '%s'", sku())}
	case k < 38: // a string primary-key change
		stmts = []string{fmt.Sprintf("UPDATE products SET sku = '%s' WHERE sku = '%s'", sku(), sku())}
	case k < 50: // a multi-row transaction across three tables
		o := 1 + rnd.IntN(hotOrders)
		stmts = []string{"BEGIN",
			fmt.Sprintf("INSERT INTO order_lines VALUES (%d, %d, '%s', 1, 9.99) ON DUPLICATE KEY UPDATE qty = qty + 1", o, 1+rnd.IntN(hotLine), sku()),
			fmt.Sprintf("UPDATE order_lines SET qty = qty * 2, unit_price = unit_price + 0.01 WHERE order_id = %d", o),
			fmt.Sprintf("UPDATE customers SET name = '%s', email = 'tx@example.org' WHERE id IN (%d, %d)", name(), cust(), cust()),
			fmt.Sprintf("UPDATE products SET stock = stock + 1 WHERE sku = '%s'", sku()),
			"COMMIT"}
	case k < 57:
		stmts = []string{fmt.Sprintf("DELETE FROM order_lines WHERE order_id = %d AND line_no > %d", 1+rnd.IntN(hotOrders), rnd.IntN(hotLine))}
	case k < 62: // a composite primary-key change
		stmts = []string{fmt.Sprintf("UPDATE order_lines SET line_no = %d WHERE order_id = %d AND line_no = %d", 1+rnd.IntN(hotLine), 1+rnd.IntN(hotOrders), 1+rnd.IntN(hotLine))}
	case k < 66:
		stmts = []string{fmt.Sprintf("INSERT IGNORE INTO order_lines VALUES (%d, %d, 'new', %d, 1.00)", 1+rnd.IntN(hotOrders), 1+rnd.IntN(hotLine), rnd.IntN(5))}
	case k < 80: // every column type: a whole random row
		stmts = []string{upsertTypes(rnd, 1+rnd.IntN(hotTypes))}
	case k < 92: // one random column of it
		c := typeColumns[rnd.IntN(len(typeColumns))]
		stmts = []string{fmt.Sprintf("UPDATE types SET %s = %s WHERE id = %d", c.name, c.value(rnd), 1+rnd.IntN(hotTypes))}
	case k < 95:
		stmts = []string{fmt.Sprintf("DELETE FROM types WHERE id = %d", 1+rnd.IntN(hotTypes))}
	default: // a multi-statement transaction on one row of every type
		id := 1 + rnd.IntN(hotTypes)
		stmts = []string{"BEGIN", upsertTypes(rnd, id), fmt.Sprintf("UPDATE types SET vc = 'tx', ti = -ti WHERE id = %d", id), "COMMIT"}
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		return
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			return
		}
	}
}

func pick(rnd *rand.Rand, vs ...string) string { return vs[rnd.IntN(len(vs))] }

// typeColumns are the types table's columns with values worth sending through the pipeline: the
// extremes of each type, the values whose encoding is easy to get wrong (negative TIME, dates before
// 1970, FLOAT printed as Java prints it, BINARY's padding, BIT's byte order, JSON as text), and NULL.
var typeColumns = []column{
	{"ti", []string{"-128", "0", "127", "-5"}},
	{"b", []string{"TRUE", "FALSE"}},
	{"si", []string{"0", "65535", "1234"}},
	{"mi", []string{"0", "16777215", "77"}},
	{"i", []string{"0", "4294967295", "123456"}},
	{"bi", []string{"-9223372036854775808", "9223372036854775807", "-9000000000"}},
	{"ubi", []string{"0", "18446744073709551615", "9223372036854775808", "42"}},
	{"d", []string{"'-12.3'", "'99999999.99'", "'0.01'", "'5.10'"}},
	{"d0", []string{"42", "-99999", "0"}},
	{"dn", []string{"'-12345678901234567890.0123456789'", "'0.0000000001'", "'1'"}},
	{"f", []string{"3.14159274", "-0.000001", "1e20", "0.1", "0", "1.5"}},
	{"db", []string{"0.30000000000000004", "1e20", "-1.5e300", "0.1"}},
	{"dt0", []string{"'2024-01-02 03:04:05'", "'1000-01-01 00:00:00'", "'9999-12-31 23:59:59'"}},
	{"dt3", []string{"'1969-12-31 23:59:59.999'", "'2024-01-02 03:04:05.120'"}},
	{"dt6", []string{"'2024-01-02 03:04:05.123456'", "'1970-01-01 00:00:00.000001'"}},
	{"ts0", []string{"'2024-01-02 03:04:05'", "'1970-01-01 00:00:01'", "'2038-01-19 03:14:07'"}},
	{"ts3", []string{"'2024-01-02 03:04:05.120'", "'2001-02-03 04:05:06.999'"}},
	{"ts6", []string{"'2038-01-19 03:14:07.999999'", "'2024-01-02 03:04:05.000001'"}},
	{"dd", []string{"'1960-01-02'", "'2024-02-29'", "'9999-12-31'"}},
	{"tm", []string{"'-838:59:59'", "'838:59:59'", "'12:00:00'", "'00:00:00'"}},
	{"tm6", []string{"'12:00:00.000005'", "'-01:02:03.5'"}},
	{"y", []string{"1901", "2155", "2024"}},
	{"c", []string{"'ab '", "'abcd'", "''", "'é'"}},
	{"vc", []string{`'h"é\n\t<>\\'`, "'changed'", "''"}},
	{"tx", []string{"REPEAT('x', 300)", "'text'"}},
	{"bin", []string{"X'0100'", "X'00ff00'", "X'01020304'", "X''"}},
	{"vb", []string{"X'00ff00'", "X'cafe'", "X''"}},
	{"bl", []string{"X'cafe'", "X'00'"}},
	{"bt1", []string{"b'0'", "b'1'"}},
	{"bt10", []string{"b'1000000001'", "b'0'"}},
	{"e", []string{"'small'", "'it''s big'"}},
	{"st", []string{"''", "'a'", "'a,b,c'", "'b,c'"}},
	{"js", []string{`'{"b": 1, "a": [true, null, 1.5e300]}'`, "'[]'", `'"x"'`}},
}

type column struct {
	name   string
	values []string
}

func (c column) value(rnd *rand.Rand) string {
	if rnd.IntN(8) == 0 {
		return "NULL"
	}
	return c.values[rnd.IntN(len(c.values))]
}

func upsertTypes(rnd *rand.Rand, id int) string {
	names := make([]string, 0, len(typeColumns))
	vals := make([]string, 0, len(typeColumns))
	sets := make([]string, 0, len(typeColumns))
	for _, c := range typeColumns {
		names = append(names, c.name)
		vals = append(vals, c.value(rnd))
		sets = append(sets, c.name+" = VALUES("+c.name+")")
	}
	return fmt.Sprintf("INSERT INTO types (id, %s) VALUES (%d, %s) ON DUPLICATE KEY UPDATE %s",
		strings.Join(names, ", "), id, strings.Join(vals, ", "), strings.Join(sets, ", "))
}

// hotKeys are the cache keys of every row the workload can touch.
func hotKeys() []string {
	var keys []string
	for i := 1; i <= hotCustomers; i++ {
		keys = append(keys, fmt.Sprintf("shop.customers:%d", i))
	}
	for i := 1; i <= hotProducts; i++ {
		keys = append(keys, fmt.Sprintf("shop.products:s%02d", i))
	}
	for o := 1; o <= hotOrders; o++ {
		for l := 1; l <= hotLine; l++ {
			keys = append(keys, fmt.Sprintf("shop.order_lines:%d:%d", o, l))
		}
	}
	for i := 1; i <= hotTypes; i++ {
		keys = append(keys, fmt.Sprintf("shop.types:%d", i))
	}
	return keys
}

// watch polls the hot keys until ctx ends and reports every time a key's version went back or a row
// vanished (other than under a new floor of its table: a truncate, a snapshot, a schema change).
func (s *stack) watch(ctx context.Context) (regressions func() []string) {
	var mu sync.Mutex
	var bad []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := map[string]rowcache.Version{}
		keys := hotKeys()
		for ctx.Err() == nil {
			for _, k := range keys {
				entry, found, err := rowcache.Get(ctx, s.rdb, k)
				if err != nil {
					continue // Redis restarting
				}
				prev, had := seen[k]
				if !found {
					if had && !s.flooredSince(ctx, k, prev) {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("%s vanished after version %s", k, prev))
						mu.Unlock()
					}
					delete(seen, k)
					continue
				}
				if had && entry.Version.Compare(prev) < 0 {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s went back from %s to %s", k, prev, entry.Version))
					mu.Unlock()
				}
				seen[k] = entry.Version
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() []string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return bad
	}
}

// flooredSince reports whether key's table got a floor above version prev: a truncate, a completed
// snapshot or a schema change that removes rows without row events deletes the table's older values
// from the cache (README: Floors), so the key may vanish then.
func (s *stack) flooredSince(ctx context.Context, key string, prev rowcache.Version) bool {
	table, _, _ := strings.Cut(key, ":")
	v, err := s.rdb.Get(ctx, tablepolicy.MetaPrefix+"truncated:"+table).Result()
	if err != nil {
		return false
	}
	floor, _, err := rowcache.ParseFloor(v)
	if err != nil {
		return false
	}
	prev.Column = 0
	return floor.Compare(prev) > 0
}

// scenario is one run of the workload: during (if set) is called a third of the way in, once
// Debezium streams; the workload goes on at least a third of d after it, so recovery happens under
// load; after (if set) runs once the workload stopped, before the pipeline settles. fnRestarted says
// the function's counters started over during it. lossy says Redis loses writes in it (a failover, a
// restart): a row can go back until its change is delivered again, so the watcher's findings are
// logged, not failures.
type scenario struct {
	d           time.Duration
	during      func(t *testing.T)
	after       func(t *testing.T)
	fnRestarted bool
	lossy       bool
}

func (s *stack) run(t *testing.T, sc scenario) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // also when the test fails half-way: the workload and the watcher stop
	regressions := s.watch(ctx)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	end := time.Now().Add(sc.d)
	var n int
	done := make(chan struct{})
	go func() { n = s.workload(wctx, uint64(time.Now().UnixNano())); close(done) }()
	if sc.during != nil {
		time.Sleep(sc.d / 3)
		sc.during(t)
		if later := time.Now().Add(sc.d / 3); later.After(end) {
			end = later
		}
	}
	time.Sleep(time.Until(end))
	wcancel()
	<-done
	if sc.after != nil {
		sc.after(t)
	}
	s.settle(t, sc.fnRestarted)
	cancel()
	for _, r := range regressions() {
		if sc.lossy {
			t.Logf("version regression (Redis lost writes): %s", r)
			continue
		}
		t.Errorf("version regression: %s", r)
	}
	t.Logf("workload: %d random changes", n)
}
