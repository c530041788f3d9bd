package terraform_test

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The plans of tests/properties.tftest.hcl and tests/shapes.tftest.hcl, held to what must be true of
// every resource of a kind, which an assertion in terraform test cannot enumerate: a resource added
// later is covered without a new assertion.

const wantProject = "my-project" // the project_id of the test suites

var (
	basicRoles  = map[string]bool{"roles/owner": true, "roles/editor": true, "roles/viewer": true}
	publicUsers = map[string]bool{"allUsers": true, "allAuthenticatedUsers": true}
	// The only project-level grants (iam.tf): metric writing for the function, log writing for the build.
	projectRoles = map[string]bool{"roles/monitoring.metricWriter": true, "roles/telemetry.metricsWriter": true, "roles/logging.logWriter": true}
)

// moduleWideViolations checks every planned managed resource of p.
func moduleWideViolations(p *tfPlan) []string {
	var v []string
	pushMember := ""
	if sa := p.resource("google_service_account.push"); sa != nil {
		pushMember, _ = sa.Change.After["member"].(string)
	}
	for _, rc := range p.Changes {
		if rc.Mode != "managed" {
			continue
		}
		after := rc.Change.After
		schema, ok := p.schema(rc.Type)
		if !ok {
			v = append(v, rc.Address+": no google provider schema for "+rc.Type)
			continue
		}
		// IAM: additive grants of predefined, non-basic roles only; project-level ones from the list; the
		// invoker role for the push identity alone.
		switch {
		case strings.HasSuffix(rc.Type, "_iam_binding"), strings.HasSuffix(rc.Type, "_iam_policy"):
			v = append(v, rc.Address+": authoritative IAM ("+rc.Type+") would remove grants this module does not own; use _iam_member")
		case strings.HasSuffix(rc.Type, "_iam_member"):
			role, _ := after["role"].(string)
			if basicRoles[role] {
				v = append(v, fmt.Sprintf("%s: basic role %s", rc.Address, role))
			} else if !strings.HasPrefix(role, "roles/") {
				v = append(v, fmt.Sprintf("%s: role %q is not a predefined role", rc.Address, role))
			}
			if member, _ := after["member"].(string); role == "roles/run.invoker" && (pushMember == "" || member != pushMember) {
				v = append(v, fmt.Sprintf("%s: roles/run.invoker for %s: only the push identity may invoke the function", rc.Address, member))
			}
			if rc.Type == "google_project_iam_member" && !projectRoles[role] {
				v = append(v, fmt.Sprintf("%s: project-level role %s is not one of the module's (%v): grant it on the resource instead", rc.Address, role, keys(projectRoles)))
			}
		}
		// No public principal anywhere, in any attribute.
		walkStrings(after, "", func(path, s string) {
			if publicUsers[s] {
				v = append(v, fmt.Sprintf("%s: %s = %s", rc.Address, strings.TrimPrefix(path, "."), s))
			}
		})
		// Every resource names its project: the module configures no provider, so an unset project would
		// fall back to whatever the caller's provider has.
		if a, ok := schema.Attributes["project"]; ok && (a.Optional || a.Required) {
			if after["project"] != wantProject {
				v = append(v, fmt.Sprintf("%s: project is %v, want var.project_id (%s): set project on it", rc.Address, after["project"], wantProject))
			}
		}
		// Labels: app = cloudsql-cache on every resource that takes resource labels.
		for _, attr := range []string{"labels", "user_labels"} {
			if _, ok := schema.Attributes[attr]; !ok {
				continue
			}
			if _, managed := schema.Attributes["effective_labels"]; attr == "labels" && !managed {
				continue // not resource labels (a notification channel's labels are its address)
			}
			labels, _ := after[attr].(map[string]any)
			if labels["app"] != "cloudsql-cache" {
				v = append(v, fmt.Sprintf("%s: %s = %v has no app = cloudsql-cache: set %s = local.labels", rc.Address, attr, after[attr], attr))
			}
		}
	}
	sort.Strings(v)
	return v
}

