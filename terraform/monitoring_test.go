package terraform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/monitoring/dashboard/apiv1/dashboardpb"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/promql/parser"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
)

// The dashboard and the alert policies, as Terraform plans them, decoded with Google's own API types
// (unknown fields refused), and every query in them checked: PromQL parsed by the Prometheus parser, each
// metric and label it names held to what the real function exports, or, for the read path's metrics,
// a real readcache service (examples/rowservice, readmetrics_test.go), and each Monitoring filter to
// the platform metric and resource it names.

// promMetric is a series name a PromQL query can select in Cloud Monitoring, with its labels.
type promMetric struct {
	otel   string // the OpenTelemetry instrument it comes from
	labels map[string]bool
}

// targetLabels are the prometheus_target resource labels the Telemetry API gives every point (from the
// resource: location, job = service.name, instance = service.instance.id, ...), queryable as labels.
var targetLabels = []string{"project_id", "location", "cluster", "namespace", "job", "instance"}

// cloudMonitoringNames translates the metrics the function exported over OTLP to the series PromQL
// reads in Cloud Monitoring. The Telemetry API stores OTLP metrics as Managed Service for Prometheus
// metrics under their OpenTelemetry names, dots kept (hence PromQL's quoted form {"cloudsql_cache.events"}),
// without unit or _total suffixes; a histogram is read as <name>_bucket (with le), <name>_count and
// <name>_sum. README.md, "Export to Cloud Monitoring".
func cloudMonitoringNames(exported []otlpMetric) map[string]promMetric {
	out := map[string]promMetric{}
	for _, m := range exported {
		labels := map[string]bool{}
		for k := range m.attributes {
			labels[k] = true
		}
		for _, k := range targetLabels {
			labels[k] = true
		}
		switch m.kind {
		case otlptranslator.MetricTypeHistogram, otlptranslator.MetricTypeExponentialHistogram:
			bucket := map[string]bool{"le": true}
			for k := range labels {
				bucket[k] = true
			}
			out[m.name+"_bucket"] = promMetric{m.name, bucket}
			out[m.name+"_count"] = promMetric{m.name, labels}
			out[m.name+"_sum"] = promMetric{m.name, labels}
		default:
			out[m.name] = promMetric{m.name, labels}
		}
	}
	return out
}

// otlpMetric is one metric of an OTLP export: name, kind, unit and the attribute keys of its points.
type otlpMetric struct {
	name, unit string
	kind       otlptranslator.MetricType
	attributes map[string]bool
}

var (
	exportedOnce sync.Once
	exported     []otlpMetric
	exportedErr  error
)

// functionMetrics starts the real function binary with its Prometheus endpoint (METRICS_ADDR) and OTLP
// export to a local receiver, applies a few changes (applied, duplicate, undecodable, and one while Redis
// is down), scrapes /metrics, then stops the function with SIGTERM, which exports everything over OTLP.
// It returns the OTLP metrics after checking that /metrics serves the same metrics and labels.
//
// An instrument that records nothing is exported by neither, so a query on a metric (or a label) that
// only some event produces needs that event here: the check then proves the function really exports it.
func functionMetrics(t *testing.T) []otlpMetric {
	t.Helper()
	exportedOnce.Do(func() {
		// Replaced on return; stays if runFunction ends the first caller with t.Fatal.
		exportedErr = fmt.Errorf("running the function failed in an earlier test (%s)", t.Name())
		exported, exportedErr = runFunction(t)
	})
	if exportedErr != nil {
		t.Fatal(exportedErr)
	}
	return exported
}

