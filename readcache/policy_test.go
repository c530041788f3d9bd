package readcache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy/published"
)

// readerPolicy is what the fixture's clients run with (client's default Tables).
var readerPolicy = tablepolicy.Config{ExcludeColumns: []string{"shop.customers.secret"}}

// missFills reads row id (a miss) and reports whether it was filled; the key is deleted again.
func (f *fixture) missFills(c *Client, id int) bool {
	f.t.Helper()
	ctx := context.Background()
	row, err := c.Get(ctx, "shop.customers", id)
	if err != nil || row.From != FromDatabase {
		f.t.Fatalf("read of %d: %v from %s, want a miss", id, err, row.From)
	}
	key := "shop.customers:" + string(rune('0'+id))
	filled := f.rdb.Exists(ctx, key).Val() == 1
	f.rdb.Del(ctx, key)
	return filled
}

// waitPolicy waits (at most 10 s) for the client's policy verdict to be want.
func waitPolicy(t *testing.T, c *Client, want bool) PolicyStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := c.PolicyStatus()
		if st.FillAllowed == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy status %+v, want FillAllowed %v", st, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Nothing published: a PolicyRequire client reads but does not fill, and says why; once the function
// publishes the same policy, the next check allows fills.
func TestPolicyRequireWaitsForPublication(t *testing.T) {
	f := newFixture(t)
	f.unpublished = true
	c := f.client(func(o *Options) { o.PolicyInterval = 50 * time.Millisecond })
	st := c.PolicyStatus()
	if st.FillAllowed || !errors.Is(st.Err, published.ErrNotPublished) || st.Checked.IsZero() || st.Check != PolicyRequire {
		t.Fatalf("nothing published: %+v", st)
	}
	if f.missFills(c, 1) {
		t.Fatal("filled with no published policy")
	}
	f.publish(readerPolicy, time.Now())
	if st := waitPolicy(t, c, true); st.Err != nil {
		t.Fatalf("published: %+v", st)
	}
	if !f.missFills(c, 1) {
		t.Fatal("no fill once the function's policy is the reader's")
	}
}

// The divergence cases: a reader whose policy differs from the function's in what it reads or fills
// never fills, and PolicyStatus names the setting; a difference readers do not see (the epoch) does
// not matter.
func TestPolicyDivergenceStopsFills(t *testing.T) {
	for _, tc := range []struct {
		name     string
		function tablepolicy.Config
		fills    bool
	}{
		{"same", readerPolicy, true},
		{"function excludes more columns", tablepolicy.Config{ExcludeColumns: []string{"shop.customers.secret", "shop.customers.name"}}, false},
		{"reader does not exclude the function's", tablepolicy.Config{}, false},
		{"another key template", tablepolicy.Config{ExcludeColumns: readerPolicy.ExcludeColumns, KeyTemplates: map[string]string{"shop.customers": "cust:{id}"}}, false},
		{"another table list", tablepolicy.Config{ExcludeColumns: readerPolicy.ExcludeColumns, Tables: []string{"shop.orders"}}, false},
		{"another epoch", tablepolicy.Config{ExcludeColumns: readerPolicy.ExcludeColumns, Epoch: 7}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.unpublished = true
			f.publish(tc.function, time.Now())
			c := f.client(nil)
			st := c.PolicyStatus()
			if st.FillAllowed != tc.fills {
				t.Fatalf("status %+v, want FillAllowed %v", st, tc.fills)
			}
			if !tc.fills {
				var d *published.DivergedError
				if !errors.As(st.Err, &d) || len(d.Differences) == 0 {
					t.Fatalf("status error %v, want a DivergedError naming the settings", st.Err)
				}
			}
			if got := f.missFills(c, 1); got != tc.fills {
				t.Fatalf("filled %v, want %v", got, tc.fills)
			}
		})
	}
}

