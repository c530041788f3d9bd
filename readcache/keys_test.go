package readcache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// MySQL's "=" compares with the column's collation and coerces types, so the row a query returns can
// have a different primary key from the values the caller passed. These tests hold the read path to
// the rule that a fill lands only under the key of the row the database returned, and that key
// values are bound as the column's type.

// usersFixture adds a table with a string key under the server's default collation,
// utf8mb4_general_ci: case-insensitive and PAD SPACE (trailing spaces are ignored by "=").
func usersFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	for _, q := range []string{
		"CREATE TABLE users (name VARCHAR(32) PRIMARY KEY, note VARCHAR(32) NOT NULL) COLLATE utf8mb4_general_ci",
		"INSERT INTO users VALUES ('Alice', 'capital A'), ('bob', 'no trailing spaces'), ('01', 'a leading zero')",
	} {
		if _, err := f.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// keys lists the keys of the users table in Redis.
func (f *fixture) keys(pattern string) []string {
	f.t.Helper()
	ks, err := f.rdb.Keys(context.Background(), pattern).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return ks
}

// Get("alice") finds row 'Alice' through the case-insensitive collation. Before the fix the row was
// filled under shop.users:alice, where Alice's delete (a tombstone under shop.users:Alice) never
// reaches it: the deleted row kept being served for the fill TTL.
func TestCaseInsensitiveCollationFillsTheRowsOwnKey(t *testing.T) {
	f := usersFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	row, err := c.Get(ctx, "shop.users", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(row.JSON); got != `{"name":"Alice","note":"capital A"}` {
		t.Fatalf("Get(alice) returned %s, want the row the database returned", got)
	}
	if n := f.rdb.Exists(ctx, "shop.users:alice").Val(); n != 0 {
		t.Fatalf("filled shop.users:alice with %q: a key no change of row Alice ever writes", f.rdb.Get(ctx, "shop.users:alice").Val())
	}
	if got := f.rdb.Get(ctx, "shop.users:Alice").Val(); got != `0.0.0.0.0 {"name":"Alice","note":"capital A"}` {
		t.Fatalf("shop.users:Alice = %q, want the fill of the row under its own key", got)
	}
	// Alice is deleted: the change lands under her own key, and no spelling serves her any more.
	if _, err := f.db.Exec("DELETE FROM users WHERE name = 'Alice'"); err != nil {
		t.Fatal(err)
	}
	if r, err := f.store.Delete(ctx, "shop.users:Alice", "cloudsql-cache:truncated:shop.users", rowcache.Version{File: 1, Pos: 100}); err != nil || r != rowcache.Applied {
		t.Fatalf("delete: %v %v", r, err)
	}
	for _, spelling := range []string{"alice", "Alice", "ALICE"} {
		if row, err := c.Get(ctx, "shop.users", spelling); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s) after Alice's delete: %s from %s (%v), want ErrNotFound", spelling, row.JSON, row.From, err)
		}
	}
}

// PAD SPACE: 'bob  ' = 'bob'. Before the fix the row was filled under shop.users:bob%20%20.
func TestTrailingSpacesFillTheRowsOwnKey(t *testing.T) {
	f := usersFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	row, err := c.Get(ctx, "shop.users", "bob  ")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(row.JSON); got != `{"name":"bob","note":"no trailing spaces"}` {
		t.Fatalf("Get('bob  ') returned %s", got)
	}
	if ks := f.keys("shop.users:bob%20*"); len(ks) != 0 {
		t.Fatalf("filled %v with row bob", ks)
	}
	if n := f.rdb.Exists(ctx, "shop.users:bob").Val(); n != 1 {
		t.Fatal("row bob was not filled under its own key shop.users:bob")
	}
}