func runFunction(t *testing.T) ([]otlpMetric, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(sharedTemp, "cloudsql-cache-function")
	if err := functionproc.Build(ctx, "..", bin); err != nil {
		return nil, err
	}
	rs := redisserver.StartForTest(t, redisserver.Options{})
	recv := &otlpReceiver{}
	otlp := httptest.NewServer(recv)
	defer otlp.Close()
	port, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	metricsPort, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(metricsPort)
	var logs bytes.Buffer
	// The loss watcher's repair seeks through a Pub/Sub endpoint where nothing listens: it fails, and
	// says so in its metrics.
	nowhere, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	fn, err := functionproc.Start(ctx, bin, port, []string{
		"REDIS_ADDR=" + rs.Addr(), "DEAD_LETTER_TOPIC=nack", "METRICS_ADDR=" + metricsAddr,
		"METRICS_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL, "METRICS_EXPORT_INTERVAL=1h",
		"REDIS_WATCH_INTERVAL=100ms", "REPAIR_SUBSCRIPTIONS=projects/p/subscriptions/s", "PUBSUB_EMULATOR_HOST=127.0.0.1:" + strconv.Itoa(nowhere),
	}, &syncWriter{w: &logs})
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, logs.String())
	}
	defer fn.Kill()

	create := fixture(t, "mysql-create-noschema-serde-testfixture.json")
	update := fixture(t, "mysql-update-noschema-serde-testfixture.json")
	collision := bytes.Replace(create, []byte(`"Anne"`), []byte(`"Anna"`), 1)
	for _, d := range []struct {
		data []byte
		want int
	}{
		{create, http.StatusOK},                    // applied
		{create, http.StatusOK},                    // duplicate
		{collision, http.StatusOK},                 // applied, reason version_collision: another row under the same version
		{update, http.StatusOK},                    // applied, an update
		{[]byte("garbage"), http.StatusBadRequest}, // rejected (decode), DEAD_LETTER_TOPIC=nack
	} {
		if err := deliver(fn.URL(), d.data, d.want); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, logs.String())
		}
	}
	// Redis restarted empty: a restart, a total loss, a repair started and failed.
	rs.Restart()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return nil, err
		}
		text, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if regexp.MustCompile(`cloudsql_cache_repairs_total\{[^}]*reason="total_loss",state="failed"`).Match(text) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the function did not report the loss of Redis's data in 30 s\n%s\n%s", text, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	rs.Stop()
	if err := deliver(fn.URL(), bytes.Replace(update, []byte(`"pos": `), []byte(`"pos": 9`), 1), http.StatusServiceUnavailable); err != nil { // retry: Redis down
		return nil, fmt.Errorf("%w\n%s", err, logs.String())
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	fn.Stop() // SIGTERM: the final OTLP export
	metrics := recv.metrics()
	if len(metrics) == 0 {
		return nil, fmt.Errorf("the function exported nothing over OTLP at SIGTERM\n%s", logs.String())
	}
	if err := sameAsPrometheusEndpoint(metrics, text); err != nil {
		return nil, err
	}
	return metrics, nil
}

// sameAsPrometheusEndpoint checks that /metrics serves each OTLP metric under the name the Prometheus
// translation gives it, with the same labels, and no cloudsql_cache metric besides.
func sameAsPrometheusEndpoint(metrics []otlpMetric, text []byte) error {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return fmt.Errorf("/metrics: %w", err)
	}
	namer := otlptranslator.NewMetricNamer("", otlptranslator.UnderscoreEscapingWithSuffixes) // as the telemetry package serves it
	var problems []string
	seen := map[string]bool{}
	for _, m := range metrics {
		name, err := namer.Build(otlptranslator.Metric{Name: m.name, Unit: m.unit, Type: m.kind})
		if err != nil {
			return err
		}
		seen[name] = true
		f, ok := families[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s (OTLP) is not served on /metrics as %s", m.name, name))
			continue
		}
		labels := map[string]bool{}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if !strings.HasPrefix(l.GetName(), "otel_scope_") {
					labels[l.GetName()] = true
				}
			}
		}
		if a, b := strings.Join(keys(labels), ","), strings.Join(keys(m.attributes), ","); a != b {
			problems = append(problems, fmt.Sprintf("%s: /metrics has labels [%s], the OTLP export [%s]", name, a, b))
		}
	}
	for name := range families {
		if strings.HasPrefix(name, "cloudsql_cache") && !seen[name] {
			problems = append(problems, name+" is served on /metrics but was not exported over OTLP")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("/metrics and the OTLP export disagree:\n  %s\n/metrics:\n%s", strings.Join(problems, "\n  "), text)
	}
	return nil
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "debezium", name))
	if err != nil {
		t.Fatal(err)
	}
	// Committed a second ago (the fixtures' source.ts_ms is 0, unknown), so the lag is recorded.
	return bytes.Replace(b, []byte(`"ts_ms": 0,`), []byte(fmt.Sprintf(`"ts_ms": %d,`, time.Now().Add(-time.Second).UnixMilli())), 1)
}

