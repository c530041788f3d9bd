package redisserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testcerts"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// ClusterOptions configure a local Redis Cluster (StartCluster).
type ClusterOptions struct {
	// Dir holds one directory per node (node-1, node-2, …) and, with TLS, the cluster's certificates.
	// StartClusterForTest uses a temporary directory when it is empty.
	Dir string
	// Primaries is the number of shards, at least 3 (redis-cli --cluster create needs three); 0 means 3.
	Primaries int
	// Replicas is the number of replicas of each primary; 0 means none.
	Replicas int
	// Password turns on AUTH on every node (requirepass, and masterauth for replication), as the
	// single server's Options.Password does.
	Password string
	// TLS serves TLS only on every node, the cluster bus and replication included, with one
	// certificate for 127.0.0.1 signed by a fresh CA (Cluster.CAFile).
	TLS bool
	// NodeTimeout is cluster-node-timeout; 0 means 5s. The harness promotes replicas itself
	// (Failover, KillPrimary), so nothing waits on it; a short one would let a starved CI machine fail
	// a healthy primary over behind a test's back.
	NodeTimeout time.Duration
}

// Cluster is a running local Redis Cluster: every node a redis-server of its own on free loopback
// ports (client and bus), in its own directory, stopped with the process that started it.
type Cluster struct {
	// CAFile is the PEM of the CA that signed every node's certificate (ClusterOptions.TLS).
	CAFile string

	opts  ClusterOptions
	nodes []*Server // in start order; the topology (who is primary) is the cluster's, see Nodes
}

// Node is one node as the cluster sees it (CLUSTER NODES).
type Node struct {
	ID   string
	Addr string // host:port for clients
	// Primary is true for a primary, false for a replica (whose PrimaryID names its primary).
	Primary   bool
	PrimaryID string
	// Failed is true when the cluster counts the node as failing or it does not run.
	Failed bool
	// Slots are the primary's slot ranges, [first, last] inclusive.
	Slots [][2]int
}

// Owns reports whether the primary n serves slot.
func (n Node) Owns(slot int) bool {
	for _, r := range n.Slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// cliTimeout bounds one redis-cli --cluster run.
const cliTimeout = 2 * time.Minute

// clusterWaitTimeout bounds each wait for the cluster to agree (start-up, failover, resharding).
const clusterWaitTimeout = 60 * time.Second

// StartCluster starts the nodes, joins them with redis-cli --cluster create and waits until every
// node reports cluster_state:ok, every slot is served, every node agrees on who serves it and every
// replica is linked to its primary. Each node is stopped with SIGTERM if this process dies first.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	return startCluster(ctx, opts, syscall.SIGTERM)
}

func startCluster(ctx context.Context, opts ClusterOptions, parentDeath syscall.Signal) (*Cluster, error) {
	if opts.Primaries == 0 {
		opts.Primaries = 3
	}
	if opts.Primaries < 3 || opts.Replicas < 0 {
		return nil, fmt.Errorf("redisserver: a cluster needs at least 3 primaries and no negative replica count (got %d primaries, %d replicas)", opts.Primaries, opts.Replicas)
	}
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = 5 * time.Second
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return nil, fmt.Errorf("redisserver: redis-cli not found on PATH (apt-get install redis-tools): %w", err)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	opts.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	c := &Cluster{opts: opts}
	node := nodeOptions{timeout: opts.NodeTimeout, certDir: dir}
	if opts.TLS {
		if c.CAFile, err = testcerts.Write(dir); err != nil {
			return nil, fmt.Errorf("redisserver: TLS certificates: %w", err)
		}
	}
	// The nodes start in parallel: each waits for its own first answer.
	n := opts.Primaries * (1 + opts.Replicas)
	c.nodes = make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodeOpts := node
			c.nodes[i], errs[i] = start(ctx, Options{
				Dir:      filepath.Join(dir, fmt.Sprintf("node-%d", i+1)),
				Password: opts.Password,
				TLS:      opts.TLS,
				node:     &nodeOpts,
			}, parentDeath)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	// redis-cli makes the first Primaries nodes primaries and spreads the others over them as
	// replicas; who is which is read back from the cluster (Nodes), never assumed.
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	if _, err := c.cli(ctx, args...); err != nil {
		return c, err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return c, err
	}
	return c, nil
}

