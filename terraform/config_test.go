package terraform_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	fn "github.com/cloudsql-cache/cloudsql-cache/function"
)

// placeholders stand in for the attributes of resources that exist only after apply. A name ending in
// [0] is a counted resource (its first instance).
var placeholders = map[string]cty.Value{
	"google_redis_instance.cache[0].host": cty.StringVal("10.100.0.4"),
	"google_redis_instance.cache[0].port": cty.NumberIntVal(6378),
	"google_pubsub_topic.dead_letter.id":  cty.StringVal("projects/my-project/topics/cloudsql-cache-dead-letter"),
	"google_pubsub_topic.heartbeat.name":  cty.StringVal("debezium-heartbeat.cloudsql-cache"),
}

// evalContext builds what Terraform would evaluate the module's expressions with: the variables
// (defaults, overridden by the tfvars given), the locals that can be computed from them, placeholders
// for resource attributes, and the few Terraform functions the function's environment uses.
func evalContext(t *testing.T, m *module, tfvars map[string]cty.Value) *hcl.EvalContext {
	t.Helper()
	vars := map[string]cty.Value{}
	for _, b := range m.blocks {
		if b.Type == "variable" && len(b.Labels) == 1 {
			if d, ok := b.Body.Attributes["default"]; ok {
				v, diags := d.Expr.Value(nil)
				if !diags.HasErrors() {
					vars[b.Labels[0]] = v
				}
			}
		}
	}
	for k, v := range tfvars {
		vars[k] = v
	}
	resources := map[string]map[string]map[string]cty.Value{}
	for path, v := range placeholders {
		p := strings.SplitN(path, ".", 3)
		if resources[p[0]] == nil {
			resources[p[0]] = map[string]map[string]cty.Value{}
		}
		if resources[p[0]][p[1]] == nil {
			resources[p[0]][p[1]] = map[string]cty.Value{}
		}
		resources[p[0]][p[1]][p[2]] = v
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: map[string]function.Function{
			"join":     stdlib.JoinFunc,
			"replace":  stdlib.ReplaceFunc,
			"split":    stdlib.SplitFunc,
			"distinct": stdlib.DistinctFunc,
			"toset": function.New(&function.Spec{
				Params: []function.Parameter{{Name: "v", Type: cty.List(cty.String)}},
				Type:   function.StaticReturnType(cty.Set(cty.String)),
				Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
					return convert.Convert(args[0], cty.Set(cty.String))
				},
			}),
			"coalesce": stdlib.CoalesceFunc,
			// The repair's retention (main.tf: local.go_seconds, repair_retention_needed).
			"regexall": stdlib.RegexAllFunc,
			"ceil":     stdlib.CeilFunc,
			"min":      stdlib.MinFunc,
			"tonumber": function.New(&function.Spec{
				Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
				Type:   function.StaticReturnType(cty.Number),
				Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
					return convert.Convert(args[0], cty.Number)
				},
			}),
			"sum": function.New(&function.Spec{
				Params: []function.Parameter{{Name: "v", Type: cty.List(cty.Number)}},
				Type:   function.StaticReturnType(cty.Number),
				Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
					total := cty.NumberIntVal(0)
					for _, n := range args[0].AsValueSlice() {
						total = total.Add(n)
					}
					return total, nil
				},
			}),
			"concat": stdlib.ConcatFunc,
			"values": stdlib.ValuesFunc,
			"tostring": function.New(&function.Spec{
				Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
				Type:   function.StaticReturnType(cty.String),
				Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
					return stdlib.FormatFunc.Call([]cty.Value{cty.StringVal("%v"), args[0]})
				},
			}),
		},
	}
	for typ, byName := range resources {
		objs := map[string]cty.Value{}
		for name, attrs := range byName {
			if counted, ok := strings.CutSuffix(name, "[0]"); ok {
				objs[counted] = cty.TupleVal([]cty.Value{cty.ObjectVal(attrs)})
				continue
			}
			objs[name] = cty.ObjectVal(attrs)
		}
		ctx.Variables[typ] = cty.ObjectVal(objs)
	}
	// Locals, as far as they can be evaluated without other resources (a few passes for locals that
	// use locals).
	locals := map[string]cty.Value{}
	for pass := 0; pass < 6; pass++ {
		ctx.Variables["local"] = cty.ObjectVal(locals)
		for _, b := range m.blocks {
			if b.Type != "locals" {
				continue
			}
			for name, a := range b.Body.Attributes {
				if _, done := locals[name]; done {
					continue
				}
				if v, diags := a.Expr.Value(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
					locals[name] = v
				}
			}
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	return ctx
}

// readTFVars parses terraform.tfvars.example.
func readTFVars(t *testing.T) map[string]cty.Value {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCLFile("terraform.tfvars.example")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	out := map[string]cty.Value{}
	for name, a := range attrs {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("terraform.tfvars.example: %s: %s", name, diags.Error())
		}
		out[name] = v
	}
	return out
}