func deliver(url string, data []byte, want int) error {
	body, err := push.Encode(&push.Message{ID: fmt.Sprint(time.Now().UnixNano()), Data: data, OrderingKey: `{"id":1004}`, PublishTime: time.Now(), DeliveryAttempt: 1})
	if err != nil {
		return err
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("delivery answered %d %q, want %d", resp.StatusCode, b, want)
	}
	return nil
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// otlpReceiver is an OTLP/HTTP metrics endpoint that keeps what it is sent.
type otlpReceiver struct {
	mu   sync.Mutex
	reqs []*colmetricpb.ExportMetricsServiceRequest
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	req := &colmetricpb.ExportMetricsServiceRequest{}
	if r.URL.Path != "/v1/metrics" || proto.Unmarshal(b, req) != nil {
		http.Error(w, "not an OTLP metrics export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.reqs = append(o.reqs, req)
	o.mu.Unlock()
	out, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (o *otlpReceiver) metrics() []otlpMetric {
	o.mu.Lock()
	defer o.mu.Unlock()
	byName := map[string]*otlpMetric{}
	for _, req := range o.reqs {
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					om := byName[m.Name]
					if om == nil {
						om = &otlpMetric{name: m.Name, unit: m.Unit, attributes: map[string]bool{}}
						byName[m.Name] = om
					}
					var attrs [][]string
					switch {
					case m.GetSum() != nil:
						om.kind = otlptranslator.MetricTypeNonMonotonicCounter
						if m.GetSum().IsMonotonic {
							om.kind = otlptranslator.MetricTypeMonotonicCounter
						}
						for _, p := range m.GetSum().DataPoints {
							attrs = append(attrs, attrKeys(p.Attributes))
						}
					case m.GetGauge() != nil:
						om.kind = otlptranslator.MetricTypeGauge
						for _, p := range m.GetGauge().DataPoints {
							attrs = append(attrs, attrKeys(p.Attributes))
						}
					case m.GetHistogram() != nil:
						om.kind = otlptranslator.MetricTypeHistogram
						for _, p := range m.GetHistogram().DataPoints {
							attrs = append(attrs, attrKeys(p.Attributes))
						}
					case m.GetExponentialHistogram() != nil:
						om.kind = otlptranslator.MetricTypeExponentialHistogram
						for _, p := range m.GetExponentialHistogram().DataPoints {
							attrs = append(attrs, attrKeys(p.Attributes))
						}
					}
					for _, ks := range attrs {
						for _, k := range ks {
							om.attributes[k] = true
						}
					}
				}
			}
		}
	}
	out := make([]otlpMetric, 0, len(byName))
	for _, n := range keys(byName) {
		out = append(out, *byName[n])
	}
	return out
}

func attrKeys[T interface{ GetKey() string }](kvs []T) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.GetKey())
	}
	return out
}

// --- The dashboard and the alert policies, decoded with the API's types -----------------------------

// strict refuses any field the API's message does not have.
var strict = protojson.UnmarshalOptions{DiscardUnknown: false}

// plannedDashboard decodes the planned dashboard_json as the Dashboards API's Dashboard.
func plannedDashboard(p *tfPlan) (*dashboardpb.Dashboard, error) {
	rc := p.resource("google_monitoring_dashboard.main")
	if rc == nil {
		return nil, fmt.Errorf("%s: no google_monitoring_dashboard.main planned", p.Run)
	}
	js, ok := rc.Change.After["dashboard_json"].(string)
	if !ok {
		return nil, fmt.Errorf("%s: dashboard_json is not known at plan", p.Run)
	}
	d := &dashboardpb.Dashboard{}
	if err := strict.Unmarshal([]byte(js), d); err != nil {
		return nil, fmt.Errorf("dashboard_json is not a Dashboard of the Monitoring Dashboards API: %w", err)
	}
	return d, nil
}

// plannedAlertPolicies decodes every planned google_monitoring_alert_policy as the Monitoring API's
// AlertPolicy: the planned values with Terraform's single-element block lists made messages and what
// only the API sets (computed-only attributes) or only Terraform has (project, id, timeouts) left out.
func plannedAlertPolicies(p *tfPlan) (map[string]*monitoringpb.AlertPolicy, error) {
	schema, ok := p.schema("google_monitoring_alert_policy")
	if !ok {
		return nil, fmt.Errorf("no schema for google_monitoring_alert_policy")
	}
	out := map[string]*monitoringpb.AlertPolicy{}
	for _, rc := range p.Changes {
		if rc.Type != "google_monitoring_alert_policy" || rc.Mode != "managed" {
			continue
		}
		obj := apiObject(rc.Change.After, schema, map[string]bool{"project": true, "id": true, "timeouts": true, "deletion_policy": true})
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		ap := &monitoringpb.AlertPolicy{}
		if err := strict.Unmarshal(b, ap); err != nil {
			return nil, fmt.Errorf("%s is not an AlertPolicy of the Monitoring API: %w\n%s", rc.Address, err, b)
		}
		out[rc.Address] = ap
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no alert policy planned", p.Run)
	}
	return out, nil
}

