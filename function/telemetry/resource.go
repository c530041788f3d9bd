package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
)

// DetectResource describes this process for the exported metrics. On Cloud Run (K_SERVICE is set) it
// names the service, revision and configuration from Cloud Run's variables and asks the metadata server
// (GCE_METADATA_HOST overrides its address) for the project, region and instance id; every instance
// must write its own time series, or Cloud Monitoring refuses points written more often than its
// per-series limit. Elsewhere the instance is this host and process.
func DetectResource(ctx context.Context, getenv func(string) string, serviceName string) (*resource.Resource, error) {
	if serviceName == "" {
		serviceName = "cloudsql-cache-function"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", serviceName)}
	service := getenv("K_SERVICE")
	if service == "" {
		host, _ := os.Hostname()
		attrs = append(attrs, attribute.String("service.instance.id", fmt.Sprintf("%s-%d", host, os.Getpid())))
		return resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	}
	attrs = []attribute.KeyValue{
		attribute.String("service.name", service),
		attribute.String("cloud.provider", "gcp"),
		attribute.String("cloud.platform", "gcp_cloud_run"),
		attribute.String("faas.name", service),
	}
	if v := getenv("K_REVISION"); v != "" {
		attrs = append(attrs, attribute.String("faas.version", v), attribute.String("service.version", v))
	}
	if v := getenv("K_CONFIGURATION"); v != "" {
		attrs = append(attrs, attribute.String("gcp.cloud_run.configuration", v))
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	md := metadata.NewClient(nil)
	project := getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		project, _ = md.ProjectIDWithContext(ctx)
	}
	if project != "" {
		attrs = append(attrs, attribute.String("cloud.account.id", project), attribute.String("gcp.project_id", project))
	}
	if region, err := md.GetWithContext(ctx, "instance/region"); err == nil && region != "" {
		// projects/<number>/regions/<region>
		attrs = append(attrs, attribute.String("cloud.region", region[strings.LastIndex(region, "/")+1:]))
	}
	id, err := md.InstanceIDWithContext(ctx)
	if err != nil || id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	attrs = append(attrs, attribute.String("faas.instance", id), attribute.String("service.instance.id", id))
	return resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
}

// ProjectID asks the metadata server (GCE_METADATA_HOST overrides its address) for the project id; ""
// if it does not answer within 3 s.
func ProjectID(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	p, _ := metadata.NewClient(nil).ProjectIDWithContext(ctx)
	return p
}