// An integer key read with "01": MySQL converts the string to 1 and returns row 1. Before the fix
// that row was filled under shop.customers:01, a key the function never writes, so a later change
// of row 1 left it stale for the fill TTL.
func TestLeadingZerosOnAnIntegerKey(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	row, err := c.Get(ctx, "shop.customers", "01")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(row.JSON); got != `{"id":1,"name":"Ann","balance":"12.30"}` {
		t.Fatalf("Get(01) returned %s", got)
	}
	if n := f.rdb.Exists(ctx, "shop.customers:01").Val(); n != 0 {
		t.Fatalf("filled shop.customers:01 with %q", f.rdb.Get(ctx, "shop.customers:01").Val())
	}
	if n := f.rdb.Exists(ctx, "shop.customers:1").Val(); n != 1 {
		t.Fatal("row 1 was not filled under its own key shop.customers:1")
	}
	// A change of row 1 is what every spelling serves from then on.
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 50}, []byte(`{"id":1,"name":"Ann (changed)","balance":"1.00"}`)); err != nil {
		t.Fatal(err)
	}
	for _, pk := range []any{"01", "1", 1} {
		row, err := c.Get(ctx, "shop.customers", pk)
		if err != nil || string(row.JSON) != `{"id":1,"name":"Ann (changed)","balance":"1.00"}` {
			t.Errorf("Get(%#v) after the change: %s from %s (%v)", pk, row.JSON, row.From, err)
		}
	}
	// A value that is no integer cannot name a row of an integer key (MySQL would read "1abc" as 1).
	if _, err := c.Get(ctx, "shop.customers", "1abc"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Get(1abc) on an INT key: %v, want an error saying the value is not an integer", err)
	}
}

// A string key read with an integer: "name = 1" compares as numbers, so it matches '01'. Before the
// fix Get(users, 1) returned row '01' and filled it under shop.users:1, the key of a different row.
func TestStringKeyReadWithAnInteger(t *testing.T) {
	f := usersFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if row, err := c.Get(ctx, "shop.users", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(users, 1): %s (%v), want ErrNotFound: there is no row '1'", row.JSON, err)
	}
	if n := f.rdb.Exists(ctx, "shop.users:1").Val(); n != 0 {
		t.Fatalf("filled shop.users:1 with %q", f.rdb.Get(ctx, "shop.users:1").Val())
	}
	// The row '1' appears: it is found, as the string it is.
	if _, err := f.db.Exec("INSERT INTO users VALUES ('1', 'one')"); err != nil {
		t.Fatal(err)
	}
	row, err := c.Get(ctx, "shop.users", 1)
	if err != nil || string(row.JSON) != `{"name":"1","note":"one"}` {
		t.Fatalf("Get(users, 1) once row '1' exists: %s (%v)", row.JSON, err)
	}
}

// "Not found" is cached only where the caller's spelling is the key a matching row would have: a
// fill-tombstone under shop.users:alice would hide row Alice, inserted later, for NotFoundTTL.
func TestNotFoundIsNotCachedUnderAnInexactSpelling(t *testing.T) {
	f := usersFixture(t)
	c := f.client(func(o *Options) { o.NotFoundTTL = time.Hour })
	ctx := context.Background()
	if _, err := c.Get(ctx, "shop.users", "carol"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(carol): %v", err)
	}
	if ks := f.keys("shop.users:*"); len(ks) != 0 {
		t.Fatalf("a not-found under a case-insensitive key was cached: %v", ks)
	}
	if _, err := f.db.Exec("INSERT INTO users VALUES ('Carol', 'inserted')"); err != nil {
		t.Fatal(err)
	}
	if row, err := c.Get(ctx, "shop.users", "carol"); err != nil || string(row.JSON) != `{"name":"Carol","note":"inserted"}` {
		t.Fatalf("Get(carol) after Carol's insert: %s (%v)", row.JSON, err)
	}
	// An integer key is exact: its not-found is cached (TestNotFoundCachedUntilInsert covers the rest).
	if _, err := c.Get(ctx, "shop.customers", "0042"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(0042): %v", err)
	}
	if got := f.rdb.Get(ctx, "shop.customers:42").Val(); got != "0.0.0.0.0" {
		t.Fatalf("shop.customers:42 = %q, want the cached not-found under the row's canonical key", got)
	}
}