// apiObject turns a planned Terraform object into the API's JSON (protojson accepts the proto field
// names Terraform's attributes are named after).
func apiObject(v map[string]any, schema schemaBlock, drop map[string]bool) map[string]any {
	out := map[string]any{}
	for name, a := range schema.Attributes {
		val, ok := v[name]
		if drop[name] || !ok || val == nil || (a.Computed && !a.Optional && !a.Required) {
			continue
		}
		if m, isMap := val.(map[string]any); isMap && len(m) == 0 {
			continue
		}
		if l, isList := val.([]any); isList && len(l) == 0 {
			continue
		}
		out[name] = val
	}
	for name, bt := range schema.BlockTypes {
		items, _ := v[name].([]any)
		if drop[name] || len(items) == 0 {
			continue
		}
		var objs []any
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				objs = append(objs, apiObject(m, bt.Block, nil))
			}
		}
		if bt.MaxItems == 1 {
			out[name] = objs[0]
		} else {
			out[name] = objs
		}
	}
	return out
}

// --- The queries --------------------------------------------------------------------------------

// query is one query of a dashboard tile or an alert condition.
type query struct {
	where   string   // what holds it
	promql  string   // a PromQL query, or
	filter  string   // a Monitoring filter, with
	groupBy []string // the aggregation's groupByFields
	mql     string   // an MQL query (deprecated by Google; not allowed here)
}

// dashboardQueries collects the query of every TimeSeriesQuery anywhere in the dashboard (any widget
// kind), walking the message by reflection.
func dashboardQueries(d *dashboardpb.Dashboard) []query {
	var out []query
	var walk func(m protoreflect.Message, path string)
	walk = func(m protoreflect.Message, path string) {
		if q, ok := m.Interface().(*dashboardpb.TimeSeriesQuery); ok {
			switch s := q.Source.(type) {
			case *dashboardpb.TimeSeriesQuery_PrometheusQuery:
				out = append(out, query{where: path, promql: s.PrometheusQuery})
			case *dashboardpb.TimeSeriesQuery_TimeSeriesFilter:
				out = append(out, query{where: path, filter: s.TimeSeriesFilter.GetFilter(),
					groupBy: append(s.TimeSeriesFilter.GetAggregation().GetGroupByFields(), s.TimeSeriesFilter.GetSecondaryAggregation().GetGroupByFields()...)})
			case *dashboardpb.TimeSeriesQuery_TimeSeriesFilterRatio:
				for _, f := range []*dashboardpb.TimeSeriesFilterRatio_RatioPart{s.TimeSeriesFilterRatio.GetNumerator(), s.TimeSeriesFilterRatio.GetDenominator()} {
					out = append(out, query{where: path, filter: f.GetFilter(), groupBy: f.GetAggregation().GetGroupByFields()})
				}
			case *dashboardpb.TimeSeriesQuery_TimeSeriesQueryLanguage:
				out = append(out, query{where: path, mql: s.TimeSeriesQueryLanguage})
			}
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message(), fmt.Sprintf("%s.%s[%d]", path, fd.JSONName(), i))
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message(), fmt.Sprintf("%s.%s[%s]", path, fd.JSONName(), k.String()))
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message(), path+"."+fd.JSONName())
			}
			return true
		})
	}
	walk(d.ProtoReflect(), "dashboard")
	for i := range out {
		// Name the tile by its title rather than by its index alone.
		if m := regexp.MustCompile(`^dashboard\.mosaicLayout\.tiles\[(\d+)\]`).FindStringSubmatch(out[i].where); m != nil {
			n, _ := strconv.Atoi(m[1])
			out[i].where = fmt.Sprintf("tile %q%s", d.GetMosaicLayout().GetTiles()[n].GetWidget().GetTitle(), strings.TrimPrefix(out[i].where, m[0]))
		}
	}
	return out
}