// cli runs redis-cli with the cluster's AUTH and TLS settings and returns its output.
func (c *Cluster) cli(ctx context.Context, args ...string) (string, error) {
	var pre []string
	if c.opts.Password != "" {
		pre = append(pre, "-a", c.opts.Password, "--no-auth-warning")
	}
	if c.opts.TLS {
		pre = append(pre, "--tls", "--cacert", c.CAFile)
	}
	// redis-cli --cluster waits without end for a cluster that never forms.
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", append(pre, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("redisserver: redis-cli %s: %w\n%s", strings.Join(args, " "), err, tail(out.Bytes()))
	}
	// redis-cli --cluster reports some failures with exit status 0 and an [ERR] line.
	if i := strings.Index(out.String(), "[ERR]"); i >= 0 {
		return out.String(), fmt.Errorf("redisserver: redis-cli %s: %s", strings.Join(args, " "), tail(out.Bytes()))
	}
	return out.String(), nil
}

// Addrs returns the host:port of every node, running or not, in start order.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		out[i] = s.Addr()
	}
	return out
}

// Seeds is Addrs joined with commas: a REDIS_ADDR naming every node.
func (c *Cluster) Seeds() string { return strings.Join(c.Addrs(), ",") }

// ClusterOptions are go-redis cluster client options reaching every node: the seeds, the password and
// TLS.
func (c *Cluster) ClusterOptions() *redis.ClusterOptions {
	o := &redis.ClusterOptions{Addrs: c.Addrs(), Password: c.opts.Password}
	if len(c.nodes) > 0 && c.nodes[0].tlsConfig != nil {
		o.TLSConfig = c.nodes[0].tlsConfig.Clone()
	}
	return o
}

// NodeOptions are go-redis options for a plain client of one node (a CLUSTER command, what one node
// holds, an ASK or MOVED answer as a client without cluster support gets it).
func (c *Cluster) NodeOptions(addr string) *redis.Options {
	s := c.server(addr)
	if s == nil {
		return &redis.Options{Addr: addr, Password: c.opts.Password}
	}
	return s.ClientOptions()
}

func (c *Cluster) server(addr string) *Server {
	for _, s := range c.nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// withNode runs f with a short-lived client of the node at addr.
func (c *Cluster) withNode(addr string, f func(*redis.Client) error) error {
	o := c.NodeOptions(addr)
	o.MaxRetries = -1
	rdb := redis.NewClient(o)
	defer rdb.Close()
	return f(rdb)
}

// Nodes returns the topology as a running node sees it (CLUSTER NODES), in start order. A node that
// does not run is Failed whatever the others think yet.
func (c *Cluster) Nodes(ctx context.Context) ([]Node, error) {
	var text string
	var lastErr error
	for _, s := range c.nodes {
		if !s.running() {
			continue
		}
		lastErr = c.withNode(s.Addr(), func(rdb *redis.Client) error {
			var err error
			text, err = rdb.ClusterNodes(ctx).Result()
			return err
		})
		if lastErr == nil {
			break
		}
	}
	if text == "" {
		return nil, fmt.Errorf("redisserver: no node answered CLUSTER NODES: %v", lastErr)
	}
	byAddr := map[string]Node{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		n, err := parseNode(line)
		if err != nil {
			return nil, err
		}
		byAddr[n.Addr] = n
	}
	out := make([]Node, 0, len(c.nodes))
	for _, s := range c.nodes {
		n, ok := byAddr[s.Addr()]
		if !ok {
			return nil, fmt.Errorf("redisserver: the cluster does not know node %s yet", s.Addr())
		}
		n.Failed = n.Failed || !s.running()
		out = append(out, n)
	}
	return out, nil
}

// parseNode reads one line of CLUSTER NODES:
// <id> <ip:port@cport[,hostname]> <flags> <primary id or -> <ping> <pong> <epoch> <link> <slot>…
func parseNode(line string) (Node, error) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return Node{}, fmt.Errorf("redisserver: CLUSTER NODES line %q", line)
	}
	addr, _, _ := strings.Cut(f[1], "@")
	n := Node{ID: f[0], Addr: addr}
	for _, flag := range strings.Split(f[2], ",") {
		switch flag {
		case "master":
			n.Primary = true
		case "fail", "fail?", "noaddr":
			n.Failed = true
		}
	}
	if f[3] != "-" {
		n.PrimaryID = f[3]
	}
	for _, s := range f[8:] {
		if strings.HasPrefix(s, "[") { // a slot being imported or migrated: not served yet
			continue
		}
		first, last, isRange := strings.Cut(s, "-")
		a, err1 := strconv.Atoi(first)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(last)
		}
		if err1 != nil || err2 != nil {
			return Node{}, fmt.Errorf("redisserver: CLUSTER NODES slot %q in %q", s, line)
		}
		n.Slots = append(n.Slots, [2]int{a, b})
	}
	return n, nil
}