// walkStrings calls f on every string in v, with its path.
func walkStrings(v any, path string, f func(path, s string)) {
	switch x := v.(type) {
	case string:
		f(path, x)
	case map[string]any:
		for k, e := range x {
			walkStrings(e, path+"."+k, f)
		}
	case []any:
		for i, e := range x {
			walkStrings(e, fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEveryPlannedResourceHoldsTheModuleWideProperties(t *testing.T) {
	res := passingPlans(t)
	for _, p := range res.Plans {
		if len(p.Changes) < 40 {
			t.Errorf("%s: only %d resources planned", p.Run, len(p.Changes))
		}
		for _, violation := range moduleWideViolations(p) {
			t.Errorf("%s: %s", p.Run, violation)
		}
	}
	t.Logf("%d plans checked: %v", len(res.Plans), res.Summary)
}

// breakEverything breaks each property of tests/properties.tftest.hcl, the module-wide ones above, and
// the dashboard's metrics (monitoring_test.go), all in one copy of the module, so that one plan shows
// that every check can fail.
var breakEverything = []mutation{
	{"pubsub.tf", "enable_message_ordering = true", "enable_message_ordering = false"},
	{"pubsub.tf", "topic   = each.value.id", "topic   = google_pubsub_topic.heartbeat.id"},
	{"pubsub.tf", "audience              = google_cloud_run_v2_service.function.uri", `audience              = "https://example.com"`},
	{"pubsub.tf", "dead_letter_topic     = google_pubsub_topic.dead_letter.id", "dead_letter_topic     = google_pubsub_topic.heartbeat.id"},
	{"pubsub.tf", "  topic                      = google_pubsub_topic.dead_letter.id\n  ack_deadline_seconds       = 60", "  topic                      = google_pubsub_topic.heartbeat.id\n  ack_deadline_seconds       = 60"},
	{"pubsub.tf", "  topic   = google_pubsub_topic.dead_letter.id\n  role    = \"roles/pubsub.publisher\"\n  member  = local.pubsub_service_agent", "  topic   = google_pubsub_topic.heartbeat.id\n  role    = \"roles/pubsub.publisher\"\n  member  = local.pubsub_service_agent"},
	{"pubsub.tf", "  member  = google_service_account.function.member", "  member  = google_service_account.debezium.member"},
	{"cloudsql.tf", "ipv4_enabled    = false", "ipv4_enabled    = true"},
	{"redis.tf", `connect_mode       = "PRIVATE_SERVICE_ACCESS"`, `connect_mode       = "DIRECT_PEERING"`},
	{"network.tf", `address_type  = "INTERNAL"`, `address_type  = "EXTERNAL"`},
	{"function.tf", `egress = "PRIVATE_RANGES_ONLY"`, `egress = "ALL_TRAFFIC"`},
	{"redis.tf", `transit_encryption_mode = "SERVER_AUTHENTICATION"`, `transit_encryption_mode = "DISABLED"`},
	{"main.tf", `REDIS_TLS             = "true"`, `REDIS_TLS             = "false"`},
	{"redis.tf", "secret_data = google_redis_instance.cache.auth_string", `secret_data = "hunter2"`},
	{"function.tf", "secret = google_secret_manager_secret.redis_ca.secret_id", "secret = google_secret_manager_secret.redis_auth.secret_id"},
	{"function.tf", `ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"`, `ingress              = "INGRESS_TRAFFIC_ALL"`},
	{"iam.tf", `role     = "roles/run.developer"`, `role     = "roles/run.invoker"`},
	{"iam.tf", "  role     = \"roles/run.invoker\"\n  member   = google_service_account.push.member", "  role     = \"roles/run.invoker\"\n  member   = \"allUsers\""},
	{"iam.tf", `role    = "roles/monitoring.metricWriter"`, `role    = "roles/editor"`},
	{"function.tf", "service_account                  = google_service_account.function.email", "service_account                  = google_service_account.debezium.email"},
	{"iam.tf", "    redis_ca   = google_secret_manager_secret.redis_ca.id", "    redis_ca   = google_secret_manager_secret.debezium_db_password.id"},
	{"pubsub.tf", "    { heartbeat = google_pubsub_topic.heartbeat.id, schema_changes = google_pubsub_topic.schema_changes.id },", "    { heartbeat = google_pubsub_topic.dead_letter.id, schema_changes = google_pubsub_topic.schema_changes.id },"},
	{"iam.tf", "  service_account_id = google_service_account.function.name\n  role               = \"roles/iam.serviceAccountUser\"", "  service_account_id = google_service_account.push.name\n  role               = \"roles/iam.serviceAccountUser\""},
	{"main.tf", "    APPLY_TIMEOUT         = var.apply_timeout", "    APPLY_TIMEOUT         = var.apply_timeout\n    REDIS_AUTH_TOKEN      = google_redis_instance.cache.auth_string"},
	{"debezium.tf", "secret  = google_secret_manager_secret.debezium_db_password.secret_id", "secret  = google_secret_manager_secret.redis_auth.secret_id"},
	{"cloudsql.tf", "  password_wo         = ephemeral.random_password.debezium.result\n", "  password            = \"debezium-password\"\n"},
	{"cloudsql.tf", "  password_wo_version = var.debezium_password_version\n", ""},
	{"redis.tf", "resource \"google_secret_manager_secret\" \"redis_ca\" {\n  project   = var.project_id\n  labels    = local.labels\n", "resource \"google_secret_manager_secret\" \"redis_ca\" {\n  labels    = local.labels\n"},
	{"pubsub.tf", "resource \"google_pubsub_topic\" \"heartbeat\" {\n  project = var.project_id\n  labels  = local.labels\n", "resource \"google_pubsub_topic\" \"heartbeat\" {\n  project = var.project_id\n"},
	{"access.tf", `egress = "PRIVATE_RANGES_ONLY"`, `egress = "ALL_TRAFFIC"`},
	{"access.tf", "service_account = google_service_account.db_setup[0].email", "service_account = google_service_account.function.email"},
	{"access.tf", "    redis_ca          = google_secret_manager_secret.redis_ca.id", "    redis_ca          = google_secret_manager_secret.debezium_db_password.id"},
	{"access.tf", "  subscription = google_pubsub_subscription.dead_letter.id", "  subscription = google_pubsub_subscription.push[\"shop.orders\"].id"},
	{"access.tf", `role   = "roles/storage.objectUser"`, `role   = "roles/storage.objectAdmin"`},
	{"access.tf", `role     = "roles/run.jobsExecutorWithOverrides"`, `role     = "roles/run.developer"`},
	{"access.tf", "secret  = google_secret_manager_secret.admin_db_password.secret_id", "secret  = google_secret_manager_secret.redis_auth.secret_id"},
	{"access.tf", "  password_wo         = ephemeral.random_password.admin.result\n", "  password            = \"admin-password\"\n"},
	{"access.tf", "  password_wo_version = var.admin_password_version\n", ""},
	{"monitoring.tf", `promql_events     = "\"cloudsql_cache.events\""`, `promql_events     = "\"cloudsql_cache.event\""`},
	{"monitoring.tf", `sum by (le, table) (rate({${local.promql_lag_bucket}}[5m]))`, `sum by (le, tabel) (rate({${local.promql_lag_bucket}}[5m]))`},
}

// The property assertions, the module-wide checks and the dashboard and alert checks all fail on a
// module with every property broken.
func TestEveryCheckFailsOnABrokenModule(t *testing.T) {
	dir, err := scratch(t.TempDir(), breakEverything...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := terraformTest(dir, "-filter=tests/properties.tftest.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if errs := res.errors(); strings.Contains(errs, "Error:") || res.Status["tests/properties.tftest.hcl/properties"] != "fail" {
		t.Logf("diagnostics:\n%s", errs)
	}
	// Every assertion of the properties file must have failed.
	src, err := os.ReadFile("tests/properties.tftest.hcl")
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, m := range res.failedAssertions() {
		failed[m] = true
	}
	all := regexp.MustCompile(`(?m)^\s*error_message\s*=\s*"(\[[a-z-]+\] [^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(all) < 20 {
		t.Fatalf("found %d assertions in tests/properties.tftest.hcl; the pattern no longer matches its error messages", len(all))
	}
	for _, m := range all {
		if !failed[m[1]] {
			t.Errorf("passed on the broken module: %s", m[1])
		}
	}
	p := res.plan(t, "tests/properties.tftest.hcl/properties")
	got := strings.Join(moduleWideViolations(p), "\n")
	for _, want := range []string{
		"google_project_iam_member.function_metric_writer: basic role roles/editor",
		"google_project_iam_member.function_metric_writer: project-level role roles/editor",
		"google_cloud_run_v2_service_iam_member.push_invoker: member = allUsers",
		"google_cloud_run_v2_service_iam_member.build_deployer: roles/run.invoker for serviceAccount:cloudsql-cache-build@",
		"google_secret_manager_secret.redis_ca: project is",
		"google_pubsub_topic.heartbeat: labels",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("module-wide check did not report %q; it reported:\n%s", want, got)
		}
	}
	monitoringViolationsOnBrokenModule(t, p)
}

// Every google resource and data source type of the module has a mock_resource or mock_data block in
// tests/mocks: without one, its computed attributes stay unknown at plan and any assertion that reads
// them fails with "Unknown condition value" instead of checking anything.
func TestMocksCoverEveryResourceType(t *testing.T) {
	f, diags := hclparse.NewParser().ParseHCLFile("tests/mocks/google.tfmock.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	mocked := map[string]bool{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if (b.Type == "mock_resource" || b.Type == "mock_data") && len(b.Labels) == 1 {
			mocked[b.Type+" "+b.Labels[0]] = true
		}
	}
	for _, b := range load(t).blocks {
		if (b.Type != "resource" && b.Type != "data") || len(b.Labels) != 2 || !strings.HasPrefix(b.Labels[0], "google_") {
			continue
		}
		kind := map[string]string{"resource": "mock_resource", "data": "mock_data"}[b.Type]
		if !mocked[kind+" "+b.Labels[0]] {
			t.Errorf("%s %s.%s: add a %s %q block to tests/mocks/google.tfmock.hcl", b.Type, b.Labels[0], b.Labels[1], kind, b.Labels[0])
		}
	}
}