// alertQueries collects every condition's query.
func alertQueries(policies map[string]*monitoringpb.AlertPolicy) []query {
	var out []query
	for _, addr := range keys(policies) {
		for _, c := range policies[addr].GetConditions() {
			where := fmt.Sprintf("%s condition %q", addr, c.GetDisplayName())
			switch cond := c.Condition.(type) {
			case *monitoringpb.AlertPolicy_Condition_ConditionPrometheusQueryLanguage:
				out = append(out, query{where: where, promql: cond.ConditionPrometheusQueryLanguage.GetQuery()})
			case *monitoringpb.AlertPolicy_Condition_ConditionThreshold:
				th := cond.ConditionThreshold
				out = append(out, query{where: where, filter: th.GetFilter(), groupBy: groupBys(th.GetAggregations())})
				if th.GetDenominatorFilter() != "" {
					out = append(out, query{where: where + " (denominator)", filter: th.GetDenominatorFilter(), groupBy: groupBys(th.GetDenominatorAggregations())})
				}
			case *monitoringpb.AlertPolicy_Condition_ConditionAbsent:
				out = append(out, query{where: where, filter: cond.ConditionAbsent.GetFilter(), groupBy: groupBys(cond.ConditionAbsent.GetAggregations())})
			case *monitoringpb.AlertPolicy_Condition_ConditionMonitoringQueryLanguage:
				out = append(out, query{where: where, mql: cond.ConditionMonitoringQueryLanguage.GetQuery()})
			default:
				out = append(out, query{where: where, mql: fmt.Sprintf("%T", cond)})
			}
		}
	}
	return out
}

func groupBys(aggs []*monitoringpb.Aggregation) []string {
	var out []string
	for _, a := range aggs {
		out = append(out, a.GetGroupByFields()...)
	}
	return out
}

// queryViolations checks each query: PromQL against the function's metrics, filters against the
// platform metrics and monitored resources they name.
func queryViolations(queries []query, metrics map[string]promMetric) []string {
	var v []string
	for _, q := range queries {
		switch {
		case q.mql != "":
			v = append(v, fmt.Sprintf("%s: %s: MQL is deprecated by Google and cannot be checked here; write PromQL", q.where, q.mql))
		case q.promql != "":
			for _, p := range promQLViolations(q.promql, metrics) {
				v = append(v, fmt.Sprintf("%s: %s", q.where, p))
			}
		case q.filter != "":
			for _, p := range filterViolations(q.filter, q.groupBy) {
				v = append(v, fmt.Sprintf("%s: %s", q.where, p))
			}
		default:
			v = append(v, q.where+": empty query")
		}
	}
	return v
}

var promQL = parser.NewParser(parser.Options{})

// promQLViolations parses q and checks that every metric it selects is one the function exports and
// every label it matches, groups or joins on is one of those metrics'.
func promQLViolations(q string, metrics map[string]promMetric) []string {
	expr, err := promQL.ParseExpr(q)
	if err != nil {
		return []string{fmt.Sprintf("%q is not PromQL: %v", q, err)}
	}
	var v []string
	// selected returns the metrics of the selectors under n.
	selected := func(n parser.Node) []string {
		var names []string
		parser.Inspect(n, func(c parser.Node, _ []parser.Node) error {
			if vs, ok := c.(*parser.VectorSelector); ok {
				names = append(names, selectorName(vs))
			}
			return nil
		})
		return names
	}
	hasLabel := func(names []string, label string) bool {
		for _, n := range names {
			if metrics[n].labels[label] {
				return true
			}
		}
		return false
	}
	exportedNames := keys(metrics)
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch x := n.(type) {
		case *parser.VectorSelector:
			name := selectorName(x)
			m, ok := metrics[name]
			if !ok {
				v = append(v, fmt.Sprintf("%q selects %q, which neither the function nor a readcache service exports (in Cloud Monitoring they export %v)", q, name, exportedNames))
				return nil
			}
			for _, lm := range x.LabelMatchers {
				if lm.Name != model.MetricNameLabel && !m.labels[lm.Name] {
					v = append(v, fmt.Sprintf("%q matches label %q, which %s does not have (it has %v)", q, lm.Name, name, keys(m.labels)))
				}
			}
		case *parser.AggregateExpr:
			names := selected(x.Expr)
			for _, l := range x.Grouping {
				if !hasLabel(names, l) {
					v = append(v, fmt.Sprintf("%q groups by %q, which none of %v has", q, l, names))
				}
			}
		case *parser.BinaryExpr:
			if x.VectorMatching != nil {
				names := append(selected(x.LHS), selected(x.RHS)...)
				for _, l := range append(append([]string{}, x.VectorMatching.MatchingLabels...), x.VectorMatching.Include...) {
					if !hasLabel(names, l) {
						v = append(v, fmt.Sprintf("%q joins on %q, which none of %v has", q, l, names))
					}
				}
			}
		case *parser.Call:
			if x.Func.Name == "histogram_quantile" && len(x.Args) == 2 {
				for _, name := range selected(x.Args[1]) {
					if !metrics[name].labels["le"] {
						v = append(v, fmt.Sprintf("%q: histogram_quantile over %q, which is not a histogram's _bucket series", q, name))
					}
				}
			}
		}
		return nil
	})
	return v
}

