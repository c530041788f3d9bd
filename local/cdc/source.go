// Package cdc is a local stand-in for Debezium Server's MySQL source with the Pub/Sub sink: an initial
// consistent snapshot (op "r"), then the binlog (go-mysql), each row change published as Debezium's JSON
// envelope with schemas off, keyed and ordered by the primary-key JSON, to the topic
// <prefix>.<db>.<table>. It resumes from a durable offset after a restart (at-least-once).
package cdc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

// Message is one record for the sink: what Debezium Server's Pub/Sub sink publishes.
type Message struct {
	Topic       string // <prefix>.<db>.<table>
	OrderingKey string // the key JSON, or NullKey for a keyless record
	Data        []byte // the envelope
}

// NullKey is the ordering key of records without a key (tables without a primary key, truncates):
// Debezium Server's debezium.sink.pubsub.null.key default.
const NullKey = "default"

// Sink publishes messages. Publish must keep the order of messages with the same ordering key; the
// returned function waits until the message is safely accepted (the offset is saved only then).
type Sink interface {
	Publish(ctx context.Context, m Message) (wait func(context.Context) error)
}

// Config configures a Source.
type Config struct {
	// DSN is a go-sql-driver/mysql DSN of a user with REPLICATION SLAVE, REPLICATION CLIENT, RELOAD
	// (for the snapshot lock) and SELECT; it is passed through mysqlrow.CheckDSN.
	DSN string
	// Flavor is "mariadb" or "mysql".
	Flavor string
	// ServerID is this replica's server_id; it must differ from every other replica of the server.
	ServerID uint32
	// Prefix is Debezium's topic.prefix (source.name).
	Prefix string
	// Tables is the db.table include-list; Databases the database include-list. Both empty: every
	// table outside the system databases.
	Tables, Databases []string
	// StateDir holds the offset file.
	StateDir string
	Sink     Sink
	Logger   *slog.Logger
	// SaveEvery bounds how often the offset is written; 0 means 200ms.
	SaveEvery time.Duration
}

// Source runs the snapshot and the binlog stream.
type Source struct {
	cfg    Config
	db     *sql.DB
	dsn    *mysqldriver.Config
	log    *slog.Logger
	tables map[string]*mysqlrow.Table
}

