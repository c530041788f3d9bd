package tablepolicy

import (
	"bytes"
	"fmt"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// Kind is what a change does to the cache.
type Kind int

const (
	Upsert Kind = iota + 1
	Delete
	Truncate
)

func (k Kind) String() string {
	switch k {
	case Upsert:
		return "upsert"
	case Delete:
		return "delete"
	case Truncate:
		return "truncate"
	}
	return "unknown"
}

// Change is one write to the cache.
type Change struct {
	Kind    Kind
	Table   *Table
	Key     string // "" for a truncate
	Version rowcache.Version
	Row     []byte // the row JSON, for an upsert
}

// Resolve turns a row-change event into a cache change. key is the Debezium message key (the Pub/Sub
// ordering key). ok is false when the table is not cached. Every error is permanent: the same event
// will always fail the same way.
func (p *Policy) Resolve(ev *debezium.Event, key string) (c Change, ok bool, err error) {
	if ev.Kind != debezium.Change {
		return Change{}, false, fmt.Errorf("change: %v message is not a row change", ev.Kind)
	}
	t, ok := p.Table(ev.Source.DB, ev.Source.Table)
	if !ok {
		return Change{}, false, nil
	}
	c.Table = t
	var image debezium.Row
	switch ev.Op {
	case debezium.Truncate:
		// A floor: ordered by binlog position only; see rowcache.Store.RaiseFloor.
		c.Kind = Truncate
		c.Version = t.Floor(ev.Source)
		return c, true, nil
	case debezium.Delete:
		c.Kind, image = Delete, ev.Before
	default:
		c.Kind, image = Upsert, ev.After
	}
	pk, err := debezium.DecodeKey(key)
	if err != nil {
		return Change{}, true, fmt.Errorf("%s.%s: %w", t.DB, t.Name, err)
	}
	if err := keyMatchesRow(pk, image); err != nil {
		return Change{}, true, fmt.Errorf("%s.%s: %w", t.DB, t.Name, err)
	}
	if c.Key, err = t.Key(pk); err != nil {
		return Change{}, true, fmt.Errorf("%s.%s: %w", t.DB, t.Name, err)
	}
	c.Version = t.Version(ev)
	if c.Kind == Upsert {
		c.Row = t.RowJSON(image)
	}
	return c, true, nil
}

// keyMatchesRow guards against a message whose ordering key is not its row's key (a misconfigured
// publisher): writing it would put the row under another row's key.
func keyMatchesRow(pk, row debezium.Row) error {
	if row == nil {
		return nil
	}
	for _, k := range pk {
		v, ok := row.Get(k.Name)
		if ok && !bytes.Equal(bytes.TrimSpace(v), bytes.TrimSpace(k.Value)) {
			return fmt.Errorf("the message key says %s=%s but the row has %s", k.Name, k.Value, v)
		}
	}
	return nil
}