func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			return m.Value
		}
	}
	return ""
}

// platformMetrics are the Google Cloud metrics the module's filters may read, each with its monitored
// resource type and metric labels, from Google's lists of metrics and monitored resources
// (cloud.google.com/monitoring/api/metrics_gcp, /api/resources). A filter naming another metric fails
// until it is added here, after checking those lists.
var platformMetrics = map[string]struct {
	resource string
	labels   []string
}{
	"pubsub.googleapis.com/subscription/oldest_unacked_message_age": {"pubsub_subscription", nil},
	"pubsub.googleapis.com/subscription/num_undelivered_messages":   {"pubsub_subscription", nil},
	"pubsub.googleapis.com/subscription/dead_letter_message_count":  {"pubsub_subscription", nil},
	"pubsub.googleapis.com/topic/send_message_operation_count":      {"pubsub_topic", []string{"response_class", "response_code"}},
	"run.googleapis.com/request_count":                              {"cloud_run_revision", []string{"response_code", "response_code_class", "route"}},
	"run.googleapis.com/container/instance_count":                   {"cloud_run_revision", []string{"state"}},
	"redis.googleapis.com/stats/memory/usage_ratio":                 {"redis_instance", []string{"role"}},
	"redis.googleapis.com/stats/evicted_keys":                       {"redis_instance", []string{"role"}},
	// Memorystore for Redis Cluster and for Valkey (memorystore/docs/cluster and /valkey,
	// supported-monitoring-metrics): the cluster-wide maximum over nodes and total over primaries.
	"redis.googleapis.com/cluster/memory/maximum_utilization":            {"redis.googleapis.com/Cluster", nil},
	"redis.googleapis.com/cluster/stats/total_evicted_keys_count":        {"redis.googleapis.com/Cluster", nil},
	"memorystore.googleapis.com/instance/memory/maximum_utilization":     {"memorystore.googleapis.com/Instance", nil},
	"memorystore.googleapis.com/instance/stats/total_evicted_keys_count": {"memorystore.googleapis.com/Instance", nil},
}

// resourceLabels are the labels of the monitored resources above.
var resourceLabels = map[string][]string{
	"pubsub_subscription":                 {"project_id", "subscription_id"},
	"pubsub_topic":                        {"project_id", "topic_id"},
	"cloud_run_revision":                  {"project_id", "service_name", "revision_name", "location", "configuration_name"},
	"redis_instance":                      {"project_id", "region", "instance_id", "node_id"},
	"redis.googleapis.com/Cluster":        {"resource_container", "location", "cluster_id"},
	"memorystore.googleapis.com/Instance": {"resource_container", "location", "instance_id"},
}

var (
	filterTerm = regexp.MustCompile(`(metric\.type|resource\.type|metric\.labels?\.[A-Za-z0-9_]+|resource\.labels?\.[A-Za-z0-9_]+)\s*(=|!=|:|>|<)`)
	quotedType = regexp.MustCompile(`^\s*=\s*"([^"]+)"`)
)

