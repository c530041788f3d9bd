package main

// List prices, USD, region us-central1 (Cloud Run Tier 1), read on 2026-11-23 through the search tool
// (stored copies of the pages below; the tool returns excerpts, so a figure cut off in every excerpt is
// marked UNCONFIRMED and the best documented figure is used).
//
// Free tiers: NONE is applied. Each is per billing account and shared with everything else on it, and
// at the rates modelled here they are small (noted next to each price so a reader can subtract them).
//
// | what                                  | price                     | free tier (not applied)           | source / status |
// |---------------------------------------|---------------------------|-----------------------------------|-----------------|
// | Pub/Sub throughput (publish + deliver)| $40 / TiB                 | first 10 GiB / month              | https://cloud.google.com/pubsub/pricing — confirmed: "$40 per TiB", "first 10 GiB ... free", "A minimum of 1000 bytes per publish, push, or pull request is assessed regardless of message size" (per REQUEST, not per message) |
// | Pub/Sub storage (topic retention, retained acknowledged messages) | $0.27 / GiB-month | none      | https://cloud.google.com/pubsub/pricing — confirmed ("$0.27 per GiB-month", transcription of that page dated 2026-09-20; the page bills "storage costs for snapshots, messages retained by topics, and acknowledged messages retained by subscriptions"). Once per topic: a topic's retention keeps each message once, for all its subscriptions (https://docs.cloud.google.com/pubsub/docs/subscription-properties, read 2026-12-02); acknowledged messages a subscription retains are billed to that subscription (https://cloud.google.com/pubsub/docs/subscription-message-retention, stored in Korean only: storage for the acknowledged messages a subscription retains is billed to the subscription's project), each subscription its own copy. Unacknowledged messages are billed only once a subscription has kept them for more than 24 hours (subscription-properties) |
// | Cloud Run, instance-based (CPU always allocated), vCPU | $0.000018 / vCPU-s | 240,000 vCPU-s / month | https://cloud.google.com/run/pricing — confirmed "$0.00001800 / vCPU-second" for "Services with CPU always allocated"; free figure cut off ("First 24…"): UNCONFIRMED |
// | Cloud Run, instance-based, memory     | $0.000002 / GiB-s         | 450,000 GiB-s / month             | https://cloud.google.com/run/pricing — UNCONFIRMED (cut off in every excerpt); best documented figure |
// | Cloud Run, instance-based, requests   | $0                        | —                                 | no per-request fee with instance-based billing (https://cloud.google.com/run/docs/configuring/billing-settings: "If you choose request-based billing, you are charged per request"); the $0.40/M request fee applies to request-based billing only |
// | Cloud Run worker pool (Debezium)      | same as instance-based    | —                                 | UNCONFIRMED: worker-pool rates not found; assumed equal to instance-based service rates |
// | Memorystore for Redis, per GB-hour    | table redisPrices below   | none                              | https://cloud.google.com/memorystore/docs/redis/pricing — UNCONFIRMED: the page's price table (a region drop-down) is not in the stored copy; figures are the us-central1 list prices as last documented |
// | Memorystore for Redis Cluster, Memorystore for Valkey, per node-hour | -node-usd-hour (no default) | none | https://cloud.google.com/memorystore/docs/cluster/pricing and https://cloud.google.com/memorystore/docs/valkey/pricing — NOT FOUND (searched 2026-12-02): the stored copy (in Japanese) says instances are billed per second on their nodes and shows the price per node per hour, but the table is a region drop-down and no figure is in any copy; node capacities are confirmed (clusterNodeGB). So the cluster engines are priced only with -node-usd-hour, your region's list price for the node type |
// | Managed Service for Prometheus samples| $0.060 / M (0-50 B), $0.048 (50-250 B), $0.036 (250-500 B), $0.024 (>500 B) | none for Prometheus samples | https://cloud.google.com/stackdriver/pricing — UNCONFIRMED: the Prometheus row is cut off in the excerpts; best documented figures. Billing SKU name "Prometheus Samples Ingested" confirmed at https://cloud.google.com/stackdriver/docs/managed-prometheus/cost-controls |
// | Cloud Logging storage                 | $0.50 / GiB               | first 50 GiB / project / month    | https://cloud.google.com/stackdriver/pricing — confirmed |
const (
	priceDate   = "2026-11-23"
	priceRegion = "us-central1"

	pubsubPerTiB           = 40.0
	pubsubStoragePerGiBMon = 0.27
	pubsubMinRequestBytes  = 1000 // per publish/push request

	runVCPUSecond   = 0.000018 // instance-based billing, Tier 1
	runGiBSecond    = 0.000002 // instance-based billing, Tier 1 (UNCONFIRMED)
	runPerMRequests = 0.0      // instance-based billing has no request fee

	loggingPerGiB = 0.50
)

