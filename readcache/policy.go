package readcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy/published"
)

// PolicyCheck says whether a Client's fills wait for the function's published table policy
// (tablepolicy/published) to have the Client's read layout: its tables, keys and excluded columns.
// A reader whose policy differs would fill rows no change ever replaces (another key template or
// table list) or columns the function never stores (a missing CACHE_EXCLUDE_COLUMNS).
type PolicyCheck int

const (
	// PolicyRequire (the default) fills only while the function has published a policy and every
	// policy it runs has the Client's read layout (published.State.Check). Reads never stop: while
	// the check fails, a miss reads the database without filling, as MissNoFill does.
	PolicyRequire PolicyCheck = iota
	// PolicyIfPublished is PolicyRequire, except that nothing published allows fills: for a function
	// from before publication. A published policy that differs still stops them.
	PolicyIfPublished
	// PolicyOff never reads the published policy: the Client's own is trusted.
	PolicyOff
)

func (p PolicyCheck) String() string {
	switch p {
	case PolicyRequire:
		return "require"
	case PolicyIfPublished:
		return "ifpublished"
	case PolicyOff:
		return "off"
	}
	return fmt.Sprintf("PolicyCheck(%d)", int(p))
}

// ParsePolicyCheck reads "require", "ifpublished" or "off" (as PolicyCheck.String writes them).
func ParsePolicyCheck(s string) (PolicyCheck, error) {
	for _, p := range []PolicyCheck{PolicyRequire, PolicyIfPublished, PolicyOff} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("readcache: policy check %q is not require, ifpublished or off", s)
}

// PolicyStatus is what the Client last found out about the function's published policy.
type PolicyStatus struct {
	// Check is the Client's Options.PolicyCheck.
	Check PolicyCheck
	// FillAllowed reports whether misses fill (with MissFill). It changes only when the published
	// policy was read (or found absent): a Redis error leaves it as it was.
	FillAllowed bool
	// Err says why fills are not allowed, or what the last check could not do: published.ErrNotPublished,
	// a *published.DivergedError (errors.Is published.ErrDiverged) naming each setting to change,
	// published.ErrRollout, or a Redis error. Nil when the last check passed.
	Err error
	// Checked is when the published policy was last read; zero before the first read.
	Checked time.Time
}

// policyState holds the latest PolicyStatus; checks run at New and every PolicyInterval.
type policyState struct {
	mu sync.Mutex
	st PolicyStatus
}

func (p *policyState) get() PolicyStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *policyState) fillAllowed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st.FillAllowed
}

// PolicyStatus returns the result of the latest check of the function's published policy. With
// PolicyOff, FillAllowed is always true and nothing is read.
func (c *Client) PolicyStatus() PolicyStatus { return c.pol.get() }

// checkPolicy reads the published policy once and records the verdict.
func (c *Client) checkPolicy(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, c.o.DBTimeout)
	defer cancel()
	now := time.Now()
	state, err := published.Load(rctx, c.o.Redis, now)
	verdict := err
	if err == nil {
		verdict = state.Check(c.policy)
	}
	c.pol.mu.Lock()
	defer c.pol.mu.Unlock()
	c.pol.st.Err = verdict
	switch {
	case err == nil:
		c.pol.st.Checked = now
		c.pol.st.FillAllowed = verdict == nil
	case errors.Is(err, published.ErrNotPublished):
		c.pol.st.Checked = now
		c.pol.st.FillAllowed = c.o.PolicyCheck == PolicyIfPublished
		if c.pol.st.FillAllowed {
			c.pol.st.Err = nil
		}
	default:
		// Redis did not answer (or holds no document this release reads): keep the last verdict, which
		// for a new Client is "no fills" unless PolicyOff.
	}
}

// watchPolicy checks the published policy every interval until ctx ends.
func (c *Client) watchPolicy(ctx context.Context, interval time.Duration, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.checkPolicy(ctx)
		}
	}
}
