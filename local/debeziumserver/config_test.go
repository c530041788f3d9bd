package debeziumserver

import (
	"strings"
	"testing"
)

func TestConfigErrorsAtOnce(t *testing.T) {
	err := Config{Tables: []string{"nodot"}}.validate()
	if err == nil {
		t.Fatal("an empty Config passed")
	}
	for _, want := range []string{"Dist is not set", "Java is not set", "ConfigDir is not set", "DB.Password is not set",
		"PubSub.EmulatorAddr is not set", "DB.Port and DB.ServerID", `table "nodot" is not db.table`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestEnvironment(t *testing.T) {
	c := Config{Java: Java{Home: "/jdk", Feature: 25}, RunDir: "/run", TopicPrefix: "local",
		Tables: []string{"shop.customers", "shop.order_lines", "app.x"},
		DB:     DB{Host: "127.0.0.1", Port: 3307, User: "debezium", Password: "pw", ServerID: 5501, StateDatabase: "debezium_state"},
		PubSub: PubSub{Project: "local", EmulatorAddr: "127.0.0.1:9999"}, HTTPPort: 8089,
		Env: map[string]string{"HEARTBEAT_PREFIX": "hb"}, Properties: map[string]string{"debezium.source.include.schema.changes": "true"}}
	env, err := c.environment()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for k, want := range map[string]string{
		"DATABASE_INCLUDE_LIST": `shop,app`, "TABLE_INCLUDE_LIST": `shop\.customers,shop\.order_lines,app\.x`,
		"DB_SERVER_ID": "5501", "SERVER_HOME": "/run", "JAVA_HOME": "/jdk", "HEARTBEAT_PREFIX": "hb", "LOG_JSON": "false",
	} {
		if got[k] != want {
			t.Errorf("%s=%q, want %q", k, got[k], want)
		}
	}
	for _, want := range []string{"-Ddebezium.source.connector.class=io.debezium.connector.mariadb.MariaDbConnector",
		"-Ddebezium.sink.pubsub.address=127.0.0.1:9999", "-Dquarkus.http.port=8089",
		"-Ddebezium.source.offset.storage.jdbc.connection.url=jdbc:mysql://127.0.0.1:3307/debezium_state?sslMode=DISABLED",
		"-Ddebezium.source.include.schema.changes=true"} {
		if !strings.Contains(got["DEBEZIUM_OPTS"], want) {
			t.Errorf("DEBEZIUM_OPTS lacks %s: %s", want, got["DEBEZIUM_OPTS"])
		}
	}
	if !strings.Contains(got["JAVA_OPTS"], "--add-opens=java.base/java.lang=ALL-UNNAMED") {
		t.Errorf("Java 25 without --add-opens: %s", got["JAVA_OPTS"])
	}
	c.Properties["x"] = "a b"
	if _, err := c.environment(); err == nil {
		t.Error("a property with a space passed through DEBEZIUM_OPTS")
	}
}

// Topics follow the configuration: the shipped template publishes one topic per table and the
// heartbeat topic; turning schema changes or transaction metadata on adds theirs, with no other edit.
func TestTopicsFromTheConfiguration(t *testing.T) {
	c := Config{Java: Java{Home: "/jdk", Feature: 25}, RunDir: "/run", ConfigDir: "../../debezium-server", TopicPrefix: "local",
		Tables: []string{"shop.customers", "app.x"},
		DB:     DB{Host: "127.0.0.1", Port: 3307, User: "debezium", Password: "pw", ServerID: 5501, StateDatabase: "debezium_state"},
		PubSub: PubSub{Project: "local", EmulatorAddr: "127.0.0.1:9999"}}
	for _, tc := range []struct {
		env, props map[string]string
		want       string
	}{
		// The shipped configuration: schema changes on topic.prefix; transaction metadata on, but its
		// BEGIN/END records dropped by the Filter transform, so no transaction topic.
		{nil, nil, "local.shop.customers,local.app.x,debezium-heartbeat.local,local"},
		{map[string]string{"HEARTBEAT_PREFIX": "hb"}, nil, "local.shop.customers,local.app.x,hb.local,local"},
		{map[string]string{"HEARTBEAT_INTERVAL_MS": "0"}, nil, "local.shop.customers,local.app.x,local"},
		{map[string]string{"TOPIC_PREFIX": "a.b"}, nil, "a.b.shop.customers,a.b.app.x,debezium-heartbeat.a.b,a.b"},
		{nil, map[string]string{"debezium.source.include.schema.changes": "false"}, "local.shop.customers,local.app.x,debezium-heartbeat.local"},
		{nil, map[string]string{"debezium.transforms": ""}, "local.shop.customers,local.app.x,debezium-heartbeat.local,local,local.transaction"},
		{nil, map[string]string{"debezium.transforms.droptx.negate": "true"}, "local.shop.customers,local.app.x,debezium-heartbeat.local,local,local.transaction"},
		// The filter drops the topics its pattern matches, whole names only.
		{nil, map[string]string{"debezium.predicates.transactiontopic.pattern": `local\.shop\..*`}, "local.app.x,debezium-heartbeat.local,local,local.transaction"},
		{nil, map[string]string{"debezium.predicates.transactiontopic.pattern": `local\.shop`}, "local.shop.customers,local.app.x,debezium-heartbeat.local,local,local.transaction"},
		{nil, map[string]string{"debezium.source.provide.transaction.metadata": "false", "debezium.transforms": ""}, "local.shop.customers,local.app.x,debezium-heartbeat.local,local"},
	} {
		c.Env, c.Properties = tc.env, tc.props
		topics, err := c.Topics()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(topics, ","); got != tc.want {
			t.Errorf("env %v, properties %v: topics %s, want %s", tc.env, tc.props, got, tc.want)
		}
	}
	p, err := c.Effective()
	if err != nil {
		t.Fatal(err)
	}
	// The template's expressions are expanded, and the overrides win over the template.
	for k, want := range map[string]string{
		"debezium.source.database.port":      "3307",
		"debezium.source.snapshot.mode":      "when_needed",
		"debezium.source.connector.class":    "io.debezium.connector.mariadb.MariaDbConnector",
		"debezium.sink.pubsub.project.id":    "local",
		"debezium.source.table.include.list": `shop\.customers,app\.x`,
	} {
		if p[k] != want {
			t.Errorf("%s=%q, want %q", k, p[k], want)
		}
	}
	if _, err := parseProperties("a=b\\\nc"); err == nil {
		t.Error("a continuation line was read")
	}
	if _, err := expand("${NOPE}", nil); err == nil || !strings.Contains(err.Error(), "NOPE is not set") {
		t.Errorf("an unset variable without a default: %v", err)
	}
}

// The template's values are unescaped as java.util.Properties does: its transaction-topic pattern is
// written \\Q…\\E\\.transaction.
func TestPropertiesUnescape(t *testing.T) {
	got, err := parseProperties(`a=\\Q${P}\\E\\.transaction
b=tab\there \u00e9 \:x
c=plain`)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"a": `\Q${P}\E\.transaction`, "b": "tab\there é :x", "c": "plain"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	for _, bad := range []string{`a=x\u12`, `a=x\uzzzz`} {
		if _, err := parseProperties(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// The shipped signalling: the source channel on the state database's signal table, whose database is
// captured (its schema must be in the history) and whose rows' topic the filter drops (no such topic
// exists), while no table topic and no transaction record gets through it by mistake.
func TestSignalConfiguration(t *testing.T) {
	c := Config{Java: Java{Home: "/jdk", Feature: 25}, RunDir: "/run", ConfigDir: "../../debezium-server", TopicPrefix: "local",
		Tables: []string{"shop.customers", "app.debezium_signal"},
		DB:     DB{Host: "127.0.0.1", Port: 3307, User: "debezium", Password: "pw", ServerID: 5501, StateDatabase: "debezium_state"},
		PubSub: PubSub{Project: "local", EmulatorAddr: "127.0.0.1:9999"}}
	p, err := c.Effective()
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"debezium.source.signal.enabled.channels":                                "source",
		"debezium.source.signal.data.collection":                                 "debezium_state.debezium_signal",
		"debezium.source.database.include.list":                                  "shop,app,debezium_state",
		"debezium.source.table.include.list":                                     `shop\.customers,app\.debezium_signal`,
		"debezium.source.incremental.snapshot.watermarking.strategy":             "insert_delete",
		"debezium.source.schema.history.internal.store.only.captured.tables.ddl": "false",
	} {
		if p[k] != want {
			t.Errorf("%s=%q, want %q", k, p[k], want)
		}
	}
	dropped, err := filteredTopics(p)
	if err != nil {
		t.Fatal(err)
	}
	for topic, drop := range map[string]bool{
		"local.debezium_state.debezium_signal": true, "local.transaction": true,
		"local.shop.customers": false, "local.app.debezium_signal": false, "local": false, "local.debezium_stateXdebezium_signal": false,
	} {
		got := false
		for _, re := range dropped {
			got = got || re.MatchString(topic)
		}
		if got != drop {
			t.Errorf("topic %s dropped: %v, want %v", topic, got, drop)
		}
	}
}
