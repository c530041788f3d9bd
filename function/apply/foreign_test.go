package apply_test

import (
	"context"
	"testing"
)

// A value that is not a cloudsql-cache row is never overwritten (the change is dead-lettered as
// foreign_value), and a truncate's sweep neither deletes it nor stops on it.
func TestForeignValuesThroughTheHandler(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, fv := range []string{"42", "0.25", "1.2.3.4.5 x"} {
		e.rdb.Set(ctx, "app.t:1", fv, 0)
		e.mustDeliver(event("app", "t", 'c', 1, 10, 0, "", `{"id":1}`), `{"id":1}`, "dead_lettered: foreign_value")
		if got := e.rdb.Get(ctx, "app.t:1").Val(); got != fv {
			t.Fatalf("foreign %q overwritten with %q", fv, got)
		}
	}
	e.rdb.Set(ctx, "app.t:2", "42", 0)
	e.mustDeliver(event("app", "t", 'c', 1, 20, 0, "", `{"id":3}`), `{"id":3}`, "applied")
	e.mustDeliver(event("app", "t", 't', 1, 30, 0, "", ""), "default", "applied")
	if e.get("app.t:3") != "" {
		t.Fatal("the truncate did not sweep the table's row")
	}
	if got := e.rdb.Get(ctx, "app.t:2").Val(); got != "42" {
		t.Fatalf("the truncate touched a foreign value: %q", got)
	}
}
