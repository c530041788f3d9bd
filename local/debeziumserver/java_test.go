package debeziumserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeJava(t *testing.T, dir, version string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "java"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), []byte("IMPLEMENTOR=\"x\"\nJAVA_VERSION=\""+version+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFindJava(t *testing.T) {
	jvms := t.TempDir()
	j17 := fakeJava(t, filepath.Join(jvms, "java-17"), "17.0.15")
	j21 := fakeJava(t, filepath.Join(jvms, "jdk-21"), "21.0.2")
	j25 := fakeJava(t, filepath.Join(jvms, "temurin-25"), "25.0.3")
	env := func(home string) func(string) string {
		return func(k string) string {
			if k == "JAVA_HOME" {
				return home
			}
			return ""
		}
	}
	for _, c := range []struct {
		javaHome, want string
	}{
		{"", j25},  // the newest under the JVM directory
		{j21, j21}, // a suitable JAVA_HOME wins
		{j17, j25}, // an old JAVA_HOME is passed over
		{filepath.Join(jvms, "missing"), j25},
	} {
		got, err := findJava(env(c.javaHome), jvms)
		if err != nil || got.Home != c.want {
			t.Errorf("JAVA_HOME=%q: %+v, %v; want %s", c.javaHome, got, err, c.want)
		}
	}
	if err := os.RemoveAll(j21); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(j25); err != nil {
		t.Fatal(err)
	}
	_, err := findJava(env(j17), jvms)
	if err == nil || !strings.Contains(err.Error(), "needs Java 21") || !strings.Contains(err.Error(), "JAVA_HOME="+j17+" (Java 17)") {
		t.Errorf("without Java 21+: %v", err)
	}
	// This machine: Debezium Server must find a Java to run on, or the real-server tests cannot run.
	if j, err := FindJava(os.Getenv); err != nil || j.Feature < MinJava {
		t.Errorf("FindJava here: %+v, %v", j, err)
	}
}

func TestWanted(t *testing.T) {
	for name, want := range map[string]bool{
		"debezium-server/run.sh": true, "debezium-server/lib/a.jar": true, "debezium-server/config/metrics.yml": true,
		"debezium-server/debezium-server-dist-3.6.1.Final-runner.jar": true, "debezium-server/jmx/enable_jmx.sh": true,
		"debezium-server/lib_metrics/enable_exporter.sh": true, "debezium-server/lib_metrics/opentelemetry-javaagent-2.27.0.jar": false,
		"debezium-server/connectors/debezium-connector-cassandra-4/x.jar": false, "debezium-server/lib_opt/groovy.jar": false,
		"debezium-server/run.bat": false, "debezium-server/../etc/passwd": false, "other/lib/x.jar": false,
	} {
		if _, got := wanted(name); got != want {
			t.Errorf("wanted(%s) = %v", name, got)
		}
	}
}