// Primaries returns the running primaries, in start order.
func (c *Cluster) Primaries(ctx context.Context) ([]Node, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, n := range nodes {
		if n.Primary && !n.Failed && len(n.Slots) > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// SlotOwner returns the primary serving slot.
func (c *Cluster) SlotOwner(ctx context.Context, slot int) (Node, error) {
	ps, err := c.Primaries(ctx)
	if err != nil {
		return Node{}, err
	}
	for _, p := range ps {
		if p.Owns(slot) {
			return p, nil
		}
	}
	return Node{}, fmt.Errorf("redisserver: no primary serves slot %d", slot)
}

// KeySlot returns the hash slot of key, as the cluster computes it (CLUSTER KEYSLOT).
func (c *Cluster) KeySlot(ctx context.Context, key string) (int, error) {
	for _, s := range c.nodes {
		if !s.running() {
			continue
		}
		var slot int64
		err := c.withNode(s.Addr(), func(rdb *redis.Client) error {
			var err error
			slot, err = rdb.ClusterKeySlot(ctx, key).Result()
			return err
		})
		return int(slot), err
	}
	return 0, errors.New("redisserver: no node runs")
}

// WaitHealthy waits until every running node reports cluster_state:ok with all 16,384 slots served,
// every running node maps every slot to the same running primary and sees every other running node
// as such a primary or a replica of one, and every running replica's link to its primary is up.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, clusterWaitTimeout)
	defer cancel()
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisserver: the cluster did not become healthy within %v: %w", clusterWaitTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	var want string // the slot map, as the first running node sees it
	primaries := map[string]bool{}
	if ps, err := c.Primaries(ctx); err == nil {
		for _, p := range ps {
			primaries[p.ID] = true
		}
	} else {
		return err
	}
	for _, s := range c.nodes {
		if !s.running() {
			continue
		}
		err := c.withNode(s.Addr(), func(rdb *redis.Client) error {
			text, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			info := infoFields(text)
			for k, v := range map[string]string{"cluster_state": "ok", "cluster_slots_assigned": "16384", "cluster_slots_ok": "16384"} {
				if info[k] != v {
					return fmt.Errorf("node %s: CLUSTER INFO says %s:%s, not %s", s.Addr(), k, info[k], v)
				}
			}
			slots, err := rdb.ClusterSlots(ctx).Result()
			if err != nil {
				return err
			}
			m, err := slotMap(slots, primaries)
			if err != nil {
				return fmt.Errorf("node %s: %w", s.Addr(), err)
			}
			if want == "" {
				want = m
			} else if m != want {
				return fmt.Errorf("node %s maps the slots otherwise than node %s: %s, not %s", s.Addr(), c.nodes[0].Addr(), m, want)
			}
			text, err = rdb.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if repl := infoFields(text); repl["role"] == "slave" && repl["master_link_status"] != "up" {
				return fmt.Errorf("replica %s is not linked to its primary yet", s.Addr())
			}
			// Every other running node is, in this node's view, a replica of a serving primary (a
			// replica redis-cli has configured is a primary without slots until the news spreads).
			if text, err = rdb.ClusterNodes(ctx).Result(); err != nil {
				return err
			}
			view := map[string]Node{}
			for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
				n, err := parseNode(line)
				if err != nil {
					return err
				}
				view[n.Addr] = n
			}
			for _, other := range c.nodes {
				n, ok := view[other.Addr()]
				switch {
				case !other.running():
				case !ok:
					return fmt.Errorf("node %s does not know node %s yet", s.Addr(), other.Addr())
				case n.Primary && !primaries[n.ID]:
					return fmt.Errorf("node %s sees node %s as a primary without slots", s.Addr(), other.Addr())
				case !n.Primary && !primaries[n.PrimaryID]:
					return fmt.Errorf("node %s sees node %s as a replica of %q, not of a serving primary", s.Addr(), other.Addr(), n.PrimaryID)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// infoFields reads the key:value lines of INFO or CLUSTER INFO.
func infoFields(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// slotMap renders CLUSTER SLOTS as "first-last=primary-id,…", checking that the ranges cover every slot
// once and that each is served by a running primary.
func slotMap(slots []redis.ClusterSlot, primaries map[string]bool) (string, error) {
	sort.Slice(slots, func(i, j int) bool { return slots[i].Start < slots[j].Start })
	var b strings.Builder
	next := 0
	for _, s := range slots {
		if s.Start != next {
			return "", fmt.Errorf("slots %d-%d are served by no primary", next, s.Start-1)
		}
		if len(s.Nodes) == 0 || !primaries[s.Nodes[0].ID] {
			return "", fmt.Errorf("slots %d-%d: primary %v is not a running primary", s.Start, s.End, s.Nodes)
		}
		fmt.Fprintf(&b, "%d-%d=%s,", s.Start, s.End, s.Nodes[0].ID)
		next = s.End + 1
	}
	if next != Slots {
		return "", fmt.Errorf("slots %d-%d are served by no primary", next, Slots-1)
	}
	return b.String(), nil
}

// replicaOf returns a running replica of the primary at addr.
func (c *Cluster) replicaOf(ctx context.Context, addr string) (primary, replica Node, err error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return Node{}, Node{}, err
	}
	for _, n := range nodes {
		if n.Addr == addr {
			primary = n
		}
	}
	if !primary.Primary {
		return Node{}, Node{}, fmt.Errorf("redisserver: %s is not a primary", addr)
	}
	for _, n := range nodes {
		if !n.Primary && n.PrimaryID == primary.ID && !n.Failed {
			return primary, n, nil
		}
	}
	return Node{}, Node{}, fmt.Errorf("redisserver: primary %s has no running replica", addr)
}

// Failover hands the primary at addr over to one of its replicas the graceful way (CLUSTER FAILOVER on
// the replica: the primary stops taking writes, the replica catches up, then takes its slots, so no
// acknowledged write is lost) and waits until the cluster is healthy again with the replica serving
// the slots. It returns the new primary.
func (c *Cluster) Failover(ctx context.Context, addr string) (Node, error) {
	return c.promote(ctx, addr, false)
}

// KillPrimary kills the primary at addr (SIGKILL, as a crashed machine) and promotes one of its
// replicas (CLUSTER FAILOVER FORCE on it: the managed service's control plane does the same on its own
// schedule), then waits until the cluster is healthy without it. Writes the replica had not received
// are lost, as in a real crash: callers that need them kept wait for replication first (WAIT).
// RestartNode brings the killed node back as a replica. It returns the new primary.
func (c *Cluster) KillPrimary(ctx context.Context, addr string) (Node, error) {
	return c.promote(ctx, addr, true)
}

func (c *Cluster) promote(ctx context.Context, addr string, kill bool) (Node, error) {
	primary, replica, err := c.replicaOf(ctx, addr)
	if err != nil {
		return Node{}, err
	}
	args := []any{"cluster", "failover"}
	if kill {
		c.server(addr).Kill()
		args = append(args, "force")
	}
	if err := c.withNode(replica.Addr, func(rdb *redis.Client) error { return rdb.Do(ctx, args...).Err() }); err != nil {
		return Node{}, fmt.Errorf("redisserver: %v on %s: %w", args, replica.Addr, err)
	}
	// Promoted when the replica serves the old primary's slots and every node agrees.
	wctx, cancel := context.WithTimeout(ctx, clusterWaitTimeout)
	defer cancel()
	for {
		err = c.healthy(wctx)
		if err == nil {
			var owner Node
			if owner, err = c.SlotOwner(wctx, primary.Slots[0][0]); err == nil && owner.ID != replica.ID {
				err = fmt.Errorf("slot %d is still served by %s", primary.Slots[0][0], owner.Addr)
			}
			if err == nil {
				return owner, nil
			}
		}
		select {
		case <-wctx.Done():
			return Node{}, fmt.Errorf("redisserver: %s was not promoted in place of %s within %v: %w", replica.Addr, addr, clusterWaitTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill kills the node at addr (SIGKILL) without promoting anyone.
func (c *Cluster) Kill(addr string) {
	if s := c.server(addr); s != nil {
		s.Kill()
	}
}

// RestartNode starts the node at addr again on its ports and directory (killing it first if it runs).
// It keeps its identity (nodes.conf), so a killed primary whose replica was promoted rejoins as that
// replica's replica and resynchronises. It waits until the cluster is healthy with the node in it.
func (c *Cluster) RestartNode(ctx context.Context, addr string) error {
	s := c.server(addr)
	if s == nil {
		return fmt.Errorf("redisserver: no node %s", addr)
	}
	if err := s.Restart(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, clusterWaitTimeout)
	defer cancel()
	for {
		err := c.healthy(wctx)
		if err == nil {
			var nodes []Node
			if nodes, err = c.Nodes(wctx); err == nil {
				for _, n := range nodes {
					if n.Addr == addr && n.Failed {
						err = fmt.Errorf("node %s still counted as failed", addr)
					}
				}
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("redisserver: node %s did not rejoin within %v: %w", addr, clusterWaitTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Reshard moves slots slots from the primary with ID from to the primary with ID to, with their
// keys, the way an operator does (redis-cli --cluster reshard: each slot set importing and migrating,
// its keys moved by MIGRATE in batches while clients are redirected with ASK, then given to the
// target), and waits until the cluster is healthy again. Clients may keep running meanwhile.
func (c *Cluster) Reshard(ctx context.Context, from, to string, slots int) error {
	var seed string
	for _, s := range c.nodes {
		if s.running() {
			seed = s.Addr()
			break
		}
	}
	if _, err := c.cli(ctx, "--cluster", "reshard", seed, "--cluster-from", from, "--cluster-to", to,
		"--cluster-slots", strconv.Itoa(slots), "--cluster-yes"); err != nil {
		return err
	}
	return c.WaitHealthy(ctx)
}

// Migration is one slot moving from one primary to another by the MIGRATE/SETSLOT sequence, one step
// at a time, so that a test can act in between: while it is under way the source answers ASK for the
// slot's keys it no longer holds, and a command on several keys of the slot split between the two
// nodes gets TRYAGAIN.
type Migration struct {
	c        *Cluster
	Slot     int
	From, To Node
}

// StartMigration sets slot importing on the primary at toAddr and migrating on the one that serves it,
// and moves no key yet.
func (c *Cluster) StartMigration(ctx context.Context, slot int, toAddr string) (*Migration, error) {
	from, err := c.SlotOwner(ctx, slot)
	if err != nil {
		return nil, err
	}
	ps, err := c.Primaries(ctx)
	if err != nil {
		return nil, err
	}
	m := &Migration{c: c, Slot: slot, From: from}
	for _, p := range ps {
		if p.Addr == toAddr {
			m.To = p
		}
	}
	if m.To.ID == "" || m.To.ID == from.ID {
		return nil, fmt.Errorf("redisserver: %s is not a primary other than slot %d's (%s)", toAddr, slot, from.Addr)
	}
	if err := c.withNode(m.To.Addr, func(rdb *redis.Client) error {
		return rdb.Do(ctx, "cluster", "setslot", slot, "importing", from.ID).Err()
	}); err != nil {
		return nil, fmt.Errorf("redisserver: setslot importing: %w", err)
	}
	if err := c.withNode(from.Addr, func(rdb *redis.Client) error {
		return rdb.Do(ctx, "cluster", "setslot", slot, "migrating", m.To.ID).Err()
	}); err != nil {
		return nil, fmt.Errorf("redisserver: setslot migrating: %w", err)
	}
	return m, nil
}

// MoveKeys moves up to n of the slot's keys still on the source to the target (MIGRATE … KEYS) and
// returns how many it moved.
func (m *Migration) MoveKeys(ctx context.Context, n int) (int, error) {
	moved := 0
	err := m.c.withNode(m.From.Addr, func(rdb *redis.Client) error {
		keys, err := rdb.ClusterGetKeysInSlot(ctx, m.Slot, n).Result()
		if err != nil || len(keys) == 0 {
			return err
		}
		host, port, _ := strings.Cut(m.To.Addr, ":")
		args := []any{"migrate", host, port, "", 0, 10000}
		if m.c.opts.Password != "" {
			args = append(args, "auth", m.c.opts.Password)
		}
		args = append(args, "keys")
		for _, k := range keys {
			args = append(args, k)
		}
		if err := rdb.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("MIGRATE: %w", err)
		}
		moved = len(keys)
		return nil
	})
	if err != nil {
		return moved, fmt.Errorf("redisserver: slot %d: %w", m.Slot, err)
	}
	return moved, nil
}

// Finish moves the keys left and gives the slot to the target on every primary, then waits until the
// cluster is healthy with the target serving it.
func (m *Migration) Finish(ctx context.Context) error {
	for {
		n, err := m.MoveKeys(ctx, 100)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	// The target first, so that the source, once it lets go, redirects to a node that takes the slot.
	ps, err := m.c.Primaries(ctx)
	if err != nil {
		return err
	}
	order := []string{m.To.Addr, m.From.Addr}
	for _, p := range ps {
		if p.Addr != m.To.Addr && p.Addr != m.From.Addr {
			order = append(order, p.Addr)
		}
	}
	for _, addr := range order {
		if err := m.c.withNode(addr, func(rdb *redis.Client) error {
			return rdb.Do(ctx, "cluster", "setslot", m.Slot, "node", m.To.ID).Err()
		}); err != nil {
			return fmt.Errorf("redisserver: setslot %d node on %s: %w", m.Slot, addr, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, clusterWaitTimeout)
	defer cancel()
	for {
		err := m.c.healthy(wctx)
		if err == nil {
			var owner Node
			if owner, err = m.c.SlotOwner(wctx, m.Slot); err == nil && owner.ID != m.To.ID {
				err = fmt.Errorf("slot %d still served by %s", m.Slot, owner.Addr)
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("redisserver: slot %d did not settle on %s within %v: %w", m.Slot, m.To.Addr, clusterWaitTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts every node down (SIGTERM).
func (c *Cluster) Stop() {
	for _, s := range c.nodes {
		if s != nil {
			s.Stop()
		}
	}
}

// KillAll kills every node at once (SIGKILL).
func (c *Cluster) KillAll() {
	for _, s := range c.nodes {
		if s != nil {
			s.Kill()
		}
	}
}
