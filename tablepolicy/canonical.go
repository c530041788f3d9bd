package tablepolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// canonicalFormat numbers the layout of Canonical. Changing the layout changes every fingerprint, so
// it gets a new number and FromCanonical refuses the numbers it does not know.
const canonicalFormat = 1

// canonical is the JSON layout of Canonical: Config's fields, normalized by Policy.Config.
type canonical struct {
	Format         int               `json:"format"`
	Tables         []string          `json:"tables,omitempty"`
	ExcludeColumns []string          `json:"exclude_columns,omitempty"`
	KeyTemplate    string            `json:"key_template,omitempty"`
	KeyTemplates   map[string]string `json:"key_templates,omitempty"`
	Epoch          uint64            `json:"epoch"`
}

// Config returns the policy's configuration in its one canonical spelling: two configurations New
// accepts that cache the same tables under the same keys, without the same columns, in the same
// epoch, give the same Config, however they were written. In it:
//   - lists are sorted and without duplicates;
//   - settings of tables outside a non-empty Tables list are dropped (they have no effect);
//   - key templates are spelled with {db} and {table} filled in, as they apply to their table
//     ("{db}.{table}:{id}" for shop.orders is "shop.orders:{id}"). With a Tables list every cached
//     table has its template in KeyTemplates and KeyTemplate is ""; without one, KeyTemplate is the
//     shared template (never "") and KeyTemplates holds only the tables whose keys it does not give.
//
// New accepts the result and gives a policy with the same keys and the same Canonical bytes.
func (p *Policy) Config() Config {
	c := Config{Epoch: p.epoch}
	cached := func(table string) bool { return p.include == nil || p.include[table] }
	if p.include != nil {
		for t := range p.include {
			c.Tables = append(c.Tables, t)
		}
		sort.Strings(c.Tables)
	}
	for table, cols := range p.exclude {
		if !cached(table) {
			continue
		}
		for col := range cols {
			c.ExcludeColumns = append(c.ExcludeColumns, table+"."+col)
		}
	}
	sort.Strings(c.ExcludeColumns)
	c.KeyTemplates = map[string]string{}
	if p.include == nil {
		c.KeyTemplate = p.def.String()
		for table, t := range p.custom {
			db, name, _ := splitTable(table) // New checked it
			if b := t.bind(db, name).String(); b != p.def.bind(db, name).String() {
				c.KeyTemplates[table] = b
			}
		}
	} else {
		for table := range p.include {
			db, name, _ := splitTable(table)
			t := p.def
			if own, ok := p.custom[table]; ok {
				t = own
			}
			c.KeyTemplates[table] = t.bind(db, name).String()
		}
	}
	if len(c.KeyTemplates) == 0 {
		c.KeyTemplates = nil
	}
	return c
}

// Canonical is the policy's Config as JSON, byte for byte the same for equivalent configurations (see
// Config): what the function publishes for its readers, and what Fingerprint hashes.
func (p *Policy) Canonical() []byte { return marshalCanonical(p.Config()) }

// Fingerprint identifies the whole policy: "sha256:" and the hex SHA-256 of Canonical.
func (p *Policy) Fingerprint() string { return fingerprint(p.Canonical()) }

// ReadFingerprint identifies the part of the policy a reader depends on: which tables are cached,
// under which keys, without which columns. Policies with the same ReadFingerprint give every row the
// same key and the same cached JSON; they may differ in the epoch, which orders the function's changes
// but does not change what a read or a fill sees or writes.
func (p *Policy) ReadFingerprint() string {
	c := p.Config()
	c.Epoch = 0
	return fingerprint(marshalCanonical(c))
}

func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func marshalCanonical(c Config) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// Strings, sorted slices and maps (encoding/json sorts map keys) cannot fail to encode.
	_ = enc.Encode(canonical{
		Format:         canonicalFormat,
		Tables:         c.Tables,
		ExcludeColumns: c.ExcludeColumns,
		KeyTemplate:    c.KeyTemplate,
		KeyTemplates:   c.KeyTemplates,
		Epoch:          c.Epoch,
	})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// FromCanonical reads a policy from its Canonical bytes (as another process published them) and
// validates it with New. It refuses bytes that are not exactly a canonical policy: an unknown format
// or field, or a configuration that is valid but spelled otherwise.
func FromCanonical(b []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c canonical
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("tablepolicy: canonical policy: %w", err)
	}
	if c.Format != canonicalFormat {
		return nil, fmt.Errorf("tablepolicy: canonical policy has format %d; this version reads format %d (upgrade the reader)", c.Format, canonicalFormat)
	}
	p, err := New(Config{Tables: c.Tables, ExcludeColumns: c.ExcludeColumns, KeyTemplate: c.KeyTemplate,
		KeyTemplates: c.KeyTemplates, Epoch: c.Epoch})
	if err != nil {
		return nil, fmt.Errorf("tablepolicy: canonical policy: %w", err)
	}
	if !bytes.Equal(p.Canonical(), b) {
		return nil, fmt.Errorf("tablepolicy: canonical policy: not in canonical form (want %s)", p.Canonical())
	}
	return p, nil
}

// Difference is one setting in which two policies differ, with each policy's value spelled as the
// setting's environment variable takes it (canonically, see Config).
type Difference struct {
	// Setting is the environment variable: CACHE_TABLES, CACHE_EXCLUDE_COLUMNS, CACHE_KEY_TEMPLATE,
	// CACHE_KEY_TEMPLATES, CACHE_VERSION_COLUMNS or CACHE_VERSION_EPOCH.
	Setting string
	// Ours is the value in the policy Diff was called on, Theirs in its argument; "" is unset.
	Ours, Theirs string
	// Reads says whether the difference changes keys or cached rows (not only version order), so that
	// a reader of one policy must not fill the cache of the other.
	Reads bool
}

func (d Difference) String() string {
	show := func(v string) string {
		if v == "" {
			return "unset"
		}
		return strconv.Quote(v)
	}
	return fmt.Sprintf("%s: ours %s, theirs %s", d.Setting, show(d.Ours), show(d.Theirs))
}

// Diff lists the settings in which p and q differ, in the order of Vars, comparing their canonical
// Configs: equivalent spellings are no difference.
func (p *Policy) Diff(q *Policy) []Difference {
	a, b := p.Config(), q.Config()
	list := func(s []string) string { return strings.Join(s, ",") }
	pairs := func(m map[string]string) string {
		var out []string
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	epoch := func(e uint64) string {
		if e == 0 {
			return ""
		}
		return strconv.FormatUint(e, 10)
	}
	var diffs []Difference
	for _, d := range []Difference{
		{"CACHE_TABLES", list(a.Tables), list(b.Tables), true},
		{"CACHE_EXCLUDE_COLUMNS", list(a.ExcludeColumns), list(b.ExcludeColumns), true},
		{"CACHE_KEY_TEMPLATE", a.KeyTemplate, b.KeyTemplate, true},
		{"CACHE_KEY_TEMPLATES", pairs(a.KeyTemplates), pairs(b.KeyTemplates), true},
		{"CACHE_VERSION_EPOCH", epoch(a.Epoch), epoch(b.Epoch), false},
	} {
		if d.Ours != d.Theirs {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// String spells the template back: its literal text and its placeholders in braces. Literal text
// never holds a brace (parseTemplate reads one as a placeholder, and escaped names have none), so the
// spelling parses back to the same template.
func (t *keyTemplate) String() string {
	var b strings.Builder
	for _, s := range t.segs {
		if s.isLit {
			b.WriteString(s.lit)
		} else {
			b.WriteString("{" + s.ph + "}")
		}
	}
	return b.String()
}
