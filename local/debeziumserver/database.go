package debeziumserver

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/internal/dbzsignal"
)

// PrepareDatabase does on the local database what Terraform and debezium-server/README.md's "MySQL
// grants" do on Cloud SQL: the state database with its signal table (dbzsignal), and the Debezium user with exactly the documented
// grants (so a grant the connector lacks fails here as it would there). root is a connection with the
// privilege to create users.
func PrepareDatabase(ctx context.Context, root *sql.DB, db DB) error {
	for _, s := range []string{db.User, db.Password, db.StateDatabase} {
		if s == "" || strings.ContainsAny(s, "'`\\") {
			return fmt.Errorf("debeziumserver: user %q, password and state database %q must be set and hold no quotes or backslashes", db.User, db.StateDatabase)
		}
	}
	signal, err := dbzsignal.CreateTable(db.StateDatabase)
	if err != nil {
		return err
	}
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS `" + db.StateDatabase + "`",
		signal,
		"CREATE USER IF NOT EXISTS '" + db.User + "'@'%' IDENTIFIED BY '" + db.Password + "'",
		"GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '" + db.User + "'@'%'",
		"GRANT ALL PRIVILEGES ON `" + db.StateDatabase + "`.* TO '" + db.User + "'@'%'",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("debeziumserver: prepare the database: %s: %w", q, err)
		}
	}
	return nil
}

// ResetState deletes the server's offsets and schema history (the tables named in the configuration,
// in DB.StateDatabase), so that its next start takes a new snapshot, as a fresh deployment would. Stop
// the server first.
func ResetState(ctx context.Context, root *sql.DB, c Config) error {
	p, err := c.Effective()
	if err != nil {
		return err
	}
	for _, key := range []string{"debezium.source.offset.storage.jdbc.table.name", "debezium.source.schema.history.internal.jdbc.table.name"} {
		table := p[key]
		if table == "" || strings.ContainsAny(table, "`.") {
			return fmt.Errorf("debeziumserver: %s=%q is not a plain table name", key, table)
		}
		q := "DROP TABLE IF EXISTS `" + c.DB.StateDatabase + "`.`" + table + "`"
		if _, err := root.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("debeziumserver: reset the state: %s: %w", q, err)
		}
	}
	return nil
}
