package terraform_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// pushSubscriptions returns the subscriptions that push (to the function).
func pushSubscriptions(m *module) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, s := range m.resources("google_pubsub_subscription") {
		if child(s, "push_config") != nil {
			out = append(out, s)
		}
	}
	return out
}

func requirePush(m *module) []string {
	if len(pushSubscriptions(m)) == 0 {
		return []string{"no google_pubsub_subscription with a push_config"}
	}
	return nil
}

// Message ordering: every push subscription delivers in ordering-key order.
func checkOrdering(m *module) []string {
	v := requirePush(m)
	for _, s := range pushSubscriptions(m) {
		if on, ok := literalBool(attr(s, "enable_message_ordering")); !ok || !on {
			v = append(v, addr(s)+": enable_message_ordering must be the literal true")
		}
	}
	return v
}

// Push with OIDC: each push carries a token for a dedicated service account, whose audience is the
// endpoint, and that account (not a public member) holds roles/run.invoker on the pushed-to service.
func checkPushOIDC(m *module) []string {
	v := requirePush(m)
	for _, s := range pushSubscriptions(m) {
		pc := child(s, "push_config")
		svc := refTo(attr(pc, "push_endpoint"), "google_cloud_run_v2_service")
		if svc == "" || !refersTo(attr(pc, "push_endpoint"), "google_cloud_run_v2_service."+svc+".uri") {
			v = append(v, addr(s)+": push_endpoint must be a google_cloud_run_v2_service's uri")
			continue
		}
		tok := child(pc, "oidc_token")
		if tok == nil {
			v = append(v, addr(s)+": push_config has no oidc_token")
			continue
		}
		sa := refTo(attr(tok, "service_account_email"), "google_service_account")
		if sa == "" || !refersTo(attr(tok, "service_account_email"), "google_service_account."+sa+".email") {
			v = append(v, addr(s)+": oidc_token.service_account_email must be a google_service_account's email")
			continue
		}
		if !refersTo(attr(tok, "audience"), "google_cloud_run_v2_service."+svc+".uri") {
			v = append(v, addr(s)+": oidc_token.audience must be the pushed-to service's uri")
		}
		granted := false
		for _, g := range m.resources("google_cloud_run_v2_service_iam_member") {
			role, _ := literalString(attr(g, "role"))
			if role == "roles/run.invoker" && refersTo(attr(g, "name"), "google_cloud_run_v2_service."+svc) &&
				refersTo(attr(g, "member"), "google_service_account."+sa) {
				granted = true
			}
		}
		if !granted {
			v = append(v, fmt.Sprintf("%s: service account %s is not granted roles/run.invoker on service %s", addr(s), sa, svc))
		}
	}
	return v
}

