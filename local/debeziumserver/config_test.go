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
	if topics := strings.Join(c.Topics(), ","); topics != "local.shop.customers,local.shop.order_lines,local.app.x,local,hb.local" {
		t.Errorf("topics %s", topics)
	}
	c.Properties["x"] = "a b"
	if _, err := c.environment(); err == nil {
		t.Error("a property with a space passed through DEBEZIUM_OPTS")
	}
}
