package readcache

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A YEAR key's two-digit spelling is the row's too ("=" reads 24 as 2024): GetMany answers it as Get
// does (the row, not "not found"), and neither caches a "not found" under a spelling that a later
// insert of its row does not reach (the function writes shop.years:2025, never shop.years:25).
func TestYearKeySpellings(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"CREATE TABLE years (y YEAR PRIMARY KEY, n INT)", "INSERT INTO years VALUES (2024, 1)"} {
		if _, err := f.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	c := f.client(func(o *Options) { o.NotFoundTTL = time.Minute })
	ctx := context.Background()
	res, err := c.GetMany(ctx, "shop.years", [][]any{{24}, {2024}, {25}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{`{"y":2024,"n":1}`, `{"y":2024,"n":1}`} {
		if res[i].Err != nil || string(res[i].Row.JSON) != want {
			t.Errorf("GetMany key %d: %s %v, want %s", i, res[i].Row.JSON, res[i].Err, want)
		}
	}
	if !errors.Is(res[2].Err, ErrNotFound) {
		t.Errorf("GetMany 25: %v, want ErrNotFound", res[2].Err)
	}
	if _, err := c.Get(ctx, "shop.years", 25); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get 25: %v, want ErrNotFound", err)
	}
	if ks := f.keys("shop.years:25"); len(ks) != 0 {
		t.Errorf("a not-found cached under a spelling the row's changes never reach: %v", ks)
	}
	if r, err := c.Get(ctx, "shop.years", 24); err != nil || string(r.JSON) != `{"y":2024,"n":1}` {
		t.Errorf("Get 24: %s %v", r.JSON, err)
	}
}