// New validates cfg and opens the database.
func New(cfg Config) (*Source, error) {
	var errs []error
	dsn, err := mysqlrow.CheckDSN(cfg.DSN)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Flavor != mysql.MariaDBFlavor && cfg.Flavor != mysql.MySQLFlavor {
		errs = append(errs, fmt.Errorf("cdc: flavor %q is not mariadb or mysql", cfg.Flavor))
	}
	if cfg.ServerID == 0 {
		errs = append(errs, errors.New("cdc: server id must not be 0"))
	}
	if cfg.Prefix == "" {
		errs = append(errs, errors.New("cdc: topic prefix is required"))
	}
	if cfg.StateDir == "" {
		errs = append(errs, errors.New("cdc: state dir is required"))
	}
	if cfg.Sink == nil {
		errs = append(errs, errors.New("cdc: sink is required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	parsed, _ := mysqldriver.ParseDSN(dsn)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("cdc: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SaveEvery == 0 {
		cfg.SaveEvery = 200 * time.Millisecond
	}
	return &Source{cfg: cfg, db: db, dsn: parsed, log: cfg.Logger, tables: map[string]*mysqlrow.Table{}}, nil
}

// Close releases the database handle.
func (s *Source) Close() error { return s.db.Close() }

var systemDBs = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

func (s *Source) included(db, table string) bool {
	if systemDBs[db] {
		return false
	}
	if len(s.cfg.Tables) > 0 {
		for _, t := range s.cfg.Tables {
			if t == db+"."+table {
				return true
			}
		}
		return false
	}
	if len(s.cfg.Databases) > 0 {
		for _, d := range s.cfg.Databases {
			if d == db {
				return true
			}
		}
		return false
	}
	return true
}

func (s *Source) topic(db, table string) string { return s.cfg.Prefix + "." + db + "." + table }

// Run snapshots (unless the state dir has an offset past the snapshot), then streams the binlog until
// ctx ends or an error occurs. It returns nil when ctx is cancelled.
func (s *Source) Run(ctx context.Context) error {
	off, ok, err := LoadOffset(s.cfg.StateDir)
	if err != nil {
		return err
	}
	c := newCommitter(s.cfg.StateDir, s.cfg.SaveEvery, s.log)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.run(ctx); err != nil {
			cancel(err)
		}
	}()
	err = func() error {
		if !ok || !off.SnapshotCompleted {
			if off, err = s.snapshot(ctx, c); err != nil {
				return err
			}
		}
		return s.stream(ctx, c, off)
	}()
	if err != nil && ctx.Err() == nil {
		cancel(err)
	}
	c.close()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// snapshot reads every included table in one consistent snapshot and returns the binlog position it
// was taken at, as Debezium's default (snapshot.locking.mode=minimal) does: a global read lock only
// while the position is read and the snapshot transaction starts.
func (s *Source) snapshot(ctx context.Context, c *committer) (Offset, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return Offset{}, fmt.Errorf("cdc: snapshot: %w", err)
	}
	defer conn.Close()
	exec := func(q string) error {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("cdc: snapshot: %s: %w", q, err)
		}
		return nil
	}
	if err := exec("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return Offset{}, err
	}
	if err := exec("FLUSH TABLES WITH READ LOCK"); err != nil {
		return Offset{}, err
	}
	off, err := masterStatus(ctx, conn)
	if err != nil {
		_ = exec("UNLOCK TABLES")
		return Offset{}, err
	}
	if err := exec("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		_ = exec("UNLOCK TABLES")
		return Offset{}, err
	}
	if err := exec("UNLOCK TABLES"); err != nil {
		return Offset{}, err
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK") //nolint:errcheck // read-only

	var names [][2]string
	rows, err := conn.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME")
	if err != nil {
		return Offset{}, fmt.Errorf("cdc: snapshot: list tables: %w", err)
	}
	for rows.Next() {
		var db, t string
		if err := rows.Scan(&db, &t); err != nil {
			rows.Close()
			return Offset{}, fmt.Errorf("cdc: snapshot: list tables: %w", err)
		}
		if s.included(db, t) {
			names = append(names, [2]string{db, t})
		}
	}
	rows.Close()
	s.log.Info("snapshot started", "tables", len(names), "file", off.File, "pos", off.Pos)

	var waits []func(context.Context) error
	var pending *Message
	var pendingSnap string
	var pendingFirstInTable bool
	count := 0
	// Each record is held back until the next one is read, so the very last can be marked "last".
	flush := func(last, lastInTable bool) {
		if pending == nil {
			return
		}
		snap := pendingSnap
		switch {
		case last:
			snap = "last"
		case count == 1:
			snap = "first"
		case pendingFirstInTable:
			snap = "first_in_data_collection"
		case lastInTable:
			snap = "last_in_data_collection"
		}
		pending.Data = []byte(strings.Replace(string(pending.Data), `"snapshot":"true"`, `"snapshot":"`+snap+`"`, 1))
		waits = append(waits, s.cfg.Sink.Publish(ctx, *pending))
		pending = nil
	}
	now := time.Now()
	for ti, n := range names {
		t, err := mysqlrow.LoadTable(ctx, s.db, n[0], n[1])
		if err != nil {
			return Offset{}, fmt.Errorf("cdc: snapshot: %w", err)
		}
		s.tables[n[0]+"."+n[1]] = t
		rows, err := conn.QueryContext(ctx, "SELECT "+t.SelectList()+" FROM "+t.QualifiedName())
		if err != nil {
			return Offset{}, fmt.Errorf("cdc: snapshot %s.%s: %w", n[0], n[1], err)
		}
		first := true
		for rows.Next() {
			row, err := t.ScanRow(rows)
			if err != nil {
				rows.Close()
				return Offset{}, fmt.Errorf("cdc: snapshot: %w", err)
			}
			flush(false, false)
			count++
			key, _ := t.Key(row)
			p := position{TsMs: now.UnixMilli(), Snapshot: "true", DB: n[0], Table: n[1], File: off.File, Pos: off.Pos, Thread: -1}
			m := Message{Topic: s.topic(n[0], n[1]), OrderingKey: orderingKey(key), Data: envelope(s.cfg.Prefix, 'r', nil, row, p, time.Now().UnixMicro())}
			pending, pendingSnap, pendingFirstInTable = &m, "true", first && ti > 0
			first = false
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return Offset{}, fmt.Errorf("cdc: snapshot %s.%s: %w", n[0], n[1], err)
		}
		if ti < len(names)-1 {
			flush(false, true)
		}
	}
	flush(true, true)
	off.SnapshotCompleted = true
	if err := c.commit(ctx, waits, off, true); err != nil {
		return Offset{}, err
	}
	s.log.Info("snapshot published", "rows", count)
	return off, nil
}

func masterStatus(ctx context.Context, conn *sql.Conn) (Offset, error) {
	rows, err := conn.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return Offset{}, fmt.Errorf("cdc: SHOW MASTER STATUS: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return Offset{}, errors.New("cdc: SHOW MASTER STATUS is empty: the binlog is off (start the server with log_bin)")
	}
	vals := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return Offset{}, fmt.Errorf("cdc: SHOW MASTER STATUS: %w", err)
	}
	pos, err := strconv.ParseUint(string(vals[1]), 10, 64)
	if err != nil {
		return Offset{}, fmt.Errorf("cdc: SHOW MASTER STATUS position %q: %w", vals[1], err)
	}
	return Offset{File: string(vals[0]), Pos: pos}, nil
}

func orderingKey(key debezium.Row) string {
	if k := keyJSON(key); k != "" {
		return k
	}
	return NullKey
}

var truncateRE = regexp.MustCompile("(?is)^(?:\\s|/\\*.*?\\*/|(?:--|#)[^\\n]*\\n)*truncate\\s+(?:table\\s+)?(?:`?([^`.\\s]+)`?\\s*\\.\\s*)?`?([^`.\\s;]+)`?")

// stream reads the binlog from off until ctx ends.
func (s *Source) stream(ctx context.Context, c *committer, off Offset) error {
	host, portStr, err := net.SplitHostPort(s.dsn.Addr)
	if err != nil {
		return fmt.Errorf("cdc: DSN address %q: %w", s.dsn.Addr, err)
	}
	port, _ := strconv.Atoi(portStr)
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:                s.cfg.ServerID,
		Flavor:                  s.cfg.Flavor,
		Host:                    host,
		Port:                    uint16(port),
		User:                    s.dsn.User,
		Password:                s.dsn.Passwd,
		ParseTime:               false,
		TimestampStringLocation: time.UTC,
		UseDecimal:              false,
		HeartbeatPeriod:         5 * time.Second,
		ReadTimeout:             15 * time.Second,
		MaxReconnectAttempts:    0,
		Logger:                  slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	streamer, err := syncer.StartSync(mysql.Position{Name: off.File, Pos: uint32(off.Pos)})
	if err != nil {
		return fmt.Errorf("cdc: start binlog stream at %s:%d: %w", off.File, off.Pos, err)
	}
	s.log.Info("streaming", "file", off.File, "pos", off.Pos)
	file := off.File
	gtid := ""
	thread := int64(-1)
	var waits []func(context.Context) error
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cdc: binlog: %w", err)
		}
		h := ev.Header
		evPos := uint64(h.LogPos) - uint64(h.EventSize)
		commit := func() error {
			o := Offset{File: file, Pos: uint64(h.LogPos), GTID: gtid, SnapshotCompleted: true}
			err := c.commit(ctx, waits, o, false)
			waits = nil
			return err
		}
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			file = string(e.NextLogName)
		case *replication.MariadbGTIDEvent:
			gtid = e.GTID.String()
			thread = -1
		case *replication.GTIDEvent:
			if next, err := e.GTIDNext(); err == nil {
				gtid = next.String()
			}
			thread = -1
		case *replication.QueryEvent:
			q := strings.TrimSpace(string(e.Query))
			thread = int64(e.SlaveProxyID)
			switch strings.ToUpper(q) {
			case "BEGIN":
				continue
			case "COMMIT":
				if err := commit(); err != nil {
					return err
				}
				continue
			}
			// DDL: table metadata is read again on next use. (Debezium keeps a schema history to
			// decode older events with the schema of their time; this stand-in reads the current one.)
			s.tables = map[string]*mysqlrow.Table{}
			if m := truncateRE.FindStringSubmatch(q); m != nil {
				db := m[1]
				if db == "" {
					db = string(e.Schema)
				}
				if s.included(db, m[2]) {
					p := position{TsMs: int64(h.Timestamp) * 1000, Snapshot: "false", DB: db, Table: m[2], ServerID: h.ServerID, GTID: gtid, File: file, Pos: evPos, Thread: thread}
					waits = append(waits, s.cfg.Sink.Publish(ctx, Message{Topic: s.topic(db, m[2]), OrderingKey: NullKey, Data: truncateEnvelope(s.cfg.Prefix, p, time.Now().UnixMicro())}))
				}
			}
			if err := commit(); err != nil {
				return err
			}
		case *replication.XIDEvent:
			if err := commit(); err != nil {
				return err
			}
		case *replication.RowsEvent:
			db, name := string(e.Table.Schema), string(e.Table.Table)
			if !s.included(db, name) {
				continue
			}
			t, err := s.table(ctx, db, name, int(e.ColumnCount))
			if err != nil {
				return err
			}
			p := position{TsMs: int64(h.Timestamp) * 1000, Snapshot: "false", DB: db, Table: name, ServerID: h.ServerID, GTID: gtid, File: file, Pos: evPos, Thread: thread}
			msgs, err := s.rowsMessages(t, h.EventType, e.Rows, p)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				waits = append(waits, s.cfg.Sink.Publish(ctx, m))
			}
		}
	}
}

