package tablepolicy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/envvar"
)

// Vars returns the variables FromEnv reads, with their defaults and help. The apply function, the
// read path and the drift checker all read the table policy from them, so they agree on keys.
func Vars() []envvar.Var {
	return []envvar.Var{
		{Name: "CACHE_TABLES", Default: "", Help: "Comma-separated db.table include-list; empty caches every table Debezium sends."},
		{Name: "CACHE_EXCLUDE_COLUMNS", Default: "", Help: "Comma-separated db.table.column list never written to the cache."},
		{Name: "CACHE_KEY_TEMPLATE", Default: DefaultKeyTemplate, Help: "Key of every table without its own template."},
		{Name: "CACHE_KEY_TEMPLATES", Default: "", Help: "Comma-separated db.table=template overrides."},
		{Name: "CACHE_VERSION_EPOCH", Default: "0", Help: "First component of every version; raise it when the database is restored or replaced."},
	}
}

// RemovedVersionColumns is the variable of a removed feature (per-table version columns). FromEnv refuses
// to start while it is set.
const RemovedVersionColumns = "CACHE_VERSION_COLUMNS"

// FromEnv reads the table policy from the environment and validates it (New). Its error holds every
// problem found, each naming the variable to fix.
func FromEnv(getenv func(string) string) (Config, error) {
	var problems envvar.Problems
	bad := problems.Add
	get := envvar.Lookup(Vars(), getenv)
	list := func(name string) []string {
		var out []string
		for _, s := range strings.Split(get(name), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	pairs := func(name string) map[string]string {
		m := map[string]string{}
		for _, s := range list(name) {
			k, v, ok := strings.Cut(s, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || v == "" {
				bad(name, "%q is not db.table=value", s)
				continue
			}
			if _, dup := m[k]; dup {
				bad(name, "%s is given twice", k)
			}
			m[k] = v
		}
		return m
	}
	c := Config{
		Tables:         list("CACHE_TABLES"),
		ExcludeColumns: list("CACHE_EXCLUDE_COLUMNS"),
		KeyTemplate:    get("CACHE_KEY_TEMPLATE"),
		KeyTemplates:   pairs("CACHE_KEY_TEMPLATES"),
	}
	if getenv(RemovedVersionColumns) != "" {
		// Removed rather than ignored: a deployment that relied on it must learn that its tables are now
		// ordered by binlog position, which is what it needs anyway.
		bad(RemovedVersionColumns, "removed: no column orders commits (an ON UPDATE CURRENT_TIMESTAMP is the statement's start, not its commit, so a later commit can carry an earlier value and be refused as stale); every table is ordered by binlog position. Unset it; if it was set, raise CACHE_VERSION_EPOCH by one and re-snapshot (README: Versions)")
	}
	var err error
	if c.Epoch, err = strconv.ParseUint(get("CACHE_VERSION_EPOCH"), 10, 64); err != nil {
		bad("CACHE_VERSION_EPOCH", "%q is not a non-negative integer", get("CACHE_VERSION_EPOCH"))
	}
	if problems.Err() == nil {
		if _, err := New(c); err != nil {
			problems.AddErr(fmt.Errorf("CACHE_* table settings: %w", err))
		}
	}
	return c, problems.Err()
}