// Dead letters: every push subscription has a dead_letter_policy to a topic that has a subscription of
// its own; the Pub/Sub service agent may publish to that topic and subscribe to the source; the
// function may publish there too.
func checkDeadLetter(m *module) []string {
	v := requirePush(m)
	for _, s := range pushSubscriptions(m) {
		dl := child(s, "dead_letter_policy")
		if dl == nil {
			v = append(v, addr(s)+": no dead_letter_policy")
			continue
		}
		topic := refTo(attr(dl, "dead_letter_topic"), "google_pubsub_topic")
		if topic == "" {
			v = append(v, addr(s)+": dead_letter_policy.dead_letter_topic must reference a google_pubsub_topic")
			continue
		}
		if refTo(attr(s, "topic"), "google_pubsub_topic") == topic && !strings.Contains(fmt.Sprint(refs(attr(s, "topic"))), "each") {
			v = append(v, addr(s)+": dead letters go back to the subscription's own topic")
		}
		attempts := attr(dl, "max_delivery_attempts")
		n, ok := literal(attempts)
		if !ok {
			for _, r := range refs(attempts) {
				if strings.HasPrefix(r, "var.") {
					n, ok = m.variableDefault(strings.TrimPrefix(r, "var."))
				}
			}
		}
		if !ok {
			v = append(v, addr(s)+": max_delivery_attempts must be a literal or a variable with a default")
		} else if f, _ := n.AsBigFloat().Float64(); f < 5 || f > 100 {
			v = append(v, fmt.Sprintf("%s: max_delivery_attempts %v is outside 5..100", addr(s), f))
		}

		hasSub := false
		for _, o := range m.resources("google_pubsub_subscription") {
			if o != s && refTo(attr(o, "topic"), "google_pubsub_topic") == topic {
				hasSub = true
			}
		}
		if !hasSub {
			v = append(v, fmt.Sprintf("%s: dead-letter topic %s has no subscription (its messages would be lost)", addr(s), topic))
		}
		if !topicGrant(m, topic, "roles/pubsub.publisher", "local.pubsub_service_agent") {
			v = append(v, fmt.Sprintf("dead-letter topic %s: the Pub/Sub service agent lacks roles/pubsub.publisher", topic))
		}
		if !topicGrant(m, topic, "roles/pubsub.publisher", "google_service_account.function") {
			v = append(v, fmt.Sprintf("dead-letter topic %s: the function's service account lacks roles/pubsub.publisher (DEAD_LETTER_TOPIC)", topic))
		}
		subGranted := false
		for _, g := range m.resources("google_pubsub_subscription_iam_member") {
			role, _ := literalString(attr(g, "role"))
			if role == "roles/pubsub.subscriber" && refersTo(attr(g, "member"), "local.pubsub_service_agent") &&
				(refersTo(attr(g, "subscription"), "google_pubsub_subscription."+s.Labels[1]) ||
					(refersTo(attr(g, "for_each"), "google_pubsub_subscription."+s.Labels[1]) && refersTo(attr(g, "subscription"), "each.value"))) {
				subGranted = true
			}
		}
		if !subGranted {
			v = append(v, addr(s)+": the Pub/Sub service agent lacks roles/pubsub.subscriber on it (needed to forward dead letters)")
		}
		if ttl, ok := literalString(attr(child(s, "expiration_policy"), "ttl")); !ok || ttl != "" {
			v = append(v, addr(s)+`: expiration_policy { ttl = "" } is needed, or a quiet table's subscription expires after 31 days`)
		}
	}
	return v
}

// topicGrant reports whether member gets role on the topic resource named topic.
func topicGrant(m *module, topic, role, member string) bool {
	for _, g := range m.resources("google_pubsub_topic_iam_member") {
		r, _ := literalString(attr(g, "role"))
		if r == role && refersTo(attr(g, "topic"), "google_pubsub_topic."+topic) && refersTo(attr(g, "member"), member) {
			return true
		}
	}
	return false
}

// No public IPs: Cloud SQL has no public address or authorized networks and a private network; Redis is
// reached through private services access; nothing allocates an external address.
func checkNoPublicIP(m *module) []string {
	var v []string
	sqls := m.resources("google_sql_database_instance")
	if len(sqls) == 0 {
		v = append(v, "no google_sql_database_instance to check")
	}
	for _, s := range sqls {
		ip := child(s, "settings", "ip_configuration")
		if ip == nil {
			v = append(v, addr(s)+": settings.ip_configuration is missing (ipv4_enabled defaults to true)")
			continue
		}
		if on, ok := literalBool(attr(ip, "ipv4_enabled")); !ok || on {
			v = append(v, addr(s)+": settings.ip_configuration.ipv4_enabled must be the literal false")
		}
		if attr(ip, "private_network") == nil {
			v = append(v, addr(s)+": settings.ip_configuration.private_network is not set")
		}
		if len(children(ip, "authorized_networks")) > 0 {
			v = append(v, addr(s)+": authorized_networks present")
		}
	}
	redis := m.resources("google_redis_instance")
	if len(redis) == 0 {
		v = append(v, "no google_redis_instance to check")
	}
	for _, r := range redis {
		if mode, ok := literalString(attr(r, "connect_mode")); !ok || mode != "PRIVATE_SERVICE_ACCESS" {
			v = append(v, addr(r)+`: connect_mode must be the literal "PRIVATE_SERVICE_ACCESS"`)
		}
		if attr(r, "authorized_network") == nil {
			v = append(v, addr(r)+": authorized_network is not set")
		}
	}
	for _, typ := range []string{"google_compute_address", "google_compute_global_address"} {
		for _, a := range m.resources(typ) {
			if t, _ := literalString(attr(a, "address_type")); t != "INTERNAL" {
				v = append(v, addr(a)+`: address_type must be the literal "INTERNAL"`)
			}
		}
	}
	for _, typ := range []string{"google_compute_instance", "google_compute_instance_template", "google_compute_region_instance_template"} {
		for _, inst := range m.resources(typ) {
			for _, ni := range children(inst, "network_interface") {
				if len(children(ni, "access_config")) > 0 {
					v = append(v, addr(inst)+": network_interface.access_config gives it an external IP")
				}
			}
		}
	}
	return v
}