func (s *Source) table(ctx context.Context, db, name string, columns int) (*mysqlrow.Table, error) {
	id := db + "." + name
	if t, ok := s.tables[id]; ok && len(t.Columns) == columns {
		return t, nil
	}
	t, err := mysqlrow.LoadTable(ctx, s.db, db, name)
	if err != nil {
		return nil, fmt.Errorf("cdc: %w", err)
	}
	if len(t.Columns) != columns {
		return nil, fmt.Errorf("cdc: %s has %d columns but its binlog rows have %d (the table changed since; this stand-in has no schema history)", id, len(t.Columns), columns)
	}
	s.tables[id] = t
	return t, nil
}

func (s *Source) rowsMessages(t *mysqlrow.Table, typ replication.EventType, rows [][]any, p position) ([]Message, error) {
	image := func(vals []any) (debezium.Row, error) {
		r := make(debezium.Row, len(t.Columns))
		for i := range t.Columns {
			c := &t.Columns[i]
			v, err := c.FromBinlog(vals[i])
			if err != nil {
				return nil, fmt.Errorf("cdc: %s.%s: %w", t.DB, t.Name, err)
			}
			r[i] = debezium.Column{Name: c.Name, Value: v}
		}
		return r, nil
	}
	topic := s.topic(t.DB, t.Name)
	var out []Message
	emit := func(op byte, before, after debezium.Row, row int) {
		img := after
		if img == nil {
			img = before
		}
		key, _ := t.Key(img)
		p.Row = row
		out = append(out, Message{Topic: topic, OrderingKey: orderingKey(key), Data: envelope(s.cfg.Prefix, op, before, after, p, time.Now().UnixMicro())})
	}
	switch typ {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2, replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		for i, vals := range rows {
			after, err := image(vals)
			if err != nil {
				return nil, err
			}
			emit('c', nil, after, i)
		}
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2, replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		for i, vals := range rows {
			before, err := image(vals)
			if err != nil {
				return nil, err
			}
			emit('d', before, nil, i)
		}
	default: // updates: rows come in before/after pairs
		if len(rows)%2 != 0 {
			return nil, fmt.Errorf("cdc: %s.%s: update event with an odd number of row images", t.DB, t.Name)
		}
		for i := 0; i < len(rows); i += 2 {
			before, err := image(rows[i])
			if err != nil {
				return nil, err
			}
			after, err := image(rows[i+1])
			if err != nil {
				return nil, err
			}
			oldKey, _ := t.Key(before)
			newKey, _ := t.Key(after)
			if len(t.PrimaryKey) > 0 && keyJSON(oldKey) != keyJSON(newKey) {
				// A primary-key change is a delete of the old key and a create of the new one, as
				// Debezium sends it.
				emit('d', before, nil, i/2)
				emit('c', nil, after, i/2)
				continue
			}
			emit('u', before, after, i/2)
		}
	}
	return out, nil
}

func truncateEnvelope(prefix string, p position, nowUs int64) []byte {
	b := envelope(prefix, 't', nil, nil, p, nowUs)
	// Debezium's truncate event has no before/after fields at all.
	return []byte(strings.Replace(string(b), `{"before":null,"after":null,`, `{`, 1))
}