// functionEnv evaluates the environment Terraform gives the function's container: the literal env
// blocks and the dynamic "env" block over local.function_env. Secret-sourced variables get "<secret>".
func functionEnv(t *testing.T, m *module, ctx *hcl.EvalContext) map[string]string {
	t.Helper()
	svc := m.resource("google_cloud_run_v2_service", "function")
	if svc == nil {
		t.Fatal("no google_cloud_run_v2_service.function")
	}
	containers := children(child(svc, "template"), "containers")
	if len(containers) != 1 {
		t.Fatalf("the function service has %d containers, want 1", len(containers))
	}
	c := containers[0]
	env := map[string]string{}
	for _, e := range children(c, "env") {
		name, ok := literalString(attr(e, "name"))
		if !ok {
			t.Fatalf("env block at %s: the name must be a literal", e.Range())
		}
		if _, dup := env[name]; dup {
			t.Errorf("env %s is set twice", name)
		}
		if child(e, "value_source", "secret_key_ref") != nil {
			env[name] = "<secret>"
			continue
		}
		v, diags := attr(e, "value").Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("env %s: %s", name, diags.Error())
		}
		env[name] = v.AsString()
	}
	// One dynamic "env" block over local.function_env (plain values), and at most one more whose
	// content takes its value from Secret Manager (the standalone engine's REDIS_PASSWORD).
	dyn := 0
	for _, d := range children(c, "dynamic") {
		if len(d.Labels) != 1 || d.Labels[0] != "env" {
			continue
		}
		forEach := attr(d, "for_each")
		v, diags := forEach.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("dynamic env for_each: %s", diags.Error())
		}
		content := child(d, "content")
		secret := child(content, "value_source", "secret_key_ref") != nil
		if !secret {
			dyn++
			if !refersTo(forEach, "local.function_env") {
				t.Errorf("the dynamic env block must iterate over local.function_env, iterates over %v", refs(forEach))
			}
			if !refersTo(attr(content, "name"), "env.key") || !refersTo(attr(content, "value"), "env.value") {
				t.Errorf("the dynamic env block must set name = env.key, value = env.value")
			}
		}
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			if _, dup := env[k.AsString()]; dup {
				t.Errorf("env %s is set twice", k.AsString())
			}
			if secret {
				env[k.AsString()] = "<secret>"
			} else {
				env[k.AsString()] = val.AsString()
			}
		}
	}
	if dyn != 1 {
		t.Errorf("want exactly one dynamic \"env\" block of plain values in the function's container, found %d", dyn)
	}
	return env
}

func knownEnv() map[string]bool {
	known := map[string]bool{}
	for _, e := range fn.Vars() {
		known[e.Name] = true
	}
	return known
}

// checkEnvNames: every variable Terraform sets is one the function reads, and the required ones are set.
func checkEnvNames(env map[string]string) []string {
	var v []string
	known := knownEnv()
	for name := range env {
		if !known[name] {
			v = append(v, name+" is not in function.Vars() (a typo, or a variable the function does not read)")
		}
	}
	for _, req := range []string{"REDIS_ADDR", "DEAD_LETTER_TOPIC"} {
		if env[req] == "" {
			v = append(v, req+" is required by the function and not set")
		}
	}
	sort.Strings(v)
	return v
}

// validate runs the function's own start-up validation on env, with the CA file the service mounts
// replaced by a real file.
func validate(t *testing.T, env map[string]string) error {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	_, err := fn.ConfigFromEnv(func(name string) string {
		if name == "REDIS_CA_FILE" && env[name] != "" {
			return ca
		}
		return env[name]
	})
	return err
}