// Redis AUTH and TLS: the instance requires both, and the function connects with TLS, the server CA and
// the AUTH string from Secret Manager.
func checkRedisAuthTLS(m *module) []string {
	var v []string
	for _, r := range m.resources("google_redis_instance") {
		if on, ok := literalBool(attr(r, "auth_enabled")); !ok || !on {
			v = append(v, addr(r)+": auth_enabled must be the literal true")
		}
		if mode, ok := literalString(attr(r, "transit_encryption_mode")); !ok || mode != "SERVER_AUTHENTICATION" {
			v = append(v, addr(r)+`: transit_encryption_mode must be the literal "SERVER_AUTHENTICATION"`)
		}
	}
	env := m.local("function_env")
	obj, ok := env.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return append(v, "local.function_env must be an object literal")
	}
	vals := map[string]hclsyntax.Expression{}
	for _, it := range obj.Items {
		if k, ok := literalString(it.KeyExpr); ok {
			vals[k] = it.ValueExpr
		}
	}
	if s, ok := literalString(vals["REDIS_TLS"]); !ok || s != "true" {
		v = append(v, `local.function_env: REDIS_TLS must be the literal "true"`)
	}
	if !refersTo(vals["REDIS_ADDR"], "google_redis_instance") || !refersTo(vals["REDIS_ADDR"], "google_redis_instance.cache.port") {
		v = append(v, "local.function_env: REDIS_ADDR must be the Redis instance's host and (TLS) port")
	}
	if vals["REDIS_CA_FILE"] == nil {
		v = append(v, "local.function_env: REDIS_CA_FILE is not set (the server CA of in-transit encryption)")
	}
	fn := m.resource("google_cloud_run_v2_service", "function")
	c := child(fn, "template", "containers")
	var pw *hclsyntax.Block
	for _, e := range children(c, "env") {
		if n, _ := literalString(attr(e, "name")); n == "REDIS_PASSWORD" {
			pw = e
		}
	}
	ref := child(pw, "value_source", "secret_key_ref")
	secret := refTo(attr(ref, "secret"), "google_secret_manager_secret")
	if secret == "" {
		return append(v, "the function's REDIS_PASSWORD must come from a Secret Manager secret (value_source.secret_key_ref)")
	}
	fromAuth := false
	for _, sv := range m.resources("google_secret_manager_secret_version") {
		if refersTo(attr(sv, "secret"), "google_secret_manager_secret."+secret) && refersTo(attr(sv, "secret_data"), "google_redis_instance.cache.auth_string") {
			fromAuth = true
		}
	}
	if !fromAuth {
		v = append(v, "secret "+secret+" does not hold google_redis_instance.cache.auth_string")
	}
	// The CA: a secret volume whose secret holds the instance's server_ca_certs, mounted by the container
	// at the directory REDIS_CA_FILE points into.
	mounted := false
	for _, vol := range children(child(fn, "template"), "volumes") {
		s := refTo(attr(child(vol, "secret"), "secret"), "google_secret_manager_secret")
		holdsCA := false
		for _, sv := range m.resources("google_secret_manager_secret_version") {
			if s != "" && refersTo(attr(sv, "secret"), "google_secret_manager_secret."+s) && refersTo(attr(sv, "secret_data"), "google_redis_instance.cache.server_ca_certs") {
				holdsCA = true
			}
		}
		name, _ := literalString(attr(vol, "name"))
		for _, vm := range children(c, "volume_mounts") {
			if n, _ := literalString(attr(vm, "name")); holdsCA && n == name && refersTo(attr(vm, "mount_path"), "local.redis_ca_path") && refersTo(vals["REDIS_CA_FILE"], "local.redis_ca_path") {
				mounted = true
			}
		}
	}
	if !mounted {
		v = append(v, "the function does not mount a secret holding google_redis_instance.cache.server_ca_certs at REDIS_CA_FILE's directory (local.redis_ca_path)")
	}
	return v
}

