package readcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// manyRows adds customers 3 to 9 to the fixture's 1 and 2.
func (f *fixture) manyRows() {
	f.t.Helper()
	for id := 3; id <= 9; id++ {
		f.my.Exec(f.db, fmt.Sprintf("INSERT INTO customers VALUES (%d, 'c%d', %d.5, 'pii')", id, id, id))
	}
}

func ids(ns ...int) [][]any {
	out := make([][]any, len(ns))
	for i, n := range ns {
		out[i] = []any{n}
	}
	return out
}

// A batch of hits, a tombstone, misses, a row the database lacks and a bad key: each answered as Get
// answers it, in one MGET, one floor read, one query and one pipeline of fills; the next batch is all
// hits in one MGET.
func TestGetManyAnswersEachKeyAsGet(t *testing.T) {
	getManyAnswersEachKeyAsGet(t, newFixture(t), "MGET")
}

// On a cluster the keys span slots, so they are read with a pipeline of GETs (one per node).
func TestClusterGetManyAnswersEachKeyAsGet(t *testing.T) {
	getManyAnswersEachKeyAsGet(t, newClusterFixture(t), "PIPELINE")
}

func getManyAnswersEachKeyAsGet(t *testing.T, f *fixture, read string) {
	f.manyRows()
	ctx := context.Background()
	// The script cached, as it is once the function has applied changes (see TestMissRoundTrips): on
	// every primary of a cluster, which these keys' slots reach.
	for i := range 100 {
		if _, err := f.store.Upsert(ctx, fmt.Sprintf("warm-up:%d", i), floorKey, rowcache.Version{}, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 5}, []byte(`{"id":1,"name":"cached"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Delete(ctx, "shop.customers:2", floorKey, rowcache.Version{File: 1, Pos: 6}); err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	c := f.client(func(o *Options) { o.Redis.AddHook(rt) })
	if err := c.o.Redis.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// A Get first, so that the floor is known and the columns are read: the batch's own cost is then
	// what is counted.
	if _, err := c.Get(ctx, "shop.customers", 9); err != nil {
		t.Fatal(err)
	}
	rt.take()
	queries := f.counter("cloudsql_cache.read.db_queries", "")

	pks := append(ids(1, 2, 3, 4, 5, 42, 9), []any{"x1"})
	res, err := c.GetMany(ctx, "shop.customers", pks)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		from Source
		name string
		err  error
	}{
		{FromRedis, "cached", nil}, {"", "", ErrNotFound}, {FromDatabase, "c3", nil}, {FromDatabase, "c4", nil},
		{FromDatabase, "c5", nil}, {"", "", ErrNotFound}, {FromRedis, "c9", nil}, {"", "", nil},
	}
	for i, w := range want {
		r := res[i]
		if i == len(want)-1 {
			if r.Err == nil || errors.Is(r.Err, ErrNotFound) {
				t.Errorf("key %v: err %v, want a bad-key error", pks[i], r.Err)
			}
			continue
		}
		if w.err != nil {
			if !errors.Is(r.Err, w.err) {
				t.Errorf("key %v: %v, want %v", pks[i], r.Err, w.err)
			}
			continue
		}
		var v struct{ Name string }
		if r.Err != nil || r.Row.From != w.from || r.Row.Decode(&v) != nil || v.Name != w.name {
			t.Errorf("key %v: %s from %s (%v), want %s from %s", pks[i], r.Row.JSON, r.Row.From, r.Err, w.name, w.from)
		}
	}
	if got := strings.Join(rt.take(), " "); got != read+" PIPELINE" {
		t.Errorf("the batch sent %q, want %q (the read, the fills)", got, read+" PIPELINE")
	}
	if q := f.counter("cloudsql_cache.read.db_queries", "") - queries; q != 1 {
		t.Errorf("the batch made %d database queries, want 1", q)
	}
	if n := f.counter("cloudsql_cache.read.fills", "stored"); n != 4 { // 9 by the Get, then 3, 4, 5
		t.Errorf("%d fills stored, want 4", n)
	}
	res, err = c.GetMany(ctx, "shop.customers", ids(3, 4, 5))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Row.From != FromRedis {
			t.Errorf("again, key %d: from %s (%v), want the fill from Redis", i+3, r.Row.From, r.Err)
		}
		var v struct {
			ID      int
			Balance float64
		}
		if err := r.Row.Scan(&v); err != nil || v.ID != i+3 || v.Balance != float64(i+3)+0.5 {
			t.Errorf("Scan of %s: %+v, %v", r.Row.JSON, v, err)
		}
	}
	if got := strings.Join(rt.take(), " "); got != read {
		t.Errorf("the second batch sent %q, want %q", got, read)
	}
	if _, err := c.GetMany(ctx, "customers", ids(1)); err == nil {
		t.Error("a table not db.table: no error")
	}
}

// The batch read rows, then a change of one of them is applied before the fills arrive: that fill
// loses (the cache keeps the change), the others land.
func TestGetManyFillLosesToChange(t *testing.T) { getManyFillLosesToChange(t, newFixture(t)) }

func TestClusterGetManyFillLosesToChange(t *testing.T) {
	getManyFillLosesToChange(t, newClusterFixture(t))
}

func getManyFillLosesToChange(t *testing.T, f *fixture) {
	f.manyRows()
	ctx := context.Background()
	c := f.client(nil)
	const changed = `{"id":4,"name":"changed","balance":"4.50"}`
	c.afterLoad = func(key string) {
		if key != "shop.customers:4" {
			return
		}
		f.my.Exec(f.db, "UPDATE customers SET name = 'changed' WHERE id = 4")
		if _, err := f.store.Upsert(ctx, key, floorKey, rowcache.Version{File: 9, Pos: 1}, []byte(changed)); err != nil {
			t.Error(err)
		}
	}
	res, err := c.GetMany(ctx, "shop.customers", ids(3, 4, 5))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Row.From != FromDatabase {
			t.Fatalf("key %d: from %s (%v)", i+3, r.Row.From, r.Err)
		}
	}
	for id, want := range map[int]string{3: `"c3"`, 4: `"changed"`, 5: `"c5"`} {
		e, found, err := rowcache.Get(ctx, f.rdb, fmt.Sprintf("shop.customers:%d", id))
		if err != nil || !found || !strings.Contains(string(e.Row), want) {
			t.Errorf("Redis holds %s for %d (%v, found %v), want the row with %s", e.Row, id, err, found, want)
		}
	}
	if n := f.counter("cloudsql_cache.read.fills", "conflict"); n != 1 {
		t.Errorf("%d fills refused, want 1", n)
	}
}

// A truncate between the batch's query and its fills: every fill is refused, and none of the
// truncated rows comes back.
func TestGetManyFillLosesToTruncate(t *testing.T) {
	f := newFixture(t)
	f.manyRows()
	ctx := context.Background()
	c := f.client(nil)
	once := false
	c.afterLoad = func(string) {
		if once {
			return
		}
		once = true
		f.my.Exec(f.db, "TRUNCATE customers")
		if _, _, err := f.store.Truncate(ctx, rowcache.TableKeys{Pattern: "shop.customers:*", FloorKey: floorKey}, rowcache.Version{File: 9, Pos: 1}); err != nil {
			t.Error(err)
		}
	}
	if _, err := c.GetMany(ctx, "shop.customers", ids(3, 4, 5)); err != nil {
		t.Fatal(err)
	}
	if keys := f.keys("shop.customers:*"); len(keys) != 0 {
		t.Errorf("after the truncate Redis holds %v", keys)
	}
	res, err := c.GetMany(ctx, "shop.customers", ids(3, 4))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !errors.Is(r.Err, ErrNotFound) {
			t.Errorf("after the truncate: %s (%v), want ErrNotFound", r.Row.JSON, r.Err)
		}
	}
}

// Composite keys are read with row constructors; a value that is not the exact spelling of a row's key
// (the collation folds case) is read on its own, by Get's path, and finds the row "=" finds.
func TestGetManyCompositeAndInexactKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.my.Exec(f.db, "INSERT INTO line_items VALUES ('a:b', 3, 7), ('c', 1, 1)")
	c := f.client(nil)
	res, err := c.GetMany(ctx, "shop.line_items", [][]any{{"a:b", 2}, {"c", 1}, {"A:B", 3}, {"zz", 1}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{`"qty":5`, `"qty":1`, `"qty":7`} {
		if r := res[i]; r.Err != nil || !strings.Contains(string(r.Row.JSON), want) {
			t.Errorf("key %d: %s (%v), want %s", i, r.Row.JSON, r.Err, want)
		}
	}
	if !errors.Is(res[3].Err, ErrNotFound) {
		t.Errorf("absent key: %v", res[3].Err)
	}
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 3 {
		t.Errorf("%d queries, want 3: the batch, and one each for the two inexact spellings that matched no row exactly", q)
	}
	// The row found under "A:B" was filled under its own key only.
	if keys := f.keys("shop.line_items:*"); len(keys) != 3 {
		t.Errorf("Redis holds %v, want the three rows' own keys", keys)
	}
}

// MissNoFill, no policy published by the function, and no database: a batch writes nothing, and
// without a database its misses are ErrNotCached.
func TestGetManyWritesNothingWhenGetWouldNot(t *testing.T) {
	f := newFixture(t)
	f.manyRows()
	ctx := context.Background()
	nofill := f.client(func(o *Options) { o.Miss = MissNoFill })
	f.unpublished = true
	unchecked := f.client(nil)
	if unchecked.PolicyStatus().FillAllowed {
		t.Fatal("fills allowed with nothing published")
	}
	for _, c := range []*Client{nofill, unchecked} {
		res, err := c.GetMany(ctx, "shop.customers", ids(3, 4))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || r.Row.From != FromDatabase {
				t.Fatalf("%s (%v)", r.Row.From, r.Err)
			}
		}
		if keys := f.keys("shop.customers:*"); len(keys) != 0 {
			t.Fatalf("Redis holds %v", keys)
		}
	}
	cacheOnly := f.client(func(o *Options) { o.DB = nil })
	res, err := cacheOnly.GetMany(ctx, "shop.customers", ids(3))
	if err != nil || !errors.Is(res[0].Err, ErrNotCached) {
		t.Fatalf("%v %v, want ErrNotCached", res, err)
	}
}

// Every read of a batch is offered to the sampler, and judged as Get's would be.
func TestGetManyIsSampled(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, before(t, f.db), []byte(ann)); err != nil {
		t.Fatal(err)
	}
	s := f.sampler(c, nil)
	if _, err := c.GetMany(ctx, "shop.customers", ids(1, 2)); err != nil {
		t.Fatal(err)
	}
	if st := judged(t, s, 2); st.Current != 2 {
		t.Fatalf("%+v, want 2 current", st)
	}
}

// A batch is served from the L1 where it holds the rows (and their rows scan); the others are read
// from Redis in one MGET.
func TestGetManyServesTheL1(t *testing.T) {
	f := newFixture(t)
	f.manyRows()
	ctx := context.Background()
	c := f.client(func(o *Options) { o.L1Size = 100 })
	waitHealthy(t, c)
	for _, id := range []int{3, 4} {
		c.Get(ctx, "shop.customers", id) // fills
		c.Get(ctx, "shop.customers", id) // from Redis, into the L1
	}
	res, err := c.GetMany(ctx, "shop.customers", ids(3, 4, 5))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []Source{FromL1, FromL1, FromDatabase} {
		var v struct{ Name string }
		if r := res[i]; r.Err != nil || r.Row.From != want || r.Row.Scan(&v) != nil || v.Name != fmt.Sprintf("c%d", i+3) {
			t.Errorf("key %d: %s from %s (%v), want from %s", i+3, r.Row.JSON, r.Row.From, r.Err, want)
		}
	}
}

// A batch of 2,500 keys is read in slices of 1,000: no Redis round trip carries more, and every key
// is still answered, in order.
func TestGetManyReadsALargeBatchInSlices(t *testing.T) {
	f := newFixture(t)
	f.manyRows()
	ctx := context.Background()
	rt := &roundTrips{}
	c := f.client(func(o *Options) { o.Redis.AddHook(rt) })
	const n = 2500
	ns := make([]int, n)
	for i := range ns {
		ns[i] = n - i // 2,500 … 1: the rows 1 to 9 come in the last slice
	}
	if _, err := c.Get(ctx, "shop.customers", 9); err != nil { // the floor and the columns read first
		t.Fatal(err)
	}
	rt.take()
	res, err := c.GetMany(ctx, "shop.customers", ids(ns...))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		id := ns[i]
		var v struct{ ID int }
		switch {
		case id <= 9:
			if r.Err != nil || r.Row.Decode(&v) != nil || v.ID != id {
				t.Errorf("key %d: %s (%v), want its row", id, r.Row.JSON, r.Err)
			}
		case !errors.Is(r.Err, ErrNotFound):
			t.Errorf("key %d: %s (%v), want ErrNotFound", id, r.Row.JSON, r.Err)
		}
	}
	reads := 0
	for _, cmd := range rt.take() {
		if cmd == "MGET" {
			reads++
		}
	}
	if reads != 3 {
		t.Errorf("%d keys read with %d MGETs, want 3 (slices of 1,000)", n, reads)
	}
}