func TestFunctionEnvMatchesFunctionConfig(t *testing.T) {
	m := load(t)
	for _, tc := range []struct {
		name   string
		tfvars map[string]cty.Value
	}{
		{"defaults", map[string]cty.Value{"project_id": cty.StringVal("my-project"), "tables": cty.ListVal([]cty.Value{cty.StringVal("shop.orders")})}},
		{"terraform.tfvars.example", readTFVars(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := functionEnv(t, m, evalContext(t, m, tc.tfvars))
			t.Logf("function environment: %v", env)
			for _, p := range checkEnvNames(env) {
				t.Error(p)
			}
			if env["REDIS_PASSWORD"] != "<secret>" {
				t.Error("REDIS_PASSWORD must come from Secret Manager")
			}
			if err := validate(t, env); err != nil {
				t.Errorf("the function would refuse to start with the environment Terraform gives it:\n%v\nenvironment: %v", err, env)
			}
			if env["REDIS_TLS"] != "true" || !strings.HasSuffix(env["REDIS_ADDR"], ":6378") {
				t.Errorf("Redis must be reached with TLS on 6378: REDIS_TLS=%q REDIS_ADDR=%q", env["REDIS_TLS"], env["REDIS_ADDR"])
			}
		})
	}
}

func TestFunctionEnvCheckFails(t *testing.T) {
	m := mutate(t, "main.tf", "REDIS_TIMEOUT         = var.redis_timeout", "REDIS_TIMEOUTS        = var.redis_timeout")
	if v := checkEnvNames(functionEnv(t, m, evalContext(t, m, readTFVars(t)))); len(v) == 0 {
		t.Error("an unknown variable name was not detected")
	}
	m = mutate(t, "main.tf", "DEAD_LETTER_TOPIC     = google_pubsub_topic.dead_letter.id\n", "")
	if v := checkEnvNames(functionEnv(t, m, evalContext(t, m, readTFVars(t)))); len(v) == 0 {
		t.Error("a missing DEAD_LETTER_TOPIC was not detected")
	}
	m = mutate(t, "main.tf", `CACHE_KEY_TEMPLATES   = join(",", [for k, v in var.key_templates : "${k}=${v}"])`, `CACHE_KEY_TEMPLATES   = join(",", [for k, v in var.key_templates : "${k}:${v}"])`)
	if err := validate(t, functionEnv(t, m, evalContext(t, m, readTFVars(t)))); err == nil {
		t.Error("a CACHE_KEY_TEMPLATES format the function rejects was not detected")
	}
}

// readProperties reads the Debezium Server configuration template.
func readProperties(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "debezium-server", "application.properties.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("application.properties.tmpl: %q is not key=value", line)
		}
		if _, dup := props[k]; dup {
			t.Errorf("application.properties.tmpl: %s is set twice", k)
		}
		props[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return props
}

