package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/redisenv"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// redisClient reads the REDIS_* variables; its error holds every problem.
func (e env) redisClient() (*redis.Client, error) {
	cfg, err := redisenv.FromEnv(e.getenv)
	if err != nil {
		return nil, err
	}
	// An operator's command may scan a large keyspace: give each command more room than the function's.
	cfg.Timeout = max(cfg.Timeout, 5*time.Second)
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opts), nil
}

func (e env) get(ctx context.Context, args []string) int {
	var problems []error
	if len(args) == 0 {
		problems = append(problems, errors.New("get needs a key, or a db.table and its primary-key values"))
	}
	key := ""
	if len(args) == 1 {
		key = args[0]
	}
	var table *tablepolicy.Table
	if len(args) > 1 {
		t, err := e.table(args[0])
		problems = append(problems, err)
		table = t
	}
	rdb, err := e.redisClient()
	problems = append(problems, err)
	if err := errors.Join(problems...); err != nil {
		return e.invalid(err)
	}
	defer rdb.Close()
	if table != nil {
		if key, err = tableKey(table, args[1:]); err != nil {
			return e.invalid(err)
		}
	}
	entry, found, err := rowcache.Get(ctx, rdb, key)
	switch {
	case err != nil:
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 1
	case !found:
		fmt.Fprintf(e.stdout, "%s: not cached\n", key)
		return 1
	case entry.Deleted():
		fmt.Fprintf(e.stdout, "%s: deleted at version %s\n", key, entry.Version)
	default:
		fmt.Fprintf(e.stdout, "%s: version %s\n%s\n", key, entry.Version, entry.Row)
	}
	return 0
}

// table is the policy of db.table from the CACHE_* variables.
func (e env) table(name string) (*tablepolicy.Table, error) {
	db, t, ok := strings.Cut(name, ".")
	if !ok || db == "" || t == "" {
		return nil, fmt.Errorf("%q is not db.table", name)
	}
	cfg, err := tablepolicy.FromEnv(e.getenv)
	if err != nil {
		return nil, err
	}
	p, err := tablepolicy.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("CACHE_* table settings: %w", err)
	}
	pt, ok := p.Table(db, t)
	if !ok {
		return nil, fmt.Errorf("%s is not cached: it is not in CACHE_TABLES", name)
	}
	return pt, nil
}

// tableKey is the key of the row whose primary-key values are values, in key order. Each is a value as
// it is (a number and its decimal string make the same key), or name=value where the table's template
// names its key columns.
func tableKey(t *tablepolicy.Table, values []string) (string, error) {
	pk := make(debezium.Row, len(values))
	for i, v := range values {
		name, value, named := strings.Cut(v, "=")
		if !named {
			if t.KeyNamesColumns() {
				return "", fmt.Errorf("%s.%s's key template names its key columns: give the values as column=value (got %q)", t.DB, t.Name, v)
			}
			name, value = fmt.Sprintf("key%d", i+1), v
		}
		raw, _ := json.Marshal(value)
		pk[i] = debezium.Column{Name: name, Value: raw}
	}
	key, err := t.Key(pk)
	if err != nil {
		return "", fmt.Errorf("%s.%s: %w", t.DB, t.Name, err)
	}
	return key, nil
}

func (e env) sweepEpoch(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("sweep-epoch", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	epoch := fs.Uint64("epoch", 0, "the current CACHE_VERSION_EPOCH; keys of older epochs are deleted (required, > 0)")
	match := fs.String("match", "*", "SCAN MATCH glob limiting the keys examined (e.g. 'inventory.*')")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var problems []error
	if *epoch == 0 {
		problems = append(problems, errors.New("sweep-epoch needs -epoch N with N > 0, the epoch the function now runs with"))
	}
	rdb, err := e.redisClient()
	problems = append(problems, err)
	if err := errors.Join(problems...); err != nil {
		return e.invalid(err)
	}
	defer rdb.Close()
	n, err := rowcache.NewStore(rdb, 0).SweepEpoch(ctx, rowcache.TableKeys{Pattern: *match}, *epoch)
	fmt.Fprintf(e.stdout, "deleted %d keys of epochs older than %d\n", n, *epoch)
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v (safe to run again)\n", err)
		return 1
	}
	return 0
}
