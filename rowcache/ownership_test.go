package rowcache_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// foreignValues look like versions to a loose check but are not cloudsql-cache values: the script must
// refuse to overwrite them and every sweep must leave them alone without stopping.
var foreignValues = []string{
	"42", "0.25", "1.2.3.4", "1.2.3.4.5.6", "01.0.0.0.0", "1.0.0.0.00",
	"123456789012345678901.0.0.0.0", "18446744073709551616.0.0.0.0", "1.2.3.4.5 x", "1.2.3.4.5 ", "1.2.3.4.5{}",
	"", "1.2.3.4.5  {}", "1.2.3.4.5\t{}",
}

func TestForeignValuesAreExactlyNotOurs(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	for _, fv := range foreignValues {
		rdb.Set(ctx, "db.t:f", fv, 0)
		for _, del := range []bool{false, true} {
			var err error
			if del {
				_, err = st.Delete(ctx, "db.t:f", floor, v(9, 9, 9))
			} else {
				_, err = st.Upsert(ctx, "db.t:f", floor, v(9, 9, 9), []byte(`{"id":1}`))
			}
			if !errors.Is(err, rowcache.ErrForeignValue) {
				t.Errorf("%q (delete=%v): err = %v, want ErrForeignValue", fv, del, err)
			}
			if got := rdb.Get(ctx, "db.t:f").Val(); got != fv {
				t.Fatalf("%q was overwritten with %q", fv, got)
			}
		}
	}
	// Our own values at the edges of the format are ours.
	for _, own := range []string{"0.0.0.0.0", "18446744073709551615.0.1.2.3", `1.0.2.3.4 {"id":1}`, `0.0.0.0.0 {}`} {
		rdb.Set(ctx, "db.t:o", own, 0)
		if _, err := st.Upsert(ctx, "db.t:o", floor, rowcache.Version{Epoch: 18446744073709551615, Column: 1}, []byte(`{"id":2}`)); err != nil {
			t.Errorf("own value %q: %v", own, err)
		}
	}
}

func TestSweepsNeverDeleteOrStopOnForeignValues(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	for i, fv := range foreignValues {
		rdb.Set(ctx, "db.t:foreign"+strings.Repeat("x", i), fv, 0)
	}
	rdb.HSet(ctx, "db.t:hash", "a", "b")
	if _, err := st.Upsert(ctx, "db.t:1", floor, v(1, 10, 0), []byte(`{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		for i, fv := range foreignValues {
			if got, err := rdb.Get(ctx, "db.t:foreign"+strings.Repeat("x", i)).Result(); err != nil || got != fv {
				t.Fatalf("%s: foreign %q became %q (%v)", what, fv, got, err)
			}
		}
		if rdb.Exists(ctx, "db.t:hash").Val() != 1 {
			t.Fatalf("%s: a foreign hash was deleted", what)
		}
	}
	n, err := st.SweepEpoch(ctx, rowcache.TableKeys{Pattern: "db.t:*"}, 1)
	if err != nil || n != 1 {
		t.Fatalf("epoch sweep: deleted %d, %v; want 1 (our row), no error", n, err)
	}
	check("epoch sweep")
	if _, err := st.Upsert(ctx, "db.t:2", floor, v(1, 11, 0), []byte(`{"id":2}`)); err != nil {
		t.Fatal(err)
	}
	res, n, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "db.t:*"}, v(2, 1, 0))
	if err != nil || res != rowcache.Applied || n != 1 {
		t.Fatalf("truncate sweep: %v deleted %d, %v; want applied, 1, no error", res, n, err)
	}
	check("truncate sweep")
}