var expression = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:([^}]*))?\}`)

// resolve expands ${VAR} / ${VAR:default} against env the way MicroProfile Config does.
func resolve(value string, env map[string]string) string {
	return expression.ReplaceAllStringFunc(value, func(e string) string {
		m := expression.FindStringSubmatch(e)
		if v, ok := env[m[1]]; ok && v != "" {
			return v
		}
		return m[3]
	})
}

// The Debezium configuration produces what the function and the Pub/Sub topics expect, and Terraform
// sets every variable it needs.
func TestDebeziumConfiguration(t *testing.T) {
	m := load(t)
	props := readProperties(t)
	ctx := evalContext(t, m, readTFVars(t))
	envExpr := m.local("debezium_env")
	// Evaluated item by item: resource attributes (the instance's IP, the user name) are unknown here.
	env := map[string]string{"DB_PASSWORD": "<secret>"}
	if obj, ok := envExpr.(*hclsyntax.ObjectConsExpr); ok {
		for _, it := range obj.Items {
			k, _ := literalString(it.KeyExpr)
			if v, diags := it.ValueExpr.Value(ctx); !diags.HasErrors() && v.Type() == cty.String {
				env[k] = v.AsString()
			} else {
				env[k] = "<" + k + ">" // set by Terraform from a resource attribute
			}
		}
	} else {
		t.Fatal("local.debezium_env must be an object literal")
	}
	t.Logf("Debezium environment: %v", env)

	// Every expression without a default must be provided by Terraform.
	for k, v := range props {
		for _, e := range expression.FindAllStringSubmatch(v, -1) {
			if e[2] == "" && env[e[1]] == "" {
				t.Errorf("%s uses ${%s}, which terraform/debezium.tf does not set", k, e[1])
			}
		}
	}
	// And the worker pool really gets local.debezium_env and the password secret.
	pool := m.resource("google_cloud_run_v2_worker_pool", "debezium")
	c := child(pool, "template", "containers")
	if d := child(c, "dynamic"); d == nil || !refersTo(attr(d, "for_each"), "local.debezium_env") {
		t.Error("the Debezium worker pool's container must set its environment from local.debezium_env")
	}
	pw := false
	for _, e := range children(c, "env") {
		if n, _ := literalString(attr(e, "name")); n == "DB_PASSWORD" && refTo(attr(child(e, "value_source", "secret_key_ref"), "secret"), "google_secret_manager_secret") != "" {
			pw = true
		}
	}
	if !pw {
		t.Error("DB_PASSWORD must come from Secret Manager (value_source.secret_key_ref)")
	}
	// At most one instance per source: var.debezium_instances, which its validation holds to 0 or 1
	// (tests/validation.tftest.hcl).
	if !refersTo(attr(child(pool, "scaling"), "manual_instance_count"), "var.debezium_instances") {
		t.Error("scaling.manual_instance_count must be var.debezium_instances (0 or 1)")
	}
	if mode, ok := literalString(attr(child(pool, "scaling"), "scaling_mode")); !ok || mode != "MANUAL" {
		t.Error(`the worker pool's scaling_mode must be the literal "MANUAL"`)
	}

	// Debezium Server reads a DEBEZIUM_* environment variable as the property it spells (dots for
	// underscores, lower case) over application.properties. Each one Terraform sets must spell a
	// property of the template, or it would add a property nothing expects instead of overriding one.
	overrides := map[string]string{}
	for k, v := range env {
		if !strings.HasPrefix(k, "DEBEZIUM_") || k == "DEBEZIUM_OPTS" {
			continue
		}
		name := strings.ToLower(strings.ReplaceAll(k, "_", "."))
		if _, ok := props[name]; !ok {
			t.Errorf("%s spells %s, which application.properties.tmpl does not set", k, name)
		}
		overrides[name] = v
	}
	get := func(k string) string {
		if v, ok := overrides[k]; ok {
			return v
		}
		return resolve(props[k], env)
	}
	// The state tables are the epoch's (debezium.tf): at epoch 0 the template's own names.
	locals := ctx.Variables["local"].AsValueMap()
	for k, local := range map[string]string{"debezium.source.offset.storage.jdbc.table.name": "debezium_offsets_table", "debezium.source.schema.history.internal.jdbc.table.name": "debezium_history_table"} {
		if got, want := get(k), locals[local].AsString(); got != want {
			t.Errorf("%s = %q, Terraform's %s is %q", k, got, local, want)
		}
	}
	want := map[string]string{
		"debezium.sink.type":                                                        "pubsub",
		"debezium.sink.pubsub.ordering.enabled":                                     "true",
		"debezium.sink.pubsub.null.key":                                             "default",
		"debezium.format.key":                                                       "json",
		"debezium.format.key.schemas.enable":                                        "false",
		"debezium.format.value":                                                     "json",
		"debezium.source.connector.class":                                           "io.debezium.connector.mysql.MySqlConnector",
		"debezium.source.decimal.handling.mode":                                     "string",
		"debezium.source.time.precision.mode":                                       "adaptive_time_microseconds",
		"debezium.source.binary.handling.mode":                                      "base64",
		"debezium.source.tombstones.on.delete":                                      "false",
		"debezium.source.skipped.operations":                                        "none",
		"debezium.source.snapshot.mode":                                             "when_needed",
		"debezium.source.offset.storage":                                            "io.debezium.storage.jdbc.offset.JdbcOffsetBackingStore",
		"debezium.source.schema.history.internal":                                   "io.debezium.storage.jdbc.history.JdbcSchemaHistory",
		"debezium.source.include.schema.changes":                                    "true",
		"debezium.source.provide.transaction.metadata":                              "true",
		"debezium.format.header.schemas.enable":                                     "false",
		"debezium.source.schema.history.internal.store.only.captured.tables.ddl":    "false",
		"debezium.source.schema.history.internal.store.only.captured.databases.ddl": "true",
		"debezium.transforms":                                                       "droptx",
		"debezium.transforms.droptx.type":                                           "org.apache.kafka.connect.transforms.Filter",
		"debezium.transforms.droptx.predicate":                                      "transactiontopic",
		"debezium.predicates":                                                       "transactiontopic",
		"debezium.predicates.transactiontopic.type":                                 "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
	}
	for k, w := range want {
		if got := get(k); got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
	// The heartbeat topic Debezium publishes to is the one Terraform creates, and a valid topic ID.
	heartbeat := get("debezium.source.topic.heartbeat.prefix") + "." + get("debezium.source.topic.prefix")
	if want := resolve("${HEARTBEAT_PREFIX}.${TOPIC_PREFIX}", env); heartbeat != want {
		t.Errorf("heartbeat topic %q, Terraform expects %q", heartbeat, want)
	}
	if hb, ok := ctx.Variables["local"].AsValueMap()["heartbeat_topic"]; !ok || hb.AsString() != heartbeat {
		t.Errorf("Terraform's heartbeat topic %v differs from Debezium's %q", hb, heartbeat)
	}
	if !regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`).MatchString(heartbeat) || strings.HasPrefix(strings.ToLower(heartbeat), "goog") {
		t.Errorf("heartbeat topic %q is not a valid Pub/Sub topic ID", heartbeat)
	}
	// Schema changes go to the topic named topic.prefix: the one Terraform creates with a push subscription.
	if sc, diags := attr(m.resource("google_pubsub_topic", "schema_changes"), "name").Value(ctx); diags.HasErrors() || sc.Type() != cty.String || sc.AsString() != get("debezium.source.topic.prefix") {
		t.Errorf("Terraform's schema-change topic %#v (%v) differs from Debezium's topic.prefix %q", sc, diags, get("debezium.source.topic.prefix"))
	}
	// The transaction BEGIN/END records are dropped: the predicate matches <topic.prefix>.transaction
	// and no table topic (<prefix>.<db>.<table>), even a table named transaction. The value is read as
	// Java reads a properties file (a backslash escapes the next character).
	pattern := strings.NewReplacer(`\\`, `\`).Replace(get("debezium.predicates.transactiontopic.pattern"))
	prefix := get("debezium.source.topic.prefix")
	if re, err := regexp.Compile("^(?:" + pattern + ")$"); err != nil {
		t.Errorf("transaction topic pattern %q: %v", pattern, err)
	} else {
		for topic, want := range map[string]bool{prefix + ".transaction": true, prefix + ".shop.transaction": false, prefix + ".shop.orders": false, prefix: false, "heartbeat." + prefix: false} {
			if re.MatchString(topic) != want {
				t.Errorf("transaction topic pattern %q matches %q: %v, want %v", pattern, topic, !want, want)
			}
		}
	}
	// Offsets and schema history are in the database Terraform creates, never on the container's disk.
	for _, k := range []string{"debezium.source.offset.storage.jdbc.connection.url", "debezium.source.schema.history.internal.jdbc.connection.url"} {
		if !strings.Contains(props[k], "${DB_STATE_DATABASE}") {
			t.Errorf("%s = %q does not point at the state database", k, props[k])
		}
	}
	for k := range props {
		if strings.Contains(k, ".file.filename") {
			t.Errorf("%s: file-based state is lost with the container", k)
		}
	}
	// The table topics Debezium derives are the ones Terraform creates.
	topics, _ := ctx.Variables["local"].AsValueMap()["table_topics"]
	for _, tbl := range readTFVars(t)["tables"].AsValueSlice() {
		want := get("debezium.source.topic.prefix") + "." + tbl.AsString()
		if !topics.Type().IsMapType() && !topics.Type().IsObjectType() {
			t.Fatal("local.table_topics is not a map")
		}
		if got := topics.AsValueMap()[tbl.AsString()]; got.AsString() != want {
			t.Errorf("table %s: Terraform creates topic %q, Debezium publishes to %q", tbl.AsString(), got.AsString(), want)
		}
	}
}
