package published

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

var ctx = context.Background()

// fromEnv is a policy as a process reads it from its CACHE_* variables.
func fromEnv(t *testing.T, env map[string]string) *tablepolicy.Policy {
	t.Helper()
	c, err := tablepolicy.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	p, err := tablepolicy.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The function's settings in these tests.
var functionEnv = map[string]string{
	"CACHE_TABLES":          "shop.customers,shop.orders",
	"CACHE_EXCLUDE_COLUMNS": "shop.customers.email",
	"CACHE_KEY_TEMPLATES":   "shop.orders=order:{id}",
	"CACHE_VERSION_EPOCH":   "3",
}

func with(env map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range env {
		out[a] = b
	}
	out[k] = v
	return out
}

func load(t *testing.T, rs *redisserver.TestServer, now time.Time) State {
	t.Helper()
	s, err := Load(ctx, rs.Client(), now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPublishAndLoad(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	rdb := rs.Client()
	now := time.UnixMilli(time.Now().UnixMilli())
	if _, err := Load(ctx, rdb, now); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("nothing published: %v", err)
	}
	fn := fromEnv(t, functionEnv)
	if err := Publish(ctx, rdb, fn, "apply-00001", now); err != nil {
		t.Fatal(err)
	}
	s := load(t, rs, now)
	if len(s.Publications) != 1 {
		t.Fatalf("%+v", s)
	}
	p := s.Publications[0]
	if p.Err != nil || p.Fingerprint != fn.Fingerprint() || p.ReadFingerprint != fn.ReadFingerprint() || string(p.Policy.Canonical()) != string(fn.Canonical()) ||
		p.FunctionVersion != "apply-00001" || !p.PublishedAt.Equal(now) || !p.LastSeen.Equal(now) {
		t.Fatalf("%+v", p)
	}
	// Published again by another instance, later: its first publication stays, its last sighting moves.
	later := now.Add(HeartbeatInterval)
	if err := Publish(ctx, rdb, fn, "apply-00002", later); err != nil {
		t.Fatal(err)
	}
	// And by one whose clock is behind: the last sighting does not go back.
	if err := Publish(ctx, rdb, fn, "apply-00002", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	p = load(t, rs, later).Publications[0]
	if !p.PublishedAt.Equal(now) || !p.LastSeen.Equal(later) || p.FunctionVersion != "apply-00002" {
		t.Fatalf("%+v", p)
	}
	cur, err := load(t, rs, later).Current()
	if err != nil || cur.Fingerprint != fn.Fingerprint() {
		t.Fatalf("Current: %+v %v", cur, err)
	}
}

// A reader checks its own policy against the function's before it fills: the same policy however
// spelled, or one that differs only in how the function orders changes, may fill; one that would write
// columns the function excludes, under other keys, or tables the function does not cache, may not, and
// the error names each setting with the function's value.
func TestReaderDivergence(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	now := time.Now()
	if err := Publish(ctx, rs.Client(), fromEnv(t, functionEnv), "apply-00007", now); err != nil {
		t.Fatal(err)
	}
	s := load(t, rs, now)
	for name, tc := range map[string]struct {
		env     map[string]string
		setting string // "" when the reader may fill
		theirs  string
	}{
		"the same":                      {functionEnv, "", ""},
		"spelled otherwise":             {with(with(functionEnv, "CACHE_TABLES", " shop.orders, shop.customers,shop.orders"), "CACHE_KEY_TEMPLATES", "shop.orders=order:{id},shop.customers={db}.{table}:{pk}"), "", ""},
		"another epoch":                 {with(functionEnv, "CACHE_VERSION_EPOCH", "0"), "", ""},
		"no CACHE_EXCLUDE_COLUMNS":      {with(functionEnv, "CACHE_EXCLUDE_COLUMNS", ""), "CACHE_EXCLUDE_COLUMNS", "shop.customers.email"},
		"another excluded column":       {with(functionEnv, "CACHE_EXCLUDE_COLUMNS", "shop.customers.phone"), "CACHE_EXCLUDE_COLUMNS", "shop.customers.email"},
		"another key template":          {with(functionEnv, "CACHE_KEY_TEMPLATES", "shop.orders=orders:{id}"), "CACHE_KEY_TEMPLATES", "shop.customers=shop.customers:{pk},shop.orders=order:{id}"},
		"the default key for a table":   {with(functionEnv, "CACHE_KEY_TEMPLATES", ""), "CACHE_KEY_TEMPLATES", "shop.customers=shop.customers:{pk},shop.orders=order:{id}"},
		"another shared template":       {with(functionEnv, "CACHE_KEY_TEMPLATE", "{db}/{table}/{pk}"), "CACHE_KEY_TEMPLATES", "shop.customers=shop.customers:{pk},shop.orders=order:{id}"},
		"fewer tables":                  {with(functionEnv, "CACHE_TABLES", "shop.orders"), "CACHE_TABLES", "shop.customers,shop.orders"},
		"more tables":                   {with(functionEnv, "CACHE_TABLES", "shop.customers,shop.orders,shop.lines"), "CACHE_TABLES", "shop.customers,shop.orders"},
		"every table (no CACHE_TABLES)": {with(functionEnv, "CACHE_TABLES", ""), "CACHE_TABLES", "shop.customers,shop.orders"},
	} {
		err := s.Check(fromEnv(t, tc.env))
		if tc.setting == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		var d *DivergedError
		if !errors.As(err, &d) || !errors.Is(err, ErrDiverged) {
			t.Errorf("%s: %v, want a divergence", name, err)
			continue
		}
		found := false
		for _, diff := range d.Differences {
			found = found || (diff.Setting == tc.setting && diff.Theirs == tc.theirs)
			if !diff.Reads {
				t.Errorf("%s: %v does not change reads", name, diff)
			}
		}
		if !found || d.Function.FunctionVersion != "apply-00007" || !strings.Contains(err.Error(), tc.setting+": ours") {
			t.Errorf("%s: %v\ndoes not name %s with the function's %q", name, err, tc.setting, tc.theirs)
		}
	}
}

// Two revisions rolling out, an old one restarting, a rollback and a stopped function.
func TestRollout(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	rdb := rs.Client()
	oldEnv := functionEnv
	newEnv := with(functionEnv, "CACHE_EXCLUDE_COLUMNS", "shop.customers.email,shop.customers.phone")
	old, nw := fromEnv(t, oldEnv), fromEnv(t, newEnv)
	t0 := time.Now()
	publish := func(p *tablepolicy.Policy, version string, at time.Time) {
		t.Helper()
		if err := Publish(ctx, rdb, p, version, at); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, at time.Time, want map[*tablepolicy.Policy]error) {
		t.Helper()
		s := load(t, rs, at)
		for p, w := range want {
			if err := s.Check(p); !errors.Is(err, w) {
				t.Errorf("%s: a reader with the %s policy: %v, want %v", step, map[*tablepolicy.Policy]string{old: "old", nw: "new"}[p], err, w)
			}
		}
	}
	publish(old, "apply-00001", t0)
	check("one revision", t0, map[*tablepolicy.Policy]error{old: nil, nw: ErrDiverged})

	// The new revision starts while the old one still runs: neither layout is the function's alone.
	t1 := t0.Add(time.Minute)
	publish(nw, "apply-00002", t1)
	publish(old, "apply-00001", t1)
	check("both running", t1, map[*tablepolicy.Policy]error{old: ErrRollout, nw: ErrRollout})
	if _, err := load(t, rs, t1).Current(); !errors.Is(err, ErrRollout) {
		t.Errorf("Current during a rollout: %v", err)
	}

	// The old revision's instances stop; the new one keeps publishing.
	t2 := t1.Add(Liveness + time.Second)
	publish(nw, "apply-00002", t2)
	check("old revision stopped", t2, map[*tablepolicy.Policy]error{old: ErrDiverged, nw: nil})

	// An old instance starts again (scaling up before the rollout's end): it is writing the cache, so
	// it counts again. "Last publisher wins" would have made the old policy the function's alone.
	t3 := t2.Add(10 * time.Second)
	publish(old, "apply-00001", t3)
	check("old instance restarted", t3, map[*tablepolicy.Policy]error{old: ErrRollout, nw: ErrRollout})

	// A rollback: traffic goes back to the old revision, the new one's instances stop. A revision
	// number would still name the new policy.
	t4 := t3.Add(Liveness + time.Second)
	publish(old, "apply-00001", t4)
	check("rolled back", t4, map[*tablepolicy.Policy]error{old: nil, nw: ErrDiverged})
	cur, err := load(t, rs, t4).Current()
	if err != nil || cur.Fingerprint != old.Fingerprint() {
		t.Errorf("Current after the rollback: %+v %v", cur, err)
	}

	// The function stopped altogether: the policy seen last is still the cache's.
	t5 := t4.Add(time.Hour)
	check("function stopped", t5, map[*tablepolicy.Policy]error{old: nil, nw: ErrDiverged})

	// A rollout that only raises the epoch changes no read layout: readers keep filling.
	raised := fromEnv(t, with(oldEnv, "CACHE_VERSION_EPOCH", "4"))
	publish(raised, "apply-00003", t5)
	publish(old, "apply-00001", t5)
	check("epoch raised", t5, map[*tablepolicy.Policy]error{old: nil, raised: nil, nw: ErrDiverged})
	if s := load(t, rs, t5); len(s.Live()) != 2 {
		t.Errorf("live: %+v", s.Live())
	}
}

// A policy nobody publishes any more is dropped after Retention; the others stay.
func TestRetention(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	rdb := rs.Client()
	now := time.Now()
	a, b, c := fromEnv(t, functionEnv), fromEnv(t, with(functionEnv, "CACHE_VERSION_EPOCH", "4")), fromEnv(t, with(functionEnv, "CACHE_VERSION_EPOCH", "5"))
	for _, step := range []struct {
		p  *tablepolicy.Policy
		at time.Time
	}{{a, now.Add(-Retention - time.Hour)}, {b, now.Add(-Retention + time.Hour)}, {c, now}} {
		if err := Publish(ctx, rdb, step.p, "v", step.at); err != nil {
			t.Fatal(err)
		}
	}
	s := load(t, rs, now)
	if len(s.Publications) != 2 || s.Publications[0].Fingerprint != c.Fingerprint() || s.Publications[1].Fingerprint != b.Fingerprint() {
		t.Fatalf("%+v", s.Publications)
	}
}

// The document is left alone by an epoch sweep over every key, and a value at Key that is not a
// document is neither overwritten nor taken for one.
func TestDocumentAmongOtherKeys(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	rdb := rs.Client()
	now := time.Now()
	fn := fromEnv(t, functionEnv)
	if err := Publish(ctx, rdb, fn, "v", now); err != nil {
		t.Fatal(err)
	}
	before, err := rdb.Get(ctx, Key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rowcache.NewStore(rdb, time.Hour).SweepEpoch(ctx, rowcache.TableKeys{Pattern: "*"}, 99); err != nil {
		t.Fatalf("epoch sweep: %v", err)
	}
	if after, err := rdb.Get(ctx, Key).Result(); err != nil || after != before {
		t.Fatalf("after the sweep: %q %v", after, err)
	}
	if err := rdb.Set(ctx, Key, "0.0.1.2.3 {}", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := Publish(ctx, rdb, fn, "v", now); err == nil || !strings.Contains(err.Error(), "FOREIGN") {
		t.Fatalf("publish over a foreign value: %v", err)
	}
	if _, err := Load(ctx, rdb, now); err == nil || errors.Is(err, ErrNotPublished) {
		t.Fatalf("load of a foreign value: %v", err)
	}
}

// A policy this release cannot read still counts: readers do not fill beside it.
func TestUnreadablePublication(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	rdb := rs.Client()
	now := time.Now()
	fn := fromEnv(t, functionEnv)
	if err := Publish(ctx, rdb, fn, "v1", now); err != nil {
		t.Fatal(err)
	}
	// A later release's function, with a canonical format this one does not know.
	err := publishScript.Run(ctx, rdb, []string{Key}, "sha256:future", "sha256:future-read", `{"format":2}`, "v9",
		now.UnixMilli(), Retention.Milliseconds()).Err()
	if err != nil {
		t.Fatal(err)
	}
	s := load(t, rs, now)
	if len(s.Publications) != 2 {
		t.Fatalf("%+v", s)
	}
	if err := s.Check(fn); err == nil || !strings.Contains(err.Error(), "format 2") {
		t.Fatalf("Check beside an unreadable policy: %v", err)
	}
	if _, err := s.Current(); err == nil {
		t.Fatal("Current beside an unreadable policy: no error")
	}
}

// Heartbeat publishes again and again until its context ends.
func TestHeartbeat(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	rdb := rs.Client()
	fn := fromEnv(t, functionEnv)
	start := time.Now().Add(-time.Hour)
	if err := Publish(ctx, rdb, fn, "v", start); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		Heartbeat(hctx, rdb, fn, "v", 5*time.Millisecond, func(err error) { t.Error(err) })
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for load(t, rs, time.Now()).Publications[0].LastSeen.Equal(time.UnixMilli(start.UnixMilli())) {
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