// Not publicly invokable: no allUsers/allAuthenticatedUsers anywhere, ingress restricted, the IAM
// invoker check on, and no authoritative IAM on Cloud Run that could open it.
func checkNotPublic(m *module) []string {
	var v []string
	for s, where := range m.stringLiterals() {
		for _, public := range []string{"allUsers", "allAuthenticatedUsers"} {
			if strings.Contains(s, public) {
				v = append(v, fmt.Sprintf("%s granted at %s", public, strings.Join(where, ", ")))
			}
		}
	}
	services := m.resources("google_cloud_run_v2_service")
	if len(services) == 0 {
		v = append(v, "no google_cloud_run_v2_service to check")
	}
	for _, s := range services {
		ingress, ok := literalString(attr(s, "ingress"))
		if !ok || (ingress != "INGRESS_TRAFFIC_INTERNAL_ONLY" && ingress != "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER") {
			v = append(v, addr(s)+`: ingress must be the literal "INGRESS_TRAFFIC_INTERNAL_ONLY" (or _INTERNAL_LOAD_BALANCER)`)
		}
		if e := attr(s, "invoker_iam_disabled"); e != nil {
			if off, ok := literalBool(e); !ok || off {
				v = append(v, addr(s)+": invoker_iam_disabled must be absent or the literal false")
			}
		}
	}
	for _, typ := range []string{"google_cloud_run_v2_service_iam_binding", "google_cloud_run_v2_service_iam_policy", "google_cloud_run_service_iam_binding", "google_cloud_run_service_iam_policy", "google_cloud_run_service_iam_member"} {
		for _, r := range m.resources(typ) {
			v = append(v, addr(r)+": use google_cloud_run_v2_service_iam_member grants to named service accounts only")
		}
	}
	for _, g := range m.resources("google_cloud_run_v2_service_iam_member") {
		if role, _ := literalString(attr(g, "role")); role == "roles/run.invoker" && !refersTo(attr(g, "member"), "google_service_account") {
			v = append(v, addr(g)+": roles/run.invoker may only go to a service account of this module")
		}
	}
	return v
}

var primitiveRoles = []string{"roles/owner", "roles/editor", "roles/viewer"}

// No basic roles: no literal anywhere names one, every role attribute is a literal predefined role, and
// no authoritative project IAM resource exists.
func checkNoPrimitiveRoles(m *module) []string {
	var v []string
	for s, where := range m.stringLiterals() {
		for _, r := range primitiveRoles {
			if strings.TrimSpace(s) == r {
				v = append(v, fmt.Sprintf("%s at %s", r, strings.Join(where, ", ")))
			}
		}
	}
	for _, r := range m.allResources() {
		if !strings.HasSuffix(r.Labels[0], "_iam_member") && !strings.HasSuffix(r.Labels[0], "_iam_binding") {
			continue
		}
		role, ok := literalString(attr(r, "role"))
		if !ok {
			v = append(v, addr(r)+": role must be a literal (a variable could grant anything)")
		} else if !strings.HasPrefix(role, "roles/") {
			v = append(v, addr(r)+": role "+role+" is not a predefined role")
		}
	}
	for _, typ := range []string{"google_project_iam_binding", "google_project_iam_policy", "google_organization_iam_member", "google_organization_iam_binding", "google_folder_iam_member"} {
		for _, r := range m.resources(typ) {
			v = append(v, addr(r)+": no authoritative or organization/folder IAM in this module")
		}
	}
	return v
}

func TestMessageOrdering(t *testing.T) {
	expectNone(t, "ordering", checkOrdering)
	expectViolation(t, checkOrdering, "pubsub.tf", "enable_message_ordering = true", "enable_message_ordering = false")
	expectViolation(t, checkOrdering, "pubsub.tf", "enable_message_ordering = true", "")
}

func TestPushWithOIDC(t *testing.T) {
	expectNone(t, "push OIDC", checkPushOIDC)
	expectViolation(t, checkPushOIDC, "pubsub.tf", "oidc_token {", "no_oidc_token {")
	expectViolation(t, checkPushOIDC, "pubsub.tf", "audience              = google_cloud_run_v2_service.function.uri", "")
	expectViolation(t, checkPushOIDC, "iam.tf", `role     = "roles/run.invoker"`, `role     = "roles/run.developer"`)
}

