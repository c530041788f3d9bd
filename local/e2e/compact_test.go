package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPipelineCompact runs the pipeline with Debezium Server publishing EVENT_FORMAT=compact, the
// shipped default of a deployment and of `make run` (TestPipeline keeps the image's own default, the
// full envelope): a snapshot, a random workload, and the schema changes (truncates travel around the
// compact transform in the full form, DDL as schema changes), each ending with no drift. It fails if a
// row change arrives in the full form: the compact path would not have been tested.
func TestPipelineCompact(t *testing.T) {
	start := time.Now()
	s := newStack(t, stackOptions{debeziumEnv: map[string]string{"EVENT_FORMAT": "compact"}})
	var vals []string
	for id := 1; id <= snapshotRows; id++ {
		vals = append(vals, fmt.Sprintf("(%d, 'seed%d', 'c%d@example.org', 'free')", id, id, id))
	}
	sqlExec(t, s.db, "INSERT INTO customers (id, name, email, tier) VALUES "+strings.Join(vals, ","))
	s.capture(true)
	if err := s.p.StartDebezium(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.waitStreaming(t)
	runSteps(t, []step{
		{"Snapshot", func(t *testing.T) { s.settle(t, false) }},
		{"RandomWorkload", func(t *testing.T) { s.run(t, scenario{d: 8 * time.Second}) }},
		{"SchemaChanges", s.schemaChanges},
	}, nil)
	sub := s.p.Emu.SubscriptionName("local.shop.customers")
	compact, full := 0, 0
	for _, d := range s.capture(false) {
		switch {
		case d.sub != sub || !d.acked:
		case d.compact:
			compact++
		case d.op != "":
			full++
		}
	}
	if compact < snapshotRows || full > 0 {
		t.Errorf("customers' row changes delivered: %d compact, %d full; want ≥ %d compact and no full ones", compact, full, snapshotRows)
	}
	t.Logf("all scenarios: %.1f s", time.Since(start).Seconds())
}
