package debeziumserver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The entry point renders EVENT_FORMAT: compact appends compact.properties and puts lib_opt/ on the
// class path, full leaves the template alone, anything else stops the container with status 2 before
// Debezium starts. (run.sh is a stub here that prints what it was started with.)
func TestEntrypointEventFormat(t *testing.T) {
	for _, tc := range []struct {
		format   string
		exit     int
		compact  bool
		scripted bool
	}{{"", 0, false, false}, {"full", 0, false, false}, {"compact", 0, true, true}, {"avro", 2, false, false}} {
		home := entrypointHome(t, "#!/usr/bin/env bash\necho \"scripting=${ENABLE_DEBEZIUM_SCRIPTING:-false}\"\n")
		cmd := exec.Command("bash", filepath.Join(home, "entrypoint.sh"))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SERVER_HOME=" + home, "GCP_PROJECT=p", "PUBSUB_REGION=r", "DB_HOST=h",
			"DB_USER=u", "DB_PASSWORD=pw", "DB_SERVER_ID=7", "DB_STATE_DATABASE=s", "TOPIC_PREFIX=local",
			"DATABASE_INCLUDE_LIST=shop", "TABLE_INCLUDE_LIST=shop\\.t"}
		if tc.format != "" {
			cmd.Env = append(cmd.Env, "EVENT_FORMAT="+tc.format)
		}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.exit {
			t.Fatalf("EVENT_FORMAT=%q: exit %d, want %d:\n%s", tc.format, code, tc.exit, out)
		}
		if tc.exit != 0 {
			if !strings.Contains(string(out), "EVENT_FORMAT="+tc.format+": want compact or full") {
				t.Errorf("EVENT_FORMAT=%q: %s", tc.format, out)
			}
			continue
		}
		cfg, err := os.ReadFile(filepath.Join(home, "config", "application.properties"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(cfg), "\ndebezium.transforms=droptx,truncroute,unwrap,truncback\n"); got != tc.compact {
			t.Errorf("EVENT_FORMAT=%q: the compact transforms rendered: %v", tc.format, got)
		}
		if got := strings.Contains(string(out), "scripting=true"); got != tc.scripted {
			t.Errorf("EVENT_FORMAT=%q: run.sh started with scripting %v:\n%s", tc.format, got, out)
		}
	}
}

// The state database's name goes into database.include.list, a regular expression, for the signal
// table: the entry point refuses one that is not a plain name before Debezium starts.
func TestEntrypointStateDatabaseName(t *testing.T) {
	for name, ok := range map[string]bool{"debezium_state": true, "a.b": false, "a|b": false, "": false} {
		home := entrypointHome(t, "#!/usr/bin/env bash\necho started\n")
		cmd := exec.Command("bash", filepath.Join(home, "entrypoint.sh"))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SERVER_HOME=" + home, "GCP_PROJECT=p", "PUBSUB_REGION=r", "DB_HOST=h",
			"DB_USER=u", "DB_PASSWORD=pw", "DB_SERVER_ID=7", "DB_STATE_DATABASE=" + name, "TOPIC_PREFIX=local",
			"DATABASE_INCLUDE_LIST=shop", "TABLE_INCLUDE_LIST=shop\\.t"}
		out, err := cmd.CombinedOutput()
		started := err == nil && strings.Contains(string(out), "started")
		if started != ok {
			t.Errorf("DB_STATE_DATABASE=%q: started %v, want %v:\n%s", name, started, ok, out)
		}
		if !ok && name != "" && !strings.Contains(string(out), "DB_STATE_DATABASE="+name+": want 1-64 letters") {
			t.Errorf("DB_STATE_DATABASE=%q: %s", name, out)
		}
	}
}

// entrypointHome lays out a SERVER_HOME with the shipped files and runSh as a stub run.sh.
func entrypointHome(t *testing.T, runSh string) string {
	t.Helper()
	home := t.TempDir()
	for _, f := range []string{"application.properties.tmpl", "entrypoint.sh", "compact.properties"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "debezium-server", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(home, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "run.sh"), []byte(runSh), 0o755); err != nil {
		t.Fatal(err)
	}
	return home
}
