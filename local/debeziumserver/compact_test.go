package debeziumserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/debeziumserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/pubsubemu"
)

var updateCompactValue = os.Getenv("UPDATE_COMPACT_FIXTURES") != ""

const compactFixtureDir = "../../testdata/debezium/compact"

// Explicit NULLs in nullable columns with a DEFAULT: Kafka's JsonConverter and the unwrap SMT both
// can write the DEFAULT in a NULL's place (KIP-581); both formats must store what the database holds.
var compactExtraSchema = []string{
	"CREATE TABLE defaults (id INT NOT NULL PRIMARY KEY, note VARCHAR(20) NULL DEFAULT 'dflt', n INT NULL DEFAULT 7)",
	"INSERT INTO defaults VALUES (1, NULL, NULL), (2, 'set', 3)",
}

var compactExtraSteps = []struct {
	name, doc string
	sql       []string
}{
	{"explicit-null", "INSERT and UPDATE writing explicit NULLs into columns with a DEFAULT", []string{
		"INSERT INTO defaults VALUES (3, NULL, NULL)",
		"UPDATE defaults SET note = NULL, n = NULL WHERE id = 2",
	}},
}

// TestCompactFormat runs two real Debezium Servers side by side on one MariaDB, the shipped full
// format and EVENT_FORMAT=compact (debezium-server/compact.properties), through the same snapshot
// and the same changes (TestRealFixtures' steps). Every compact message must decode, pair with
// exactly one full message that decodes to the same change (the function's differential test replays
// the pairs: function/apply TestCompactFormatIsEquivalent), and be smaller. With
// UPDATE_COMPACT_FIXTURES=1 both streams are written to testdata/debezium/compact.
func TestCompactFormat(t *testing.T) {
	tables := append(append([]string{}, fixtureTables...), "shop.defaults")
	full := newStack(t, tables, map[string]string{"HEARTBEAT_INTERVAL_MS": "1000"}, nil)
	db := full.mysql.DB("shop")
	full.exec(db, fixtureSchema...)
	full.exec(db, compactExtraSchema...)

	compact := *full
	ctx := context.Background()
	emu, err := pubsubemu.Start(ctx, pubsubemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	compact.emu = emu
	compact.cfg.RunDir = t.TempDir()
	compact.cfg.DB.ServerID = 5502
	compact.cfg.DB.StateDatabase = "debezium_state_compact"
	compact.cfg.PubSub = debeziumserver.PubSub{Project: emu.Project(), EmulatorAddr: emu.Addr()}
	compact.cfg.Env = map[string]string{"HEARTBEAT_INTERVAL_MS": "1000", "EVENT_FORMAT": "compact"}
	// Both servers keep their offsets and schema history on another MariaDB: in the source, the first
	// server's writes to them would move the binlog, and the two snapshots would be taken at different
	// positions (different versions of the same rows). Debezium's JDBC stores look their table up in
	// every database of the server (DatabaseMetaData.getTables with no catalog): with the first server's
	// tables in its database, the second would never create its own and retry "Table ... doesn't exist"
	// forever. Two Debeziums on one MySQL server need their own table names, not only their own
	// state databases.
	state := mariadbserver.StartForTest(t, mariadbserver.Options{})
	stateHost, statePort := splitAddr(t, state.Addr())
	for _, st := range []*stack{full, &compact} {
		suffix := ""
		if st == &compact {
			suffix = "_compact"
		}
		if err := debeziumserver.PrepareDatabase(ctx, state.DB(""), st.cfg.DB); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("jdbc:mysql://%s:%d/%s?sslMode=DISABLED", stateHost, statePort, st.cfg.DB.StateDatabase)
		st.cfg.Properties = map[string]string{
			"debezium.source.offset.storage.jdbc.connection.url":          url,
			"debezium.source.schema.history.internal.jdbc.connection.url": url,
			"debezium.source.offset.storage.jdbc.table.name":              "debezium_offsets" + suffix,
			"debezium.source.schema.history.internal.jdbc.table.name":     "debezium_schema_history" + suffix,
			// The shipped list appends the state database, for the signal table; here the state is on
			// the other server and each server's state database has its own name, so capturing it would
			// give the two servers different schema records of a database that is not even on the
			// source. This test sends no signal.
			"debezium.source.database.include.list": "shop",
		}
	}
	dist := *full.cfg.Dist
	if err := debeziumserver.FetchScripting(ctx, debeziumserver.FetchOptions{}, &dist); err != nil {
		t.Fatal(err)
	}
	compact.cfg.Dist = &dist
	topics, err := compact.cfg.Topics()
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if err := emu.EnsureTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	full.start()
	compact.start()

	steps := []struct {
		name string
		sql  []string
	}{{"snapshot", nil}}
	for _, st := range fixtureSteps {
		steps = append(steps, struct {
			name string
			sql  []string
		}{st.name, st.sql})
	}
	for _, st := range compactExtraSteps {
		steps = append(steps, struct {
			name string
			sql  []string
		}{st.name, st.sql})
	}
	var fulls, compacts []fixture
	var fullData, compactData [][]byte
	seenF, seenC := 0, 0
	for _, st := range steps {
		if st.sql != nil {
			conn, err := db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range st.sql {
				if _, err := conn.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %s: %v", st.name, q, err)
				}
			}
			conn.Close()
		}
		// The same number of messages from both (a truncate or a delete is one in either format),
		// then quiet.
		mf := full.quiet(seenF, 2*time.Second, 2*time.Minute)
		compact.waitCount(len(mf), time.Minute)
		mc := compact.quiet(seenC, time.Second, time.Minute)
		for _, m := range mf[seenF:] {
			fulls = append(fulls, newFixture(st.name, m))
			fullData = append(fullData, m.Data)
		}
		for _, m := range mc[seenC:] {
			compacts = append(compacts, newFixture(st.name, m))
			compactData = append(compactData, m.Data)
		}
		if len(mf)-seenF != len(mc)-seenC {
			t.Errorf("step %s: %d full messages, %d compact", st.name, len(mf)-seenF, len(mc)-seenC)
		}
		seenF, seenC = len(mf), len(mc)
	}

	for i, data := range [][][]byte{fullData, compactData} {
		fs := [][]fixture{fulls, compacts}[i]
		nulls := 0
		for j, d := range data {
			if fs[j].Step != "explicit-null" {
				continue
			}
			ev, err := debezium.Decode(d)
			if err != nil || ev.After == nil {
				continue
			}
			for _, col := range []string{"note", "n"} {
				if v, _ := ev.After.Get(col); string(v) != "null" {
					t.Errorf("%s: explicit NULL of %s published as %s: %s", fs[j].Topic, col, v, d)
				}
				nulls++
			}
		}
		if nulls != 4 {
			t.Errorf("%d explicit NULLs seen, want 4 (2 columns in 2 changes)", nulls)
		}
	}
	pairCompact(t, fulls, fullData, compacts, compactData)
	logCompactBytes(t, fulls, fullData, compacts, compactData)
	if updateCompactValue {
		for _, f := range []struct {
			dir  string
			fs   []fixture
			data [][]byte
			what string
		}{{"full", fulls, fullData, "EVENT_FORMAT=full (the template alone)"}, {"compact", compacts, compactData, "EVENT_FORMAT=compact (the template and compact.properties)"}} {
			writeCompactFixtures(t, filepath.Join(compactFixtureDir, f.dir), f.fs, f.data, f.what)
		}
	}
}

