package debeziumserver

import (
	"fmt"
	"net"
	"strconv"
)

// Override is one property the local server sets differently from debezium-server/
// application.properties.tmpl, and why.
type Override struct {
	Property, Value, Why string
}

// Overrides is the whole list of local differences from the shipped configuration. They are passed as
// Java system properties (-D, through run.sh's DEBEZIUM_OPTS), which MicroProfile Config ranks above
// config/application.properties, so the rendered file itself stays exactly what the image renders.
// Everything else comes from the template, through the same environment variables the image reads.
// quarkus.http.port is the port Start picked when c.HTTPPort is 0 (0 before Start).
func Overrides(c Config) []Override {
	port := c.httpPort
	if port == 0 {
		port = c.HTTPPort
	}
	state := "jdbc:mysql://" + net.JoinHostPort(c.DB.Host, strconv.Itoa(c.DB.Port)) + "/" + c.DB.StateDatabase + "?sslMode=DISABLED"
	return []Override{
		{"debezium.source.connector.class", "io.debezium.connector.mariadb.MariaDbConnector",
			"the local database is MariaDB 10.11; the MySQL connector is for MySQL (Cloud SQL)"},
		{"debezium.source.database.ssl.mode", "disable",
			"the local MariaDB has no TLS (Cloud SQL enforces it); the MariaDB connector's modes are disable/trust/verify-ca/verify-full, not MySQL's required"},
		{"debezium.source.offset.storage.jdbc.connection.url", state,
			"the same JDBC offset store, without TLS"},
		{"debezium.source.schema.history.internal.jdbc.connection.url", state,
			"the same JDBC schema history, without TLS"},
		{"debezium.sink.pubsub.address", c.PubSub.EmulatorAddr,
			"the Pub/Sub emulator: with an address the sink opens a plaintext channel without credentials (and ignores the region)"},
		{"quarkus.http.port", strconv.Itoa(port),
			"a free loopback port for /q/health instead of the container's 8080"},
		{"quarkus.http.host", "127.0.0.1",
			"serve health on loopback only"},
	}
}

// systemProperties renders the overrides and Config.Properties as -D options for run.sh, which splits
// its DEBEZIUM_OPTS on spaces: a value with white space cannot be passed this way.
func systemProperties(c Config) ([]string, error) {
	var opts []string
	add := func(k, v string) error {
		for _, r := range k + v {
			if r == ' ' || r == '\t' || r == '\n' {
				return fmt.Errorf("debeziumserver: property %s=%q: white space cannot pass through run.sh's DEBEZIUM_OPTS", k, v)
			}
		}
		opts = append(opts, "-D"+k+"="+v)
		return nil
	}
	for _, o := range Overrides(c) {
		if err := add(o.Property, o.Value); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedKeys(c.Properties) {
		if err := add(k, c.Properties[k]); err != nil {
			return nil, err
		}
	}
	return opts, nil
}
