package pipeline

import (
	"fmt"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
)

// Lag is measured from the applied changes' own times, at the answer; nothing else counts.
func TestLagOfAppliedChanges(t *testing.T) {
	at := time.UnixMilli(1_700_000_010_000)
	delivery := func(data, outcome string, acked, repeat bool) relay.Delivery {
		return relay.Delivery{Message: &pb.PubsubMessage{Data: []byte(data)}, Outcome: outcome, Acked: acked, Repeat: repeat, At: at}
	}
	change := func(op string, commitMs, tsUs int64) string {
		return fmt.Sprintf(`{"before":null,"after":{"id":1},"source":{"ts_ms":%d,"db":"d","table":"t"},"op":%q,"ts_us":%d}`, commitMs, op, tsUs)
	}
	m := newLagMeter()
	var applied []Applied
	for _, d := range []relay.Delivery{
		delivery(change("u", 1_700_000_009_000, 1_700_000_009_990_000), "applied", true, false), // 1000 ms, 10 ms
		delivery(change("c", 1_700_000_008_000, 1_700_000_009_980_000), "applied", true, false), // 2000 ms, 20 ms
		delivery(change("u", 1_700_000_000_000, 1_700_000_000_000_000), "applied", true, true),  // a repeat
		delivery(change("u", 1_700_000_000_000, 1_700_000_000_000_000), "stale", true, false),   // not applied
		delivery(change("u", 1_700_000_000_000, 1_700_000_000_000_000), "retry", false, false),  // not acknowledged
		delivery(change("r", 1_700_000_000_000, 1_700_000_000_000_000), "applied", true, false), // a snapshot read
		delivery(`{"ts_ms":1700000000000}`, "applied", true, false),                             // a heartbeat
		// The compact format: the row plus __ metadata, no processing time.
		delivery(`{"id":1,"__op":"u","__db":"d","__table":"t","__source_ts_ms":1700000007000}`, "applied", true, false), // 3000 ms
	} {
		if a, ok := appliedOf(d); ok {
			applied = append(applied, a)
			m.observe(a)
		}
	}
	if len(applied) != 4 || applied[3].Op != "u" || applied[3].CommitMs != 1_700_000_007_000 || applied[3].TsUs != 0 || applied[0].Op != "u" || applied[0].CommitMs != 1_700_000_009_000 || applied[0].TsUs != 1_700_000_009_990_000 {
		t.Fatalf("applied changes: %+v", applied)
	}
	lag := m.lag()
	if lag.Commit.N != 3 || lag.Commit.P50 != 2000 || lag.Commit.Max != 3000 || lag.Debezium.N != 2 || lag.Debezium.P50 != 20 {
		t.Fatalf("lag %+v", lag)
	}
	m.reset()
	if lag := m.lag(); lag.Commit.N != 0 || lag.Debezium.N != 0 {
		t.Fatalf("after reset: %+v", lag)
	}
}
