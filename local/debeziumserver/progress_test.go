package debeziumserver

import (
	"os"
	"path/filepath"
	"testing"
)

// The log lines of a snapshot (Debezium 3.6.1's wording, Quarkus's console format), read as they are
// appended, a line split across two reads included.
func TestProgressFromTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "debezium.log")
	old := "2026-12-01 22:19:30,001 INFO  [io.deb.rel.RelationalSnapshotChangeEventSource] (x) Snapshot step 7 - Snapshotting data\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newProgressReader(path, int64(len(old))) // the previous start's lines are not this start's
	appendLog := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	if p := r.read(); p.Phase != "starting" || p.Snapshotted {
		t.Fatalf("before any line: %#v", p)
	}
	const prefix = "2026-12-01 22:19:31,000 INFO  [io.debezium.relational.RelationalSnapshotChangeEventSource] (debezium-mariadbconnector-local-change-event-source-coordinator) "
	appendLog(prefix + "Snapshot step 1 - Preparing\n" + prefix + "Snapshot step 7 - Snapshotting data\n" +
		prefix + "Exporting data from table 'shop.customers' (1 of 2 tables)\n" + prefix + "\t Exported 10000 of 25000 rec")
	if p := r.read(); p.Phase != "snapshot" || !p.Snapshotted || p.Table != "shop.customers" || p.TableNo != 1 || p.Tables != 2 || p.Rows != 0 {
		t.Fatalf("exporting: %#v", p)
	}
	appendLog("ords for table 'shop.customers' after 00:00:10.1\n")
	if p := r.read(); p.Rows != 10000 || p.Estimate != 25000 || p.String() != "snapshot: shop.customers (table 1 of 2), 10000 of ~25000 rows exported" {
		t.Fatalf("exported: %#v %s", p, p)
	}
	appendLog(prefix + "\t Finished exporting 25001 records for table 'shop.customers' (1 of 2 tables); total duration '00:00:12.5'\n" +
		prefix + "Exporting data from table 'shop.products' (2 of 2 tables)\n" +
		prefix + "\t Finished exporting 4 records for table 'shop.products' (2 of 2 tables); total duration '00:00:00.1'\n" +
		"2026-12-01 22:19:44,000 INFO  [io.debezium.pipeline.source.AbstractSnapshotChangeEventSource] (x) Snapshot completed\n" +
		"2026-12-01 22:19:44,100 INFO  [io.debezium.pipeline.ChangeEventSourceCoordinator] (x) Starting streaming\n" +
		"2026-12-01 22:19:45,000 ERROR [io.debezium.embedded.async.AsyncEmbeddedEngine] (x) Engine has failed with: boom\n")
	p := r.read()
	if p.Phase != "streaming" || p.SnapshotRows != 25005 || p.String() != "streaming (after a snapshot of 25005 rows)" || p.LastError == "" {
		t.Fatalf("streaming: %#v %s", p, p)
	}
}