// A function that changes its policy while the reader runs (a rollout: both revisions live, then the
// new one alone) stops the reader's fills within a check interval; a reader that matches neither
// keeps them stopped.
func TestPolicyRecheckFollowsTheFunction(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.PolicyInterval = 50 * time.Millisecond })
	if !c.PolicyStatus().FillAllowed || !f.missFills(c, 1) {
		t.Fatalf("same policy: %+v", c.PolicyStatus())
	}
	// A new revision without the exclusion starts beside the old one: a rollout.
	f.publish(tablepolicy.Config{}, time.Now())
	if st := waitPolicy(t, c, false); !errors.Is(st.Err, published.ErrRollout) {
		t.Fatalf("rollout: %+v", st)
	}
	if f.missFills(c, 1) {
		t.Fatal("filled during a rollout to another policy")
	}
	// The old revision's last heartbeat is now older than Liveness: only the new policy runs.
	f.rdb.Del(context.Background(), published.Key)
	f.publish(readerPolicy, time.Now().Add(-published.Liveness-time.Minute))
	f.publish(tablepolicy.Config{}, time.Now())
	deadline := time.Now().Add(10 * time.Second)
	for !errors.Is(c.PolicyStatus().Err, published.ErrDiverged) {
		if time.Now().After(deadline) {
			t.Fatalf("after the rollout: %+v", c.PolicyStatus())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.PolicyStatus().FillAllowed || f.missFills(c, 1) {
		t.Fatal("filled with a policy the function no longer runs")
	}
}

// PolicyIfPublished fills when nothing is published, not when a different policy is; PolicyOff never
// looks.
func TestPolicyIfPublishedAndOff(t *testing.T) {
	f := newFixture(t)
	f.unpublished = true
	ifp := f.client(func(o *Options) { o.PolicyCheck = PolicyIfPublished })
	if st := ifp.PolicyStatus(); !st.FillAllowed || st.Err != nil || !f.missFills(ifp, 1) {
		t.Fatalf("ifpublished, nothing published: %+v", st)
	}
	f.publish(tablepolicy.Config{}, time.Now()) // the function does not exclude secret
	ifp2 := f.client(func(o *Options) { o.PolicyCheck = PolicyIfPublished })
	if st := ifp2.PolicyStatus(); st.FillAllowed || !errors.Is(st.Err, published.ErrDiverged) || f.missFills(ifp2, 1) {
		t.Fatalf("ifpublished, another policy published: %+v", st)
	}
	off := f.client(func(o *Options) { o.PolicyCheck = PolicyOff })
	if st := off.PolicyStatus(); !st.FillAllowed || !st.Checked.IsZero() || !f.missFills(off, 1) {
		t.Fatalf("off: %+v", st)
	}
	if _, err := New(context.Background(), Options{Redis: f.rdb, PolicyCheck: PolicyCheck(9)}); err == nil {
		t.Fatal("an unknown policy check was accepted")
	}
	for _, s := range []string{"require", "ifpublished", "off"} {
		if p, err := ParsePolicyCheck(s); err != nil || p.String() != s {
			t.Errorf("ParsePolicyCheck(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParsePolicyCheck("sometimes"); err == nil {
		t.Error("ParsePolicyCheck accepted sometimes")
	}
}

// Redis down at New: no fills (nothing was compared) until a check reads the published policy.
func TestPolicyUnknownUntilRead(t *testing.T) {
	f := newFixture(t)
	f.unpublished = true
	f.redis.Stop()
	c := f.client(func(o *Options) {
		o.PolicyInterval, o.RedisTimeout, o.DBTimeout = 50*time.Millisecond, 100*time.Millisecond, 300*time.Millisecond
	})
	if st := c.PolicyStatus(); st.FillAllowed || st.Err == nil || !st.Checked.IsZero() {
		t.Fatalf("Redis down at New: %+v", st)
	}
	f.redis.Restart()
	f.publish(readerPolicy, time.Now())
	waitPolicy(t, c, true)
}
