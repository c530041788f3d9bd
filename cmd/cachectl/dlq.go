package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/internal/deadletter"
)

func (e env) dlq(ctx context.Context, args []string) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprint(e.stderr, "usage: cachectl dlq list|replay [flags] (cachectl dlq list -h for the flags)\n")
		return 2
	}
	replay := args[0] == "replay"
	fs := flag.NewFlagSet("dlq "+args[0], flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	sub := fs.String("subscription", e.getenv("DEAD_LETTER_SUBSCRIPTION"), "the dead-letter subscription: projects/<project>/subscriptions/<name>, or a name in -project (default $DEAD_LETTER_SUBSCRIPTION; Terraform output dead_letter_subscription)")
	project := fs.String("project", e.getenv("GOOGLE_CLOUD_PROJECT"), "project of a bare subscription name (default $GOOGLE_CLOUD_PROJECT)")
	prefix := fs.String("topic-prefix", e.getenv("TOPIC_PREFIX"), "Debezium's topic.prefix: table db.t is replayed to <prefix>.db.t (default $TOPIC_PREFIX; empty: the topic of the subscription each letter came from)")
	region := fs.String("region", e.getenv("PUBSUB_REGION"), "publish replays through this region's endpoint, as Debezium does (default $PUBSUB_REGION; empty: the global endpoint)")
	reason := fs.String("reason", "", "only letters with this reason: key, decode, foreign_value, … or delivery_attempts (forwarded by a subscription)")
	table := fs.String("table", "", "only letters of this table (db.table)")
	origin := fs.String("origin", "", "only letters of this origin: function, subscription or unknown")
	limit := fs.Int("limit", 0, "at most this many matching letters (0: all; list: 100)")
	wait := fs.Duration("wait", 5*time.Second, "how long a pull waits before the subscription counts as empty")
	asJSON := fs.Bool("json", false, "list: one JSON object per letter, data included")
	dryRun := fs.Bool("dry-run", false, "replay: say what would be replayed, publish and acknowledge nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var problems []error
	name := *sub
	switch {
	case name == "":
		problems = append(problems, errors.New("-subscription (or DEAD_LETTER_SUBSCRIPTION): required, e.g. projects/my-project/subscriptions/cloudsql-cache-dead-letter"))
	case !strings.HasPrefix(name, "projects/") && *project == "":
		problems = append(problems, fmt.Errorf("-subscription %s: a bare name needs -project (or GOOGLE_CLOUD_PROJECT)", name))
	case !strings.HasPrefix(name, "projects/"):
		name = "projects/" + *project + "/subscriptions/" + name
	}
	proj, ok := projectOf(name)
	if name != "" && !ok {
		problems = append(problems, fmt.Errorf("-subscription %s: not projects/<project>/subscriptions/<name>", name))
	}
	if o := deadletter.Origin(*origin); o != "" && o != deadletter.FromFunction && o != deadletter.FromSubscription && o != deadletter.FromUnknown {
		problems = append(problems, fmt.Errorf("-origin %q: want function, subscription or unknown", *origin))
	}
	if *table != "" && strings.Count(*table, ".") != 1 {
		problems = append(problems, fmt.Errorf("-table %q: want db.table", *table))
	}
	if !replay && *dryRun {
		problems = append(problems, errors.New("-dry-run is for replay: list never changes anything"))
	}
	if replay && *asJSON {
		problems = append(problems, errors.New("-json is for list"))
	}
	if *limit < 0 {
		problems = append(problems, fmt.Errorf("-limit %d: must not be negative", *limit))
	}
	if err := errors.Join(problems...); err != nil {
		return e.invalid(err)
	}
	client, err := e.pubsubClient(ctx, proj, "")
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 2
	}
	defer client.Close()
	q := &deadletter.Queue{Client: client, Subscription: name, TopicPrefix: *prefix, Wait: *wait}
	if replay && *region != "" && e.getenv("PUBSUB_EMULATOR_HOST") == "" {
		if q.Publisher, err = e.pubsubClient(ctx, proj, *region+"-pubsub.googleapis.com:443"); err != nil {
			fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
			return 2
		}
		defer q.Publisher.Close()
	}
	f := deadletter.Filter{Reason: *reason, Table: *table, Origin: deadletter.Origin(*origin)}
	if !replay {
		return e.dlqList(ctx, q, f, *limit, *asJSON)
	}
	return e.dlqReplay(ctx, q, f, *limit, *dryRun)
}

func (e env) dlqList(ctx context.Context, q *deadletter.Queue, f deadletter.Filter, limit int, asJSON bool) int {
	if limit == 0 {
		limit = 100
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(w, "ID\tORIGIN\tREASON\tTABLE\tORDERING KEY\tATTEMPTS\tDEAD-LETTERED\tDETAIL")
	}
	n := 0
	seen, err := q.List(ctx, f, limit, func(l deadletter.Letter) {
		n++
		if asJSON {
			b, _ := json.Marshal(l)
			fmt.Fprintln(e.stdout, string(b))
			return
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", l.ID, l.Origin, l.Reason, dash(l.Table), dash(l.OrderingKey), l.Attempts,
			l.DeadLettered.UTC().Format(time.RFC3339), clip(l.Detail, 120))
	})
	w.Flush()
	more := ""
	if n == limit {
		more = " (the limit: more may be waiting; raise -limit)"
	}
	fmt.Fprintf(e.stderr, "%d dead letters match of %d looked at%s; all are still on %s\n", n, seen, more, q.Subscription)
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 1
	}
	return 0
}

func (e env) dlqReplay(ctx context.Context, q *deadletter.Queue, f deadletter.Filter, limit int, dryRun bool) int {
	counts := map[deadletter.Outcome]int{}
	seen, err := q.Replay(ctx, f, limit, dryRun, func(r deadletter.Result) {
		counts[r.Outcome]++
		line := fmt.Sprintf("%s %s %s key %s -> %s", r.Outcome, r.Letter.ID, dash(r.Letter.Table), dash(r.Letter.OrderingKey), dash(r.Topic))
		if r.Err != nil {
			line += ": " + r.Err.Error()
		}
		fmt.Fprintln(e.stdout, line)
	})
	fmt.Fprintf(e.stderr, "looked at %d dead letters: %d replayed, %d would be replayed (dry run), %d cannot be replayed, %d publish errors\n",
		seen, counts[deadletter.Replayed], counts[deadletter.WouldReplay], counts[deadletter.Unreplayable], counts[deadletter.Failed])
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 1
	}
	if counts[deadletter.Failed] > 0 {
		return 1
	}
	return 0
}

// pubsubClient connects to Pub/Sub (at endpoint, if set), or to the emulator at PUBSUB_EMULATOR_HOST.
func (e env) pubsubClient(ctx context.Context, project, endpoint string) (*pubsub.Client, error) {
	var opts []option.ClientOption
	if host := e.getenv("PUBSUB_EMULATOR_HOST"); host != "" {
		conn, err := grpc.NewClient(host, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("pubsub emulator %s: %w", host, err)
		}
		opts = append(opts, option.WithGRPCConn(conn))
	} else if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	return c, nil
}

func projectOf(name string) (string, bool) {
	p := strings.Split(name, "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "subscriptions" || p[1] == "" || p[3] == "" {
		return "", false
	}
	return p[1], true
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
