package tablepolicy

import (
	"strings"
	"testing"
)

// Every problem is reported at once, each naming its variable, in one error.
func TestFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{
		"CACHE_KEY_TEMPLATES":   "shop.orders",
		"CACHE_VERSION_COLUMNS": "shop.orders=updated_at",
		"CACHE_VERSION_EPOCH":   "-1",
	}
	_, err := FromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`CACHE_KEY_TEMPLATES: "shop.orders" is not db.table=value`,
		`CACHE_VERSION_COLUMNS: removed: no column orders commits`,
		`raise CACHE_VERSION_EPOCH by one and re-snapshot`,
		`CACHE_VERSION_EPOCH: "-1" is not a non-negative integer`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q\ndoes not say %q", err, want)
		}
	}
	if _, err := FromEnv(func(string) string { return "" }); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if _, err := FromEnv(func(k string) string { return map[string]string{"CACHE_KEY_TEMPLATE": "{pk}"}[k] }); err == nil || !strings.Contains(err.Error(), "CACHE_* table settings") {
		t.Fatalf("a policy New refuses: %v", err)
	}
}