// filterViolations checks a Monitoring filter: one metric.type the list above has, on its resource type,
// and only labels the metric and the resource have (in the filter and in groupByFields).
func filterViolations(filter string, groupBy []string) []string {
	var v []string
	var metricType, resourceType string
	var metricLabels, resLabels []string
	for _, m := range filterTerm.FindAllStringSubmatchIndex(filter, -1) {
		term := filter[m[2]:m[3]]
		rest := filter[m[4]:]
		switch {
		case term == "metric.type":
			if q := quotedType.FindStringSubmatch(rest); q != nil {
				metricType = q[1]
			}
		case term == "resource.type":
			if q := quotedType.FindStringSubmatch(rest); q != nil {
				resourceType = q[1]
			}
		case strings.HasPrefix(term, "metric."):
			metricLabels = append(metricLabels, term[strings.LastIndex(term, ".")+1:])
		default:
			resLabels = append(resLabels, term[strings.LastIndex(term, ".")+1:])
		}
	}
	for _, g := range groupBy {
		switch {
		case strings.HasPrefix(g, "metric.label.") || strings.HasPrefix(g, "metric.labels."):
			metricLabels = append(metricLabels, g[strings.LastIndex(g, ".")+1:])
		case strings.HasPrefix(g, "resource.label.") || strings.HasPrefix(g, "resource.labels."):
			resLabels = append(resLabels, g[strings.LastIndex(g, ".")+1:])
		default:
			v = append(v, fmt.Sprintf("groupByFields %q is neither metric.label.* nor resource.label.*", g))
		}
	}
	pm, ok := platformMetrics[metricType]
	if !ok {
		return append(v, fmt.Sprintf("filter %q: metric.type %q is not one of the platform metrics this test knows (%v); check it against Google's metrics list and add it", filter, metricType, keys(platformMetrics)))
	}
	if resourceType != pm.resource {
		v = append(v, fmt.Sprintf("filter %q: %s is written by monitored resource %s, the filter names resource.type %q", filter, metricType, pm.resource, resourceType))
	}
	for _, l := range metricLabels {
		if !contains(pm.labels, l) {
			v = append(v, fmt.Sprintf("filter %q: %s has no metric label %q (it has %v)", filter, metricType, l, pm.labels))
		}
	}
	for _, l := range resLabels {
		if !contains(resourceLabels[pm.resource], l) {
			v = append(v, fmt.Sprintf("filter %q: resource %s has no label %q (it has %v)", filter, pm.resource, l, resourceLabels[pm.resource]))
		}
	}
	return v
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// --- Tests ----------------------------------------------------------------------------------------

// monitoringPlan is the plan the dashboard and alert checks read: the properties run, with alerts by
// e-mail and several tables.
const monitoringPlan = "tests/properties.tftest.hcl/properties"

func TestFunctionMetricsInCloudMonitoring(t *testing.T) {
	metrics := cloudMonitoringNames(functionMetrics(t))
	for name, m := range metrics {
		t.Logf("%-45s from %-35s labels %v", name, m.otel, keys(m.labels))
	}
	// What the dashboard and the alerts rely on, so that a function that stopped exporting them is
	// caught here with a clear message as well as by the queries' checks.
	for _, want := range []struct{ name, label string }{
		{"cloudsql_cache.events", "outcome"}, {"cloudsql_cache.events", "reason"}, {"cloudsql_cache.events", "table"},
		{"cloudsql_cache.replication_lag_bucket", "le"}, {"cloudsql_cache.source.commit_time", "table"},
		{"cloudsql_cache.redis.errors", "kind"},
	} {
		if !metrics[want.name].labels[want.label] {
			t.Errorf("the function did not export %s with label %s", want.name, want.label)
		}
	}
}

func TestDashboardDecodesAndQueriesExportedMetrics(t *testing.T) {
	res := passingPlans(t)
	metrics := exportedMetrics(t)
	for _, p := range res.Plans {
		d, err := plannedDashboard(p)
		if err != nil {
			t.Fatalf("%s: %v", p.Run, err)
		}
		qs := dashboardQueries(d)
		if len(qs) < 10 {
			t.Errorf("%s: the dashboard has %d queries; the walk no longer finds them", p.Run, len(qs))
		}
		for _, violation := range queryViolations(qs, metrics) {
			t.Errorf("%s: %s", p.Run, violation)
		}
		if p.Run == monitoringPlan {
			for _, q := range qs {
				t.Logf("%s: %s%s", q.where, q.promql, q.filter)
			}
		}
	}
}

func TestAlertPoliciesDecodeAndQueryExportedMetrics(t *testing.T) {
	res := passingPlans(t)
	metrics := exportedMetrics(t)
	for _, p := range res.Plans {
		policies, err := plannedAlertPolicies(p)
		if err != nil {
			t.Fatalf("%s: %v", p.Run, err)
		}
		qs := alertQueries(policies)
		if len(qs) < len(policies) {
			t.Errorf("%s: %d queries in %d policies", p.Run, len(qs), len(policies))
		}
		for _, violation := range queryViolations(qs, metrics) {
			t.Errorf("%s: %s", p.Run, violation)
		}
		if p.Run == monitoringPlan {
			for _, q := range qs {
				t.Logf("%s: %s%s", q.where, q.promql, q.filter)
			}
		}
	}
}

// Each check fails on what it is meant to catch.
func TestQueryChecksFail(t *testing.T) {
	metrics := exportedMetrics(t)
	for _, tc := range []struct {
		q    query
		want string
	}{
		{query{promql: `sum(rate({"cloudsql_cache.event"}[5m]))`}, `selects "cloudsql_cache.event", which neither the function nor a readcache service exports`},
		{query{promql: `sum(rate(cloudsql_cache_events_total[5m]))`}, `selects "cloudsql_cache_events_total"`}, // the /metrics name, not Cloud Monitoring's
		{query{promql: `rate({"cloudsql_cache.events", outcom="retry"}[5m])`}, `matches label "outcom"`},
		{query{promql: `sum by (tabel) (rate({"cloudsql_cache.events"}[5m]))`}, `groups by "tabel"`},
		{query{promql: `histogram_quantile(0.99, sum by (le) (rate({"cloudsql_cache.replication_lag_count"}[5m])))`}, `not a histogram's _bucket series`},
		{query{promql: `sum by (outcome (rate({"cloudsql_cache.events"}[5m]))`}, `is not PromQL`},
		{query{filter: `resource.type = "pubsub_topic" AND metric.type = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"`}, `is written by monitored resource pubsub_subscription`},
		{query{filter: `resource.type = "pubsub_subscription" AND metric.type = "pubsub.googleapis.com/subscription/oldest_unacked_messages_age"`}, `is not one of the platform metrics`},
		{query{filter: `resource.type = "pubsub_subscription" AND resource.labels.subscription = "x" AND metric.type = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"`}, `has no label "subscription"`},
		{query{filter: `resource.type = "cloud_run_revision" AND metric.type = "run.googleapis.com/request_count"`, groupBy: []string{"metric.label.response_class"}}, `has no metric label "response_class"`},
		{query{mql: `fetch pubsub_subscription`}, `MQL`},
	} {
		tc.q.where = "test"
		v := strings.Join(queryViolations([]query{tc.q}, metrics), "\n")
		if !strings.Contains(v, tc.want) {
			t.Errorf("%+v: want a violation containing %q, got %q", tc.q, tc.want, v)
		}
	}
	// The API's types refuse what they do not know.
	if err := strict.Unmarshal([]byte(`{"displayName":"x","mosaicLayout":{"tiles":[{"widget":{"xyChart":{"dataSet":[]}}}]}}`), &dashboardpb.Dashboard{}); err == nil {
		t.Error("a dashboard with an unknown field (dataSet) was accepted")
	}
	if err := strict.Unmarshal([]byte(`{"displayName":"x","conditions":[{"conditionThreshold":{"filter":"f","comparison":"GREATER"}}]}`), &monitoringpb.AlertPolicy{}); err == nil {
		t.Error("an alert policy with an unknown comparison was accepted")
	}
}

// monitoringViolationsOnBrokenModule: on the module breakEverything produced (plan_test.go), the
// dashboard's mistyped metric and the alert's mistyped label are caught.
func monitoringViolationsOnBrokenModule(t *testing.T, p *tfPlan) {
	t.Helper()
	metrics := exportedMetrics(t)
	d, err := plannedDashboard(p)
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.Join(queryViolations(dashboardQueries(d), metrics), "\n"); !strings.Contains(v, `selects "cloudsql_cache.event"`) {
		t.Errorf("the dashboard's tiles on a metric the function does not export were not caught: %s", v)
	}
	policies, err := plannedAlertPolicies(p)
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.Join(queryViolations(alertQueries(policies), metrics), "\n"); !strings.Contains(v, `groups by "tabel"`) || !strings.Contains(v, `selects "cloudsql_cache.event"`) {
		t.Errorf("the alerts' mistyped metric and label were not caught: %s", v)
	}
}