func TestDeadLetterPolicy(t *testing.T) {
	expectNone(t, "dead letters", checkDeadLetter)
	expectViolation(t, checkDeadLetter, "pubsub.tf", "dead_letter_policy {", "no_dead_letter_policy {")
	expectViolation(t, checkDeadLetter, "variables.tf", "default     = 50", "default     = 500")
	expectViolation(t, checkDeadLetter, "pubsub.tf", "member  = local.pubsub_service_agent\n}\n\nresource \"google_pubsub_subscription_iam_member\"", "member  = google_service_account.push.member\n}\n\nresource \"google_pubsub_subscription_iam_member\"")
	expectViolation(t, checkDeadLetter, "pubsub.tf", `role         = "roles/pubsub.subscriber"`, `role         = "roles/pubsub.viewer"`)
	expectViolation(t, checkDeadLetter, "pubsub.tf", `topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60`, `topic                      = google_pubsub_topic.heartbeat.id
  ack_deadline_seconds       = 60`)
}

func TestNoPublicIP(t *testing.T) {
	expectNone(t, "no public IP", checkNoPublicIP)
	expectViolation(t, checkNoPublicIP, "cloudsql.tf", "ipv4_enabled    = false", "ipv4_enabled    = true")
	expectViolation(t, checkNoPublicIP, "cloudsql.tf", "ipv4_enabled    = false", "ipv4_enabled    = var.public")
	expectViolation(t, checkNoPublicIP, "cloudsql.tf", "ssl_mode        = \"ENCRYPTED_ONLY\"", "ssl_mode        = \"ENCRYPTED_ONLY\"\n      authorized_networks {\n        value = \"0.0.0.0/0\"\n      }")
	expectViolation(t, checkNoPublicIP, "redis.tf", `connect_mode       = "PRIVATE_SERVICE_ACCESS"`, `connect_mode       = var.mode`)
	expectViolation(t, checkNoPublicIP, "network.tf", `address_type  = "INTERNAL"`, `address_type  = "EXTERNAL"`)
}

func TestRedisAuthAndTLS(t *testing.T) {
	expectNone(t, "Redis AUTH and TLS", checkRedisAuthTLS)
	expectViolation(t, checkRedisAuthTLS, "redis.tf", "auth_enabled            = true", "auth_enabled            = false")
	expectViolation(t, checkRedisAuthTLS, "redis.tf", `transit_encryption_mode = "SERVER_AUTHENTICATION"`, `transit_encryption_mode = "DISABLED"`)
	expectViolation(t, checkRedisAuthTLS, "main.tf", `REDIS_TLS             = "true"`, `REDIS_TLS             = "false"`)
	expectViolation(t, checkRedisAuthTLS, "redis.tf", "secret_data = google_redis_instance.cache.auth_string", `secret_data = "hunter2"`)
	expectViolation(t, checkRedisAuthTLS, "function.tf", `name       = "redis-ca"`, `name       = "redis-ca-unused"`+"\n      }\n      volume_mounts {\n        name = \"x\"")
}

func TestFunctionNotPubliclyInvokable(t *testing.T) {
	expectNone(t, "not public", checkNotPublic)
	expectViolation(t, checkNotPublic, "function.tf", `ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"`, `ingress              = "INGRESS_TRAFFIC_ALL"`)
	expectViolation(t, checkNotPublic, "function.tf", "invoker_iam_disabled = false", "invoker_iam_disabled = true")
	expectViolation(t, checkNotPublic, "iam.tf", "member   = google_service_account.push.member", `member   = "allUsers"`)
	expectViolation(t, checkNotPublic, "iam.tf", "member   = google_service_account.push.member", `member   = "allAuthenticatedUsers"`)
}

func TestNoPrimitiveRoles(t *testing.T) {
	expectNone(t, "no basic roles", checkNoPrimitiveRoles)
	expectViolation(t, checkNoPrimitiveRoles, "iam.tf", `role    = "roles/monitoring.metricWriter"`, `role    = "roles/editor"`)
	expectViolation(t, checkNoPrimitiveRoles, "iam.tf", `role    = "roles/monitoring.metricWriter"`, `role    = "roles/owner"`)
	expectViolation(t, checkNoPrimitiveRoles, "iam.tf", `role    = "roles/monitoring.metricWriter"`, `role    = var.role`)
	expectViolation(t, checkNoPrimitiveRoles, "iam.tf", `role   = "roles/storage.objectViewer"`, `role   = "roles/viewer"`)
}