// identity is what pairs a full message with its compact form: where the change came from and what it
// is, without its representation.
func identity(t *testing.T, f fixture, data []byte) string {
	ev, err := debezium.Decode(data)
	if err != nil {
		t.Errorf("%s %s does not decode: %v\n%s", f.Step, f.Topic, err, data)
		return ""
	}
	var to uint64
	if ev.Transaction != nil {
		to = ev.Transaction.TotalOrder
	}
	snapshot := ev.Source.Snapshot
	if snapshot == "false" {
		// The full form's JSON converter writes the field's default for a streamed change; the SMT's
		// added field has none, so it is null: the same to the function (only the end markers count).
		snapshot = ""
	}
	img := ev.After
	if ev.Op == debezium.Delete {
		img = ev.Before
	}
	s := fmt.Sprintf("%s %s %s %v %s %s.%s %d/%d/%d/%d %q", f.Step, f.Topic, f.OrderingKey, ev.Kind, ev.Op, ev.Source.DB, ev.Source.Table,
		ev.Source.FileSeq, ev.Source.Pos, ev.Source.Row, to, snapshot)
	if ev.Kind == debezium.Change {
		s += " " + ev.Source.Name + " " + string(img.AppendJSON(nil, nil))
	}
	if ev.Kind == debezium.SchemaChange || ev.Kind == debezium.Heartbeat {
		// Not transformed: byte for byte the same but for their times.
		s = fmt.Sprintf("%s %s %s %v", f.Step, f.Topic, f.OrderingKey, ev.Kind)
		if ev.Schema != nil {
			s += " " + ev.Schema.DDL
		}
	}
	return s
}