// sampleTier is one band of Managed Service for Prometheus sample pricing (cumulative monthly samples).
type sampleTier struct {
	upTo       float64 // samples; 0 = unbounded
	perMillion float64
}

var prometheusTiers = []sampleTier{
	{50e9, 0.060},
	{250e9, 0.048},
	{500e9, 0.036},
	{0, 0.024},
}

// redisBand is a Memorystore for Redis capacity tier: instances of up to maxGB are billed at the
// band's price for every provisioned GB.
type redisBand struct {
	name     string
	maxGB    float64 // 0 = unbounded
	basic    float64 // USD per GB-hour
	standard float64 // USD per GB-hour (STANDARD_HA: primary + replica)
}

// us-central1 (UNCONFIRMED, see the table above).
var redisPrices = []redisBand{
	{"M1 (1-4 GB)", 4, 0.049, 0.064},
	{"M2 (5-10 GB)", 10, 0.027, 0.054},
	{"M3 (11-35 GB)", 35, 0.023, 0.046},
	{"M4 (36-100 GB)", 100, 0.019, 0.035},
	{"M5 (>100 GB)", 0, 0.016, 0.023},
}

// redisGBHour is the price per GB-hour of an instance of gb GB in tier (BASIC or STANDARD_HA).
func redisGBHour(tier string, gb float64) (float64, string) {
	for _, b := range redisPrices {
		if b.maxGB == 0 || gb <= b.maxGB {
			if tier == "BASIC" {
				return b.basic, b.name
			}
			return b.standard, b.name
		}
	}
	panic("unreachable")
}

// prometheusCost prices samples ingested in a month over the tiers.
func prometheusCost(samples float64) float64 {
	cost, prev := 0.0, 0.0
	for _, t := range prometheusTiers {
		n := samples - prev
		if t.upTo != 0 && samples > t.upTo {
			n = t.upTo - prev
		}
		if n <= 0 {
			break
		}
		cost += n / 1e6 * t.perMillion
		prev = t.upTo
		if t.upTo == 0 {
			break
		}
	}
	return cost
}

// clusterNodeGB is the total capacity of each node type of Memorystore for Redis Cluster and for Valkey
// (the same four sizes on both; terraform/variables.tf redis_node_type names them as Valkey does):
// https://cloud.google.com/memorystore/docs/cluster/cluster-node-specification and
// https://cloud.google.com/memorystore/docs/valkey/instance-node-specification, read 2026-12-02 (the
// total node capacity; writable keyspace is about 80% of it by default). The other node types' capacities
// are not in the stored copies: not modelled.
var clusterNodeGB = map[string]float64{
	"SHARED_CORE_NANO": 1.4,
	"STANDARD_SMALL":   6.5,
	"HIGHMEM_MEDIUM":   13,
	"HIGHMEM_XLARGE":   58,
}

func clusterNodeTypes() []string {
	return []string{"SHARED_CORE_NANO", "STANDARD_SMALL", "HIGHMEM_MEDIUM", "HIGHMEM_XLARGE"}
}

var clusterProduct = map[string]string{"redis_cluster": "Redis Cluster", "valkey": "Valkey"}

var clusterPricingPage = map[string]string{
	"redis_cluster": "https://cloud.google.com/memorystore/docs/cluster/pricing",
	"valkey":        "https://cloud.google.com/memorystore/docs/valkey/pricing",
}

const clusterPriceStatus = "prices.go holds no figure: the stored copies of the pricing pages (searched 2026-12-02) show the table only as a region drop-down"