func pairCompact(t *testing.T, fulls []fixture, fullData [][]byte, compacts []fixture, compactData [][]byte) {
	want := map[string]int{}
	for i, f := range fulls {
		want[identity(t, f, fullData[i])]++
	}
	for i, f := range compacts {
		id := identity(t, f, compactData[i])
		if want[id] == 0 {
			t.Errorf("compact message with no full counterpart: %s\n%s", id, compactData[i])
			continue
		}
		want[id]--
	}
	for id, n := range want {
		if n > 0 {
			t.Errorf("%d full messages with no compact counterpart: %s", n, id)
		}
	}
}

// logCompactBytes logs the mean data bytes per kind of message in both formats and their ratio, and
// fails if a transformed change is not smaller.
func logCompactBytes(t *testing.T, fulls []fixture, fullData [][]byte, compacts []fixture, compactData [][]byte) {
	type agg struct{ n, bytes int }
	sum := func(fs []fixture, data [][]byte) (map[string]*agg, []string) {
		m := map[string]*agg{}
		var names []string
		for i, f := range fs {
			name := describeAny(data[i], f.Topic)
			if m[name] == nil {
				m[name] = &agg{}
				names = append(names, name)
			}
			m[name].n++
			m[name].bytes += len(data[i]) + len(f.OrderingKey) + f.Bytes.Attributes
		}
		sort.Strings(names)
		return m, names
	}
	fm, names := sum(fulls, fullData)
	cm, _ := sum(compacts, compactData)
	var b strings.Builder
	fmt.Fprintf(&b, "bytes per message on the wire (data + ordering key + attributes, mean over n):\n%-28s %4s %6s %7s %6s\n", "table-op", "n", "full", "compact", "ratio")
	for _, n := range names {
		f, c := fm[n], cm[n]
		if c == nil {
			t.Errorf("%s: no compact messages", n)
			continue
		}
		ratio := float64(c.bytes/c.n) / float64(f.bytes/f.n)
		fmt.Fprintf(&b, "%-28s %4d %6d %7d %6.2f\n", n, f.n, f.bytes/f.n, c.bytes/c.n, ratio)
		if !strings.HasSuffix(n, "-t") && !strings.Contains(n, "schema-change") && !strings.Contains(n, "heartbeat") && ratio >= 1 {
			t.Errorf("%s: compact (%d B) is not smaller than full (%d B)", n, c.bytes/c.n, f.bytes/f.n)
		}
	}
	t.Log(b.String())
}

// describeAny is describe for both formats.
func describeAny(data []byte, topic string) string {
	var ev map[string]any
	_ = json.Unmarshal(data, &ev)
	if op, ok := ev["__op"].(string); ok {
		return topic[strings.LastIndexByte(topic, '.')+1:] + "-" + op
	}
	return describe(data, topic)
}

func writeCompactFixtures(t *testing.T, dir string, fs []fixture, data [][]byte, what string) {
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range fs {
		fs[i].File = fmt.Sprintf("%03d-%s-%s.json", i+1, fs[i].Step, describeAny(data[i], fs[i].Topic))
		if err := os.WriteFile(filepath.Join(dir, fs[i].File), data[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := manifest{Produced: fmt.Sprintf("Debezium Server %s, MariaDB connector, %s, with local/debeziumserver.Overrides, HEARTBEAT_INTERVAL_MS=1000, beside the other format on the same database (TestCompactFormat)", debeziumserver.Version, what),
		Steps: []string{"snapshot: the rows of fixtureSchema and compactExtraSchema"}, Messages: fs}
	for _, st := range fixtureSteps {
		m.Steps = append(m.Steps, st.name+": "+st.doc+": "+strings.Join(st.sql, "; "))
	}
	for _, st := range compactExtraSteps {
		m.Steps = append(m.Steps, st.name+": "+st.doc+": "+strings.Join(st.sql, "; "))
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "messages.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d fixtures to %s", len(fs), dir)
}
