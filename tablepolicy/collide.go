package tablepolicy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A key space is the set of keys of one cached table, or, when CACHE_TABLES is empty, of every table the
// default template covers (all tables but those with a template of their own). New refuses a
// configuration unless, for its key spaces:
//
//  1. no key space gives two different rows the same key: its NFA (keylang.go) has no key with two
//     different accepting runs;
//  2. no two key spaces share a key: the product of their NFAs accepts nothing;
//  3. no table's SCAN pattern (its literal prefix followed by "*", how a truncate finds its rows)
//     matches a key of another table or a key the cache keeps for itself (MetaPrefix), and no table's
//     key starts with MetaPrefix.
//
// Why the rules are exact (of the configurations New's other rules let through, they refuse those and
// only those under which two different (table, primary key) pairs can get one key, or a table's pattern
// can reach a key of another table or of the cache):
//
//   - The languages are exactly the keys. A placeholder's DFA accepts exactly the images of escaping:
//     EscapeValue of valid UTF-8 strings (all KeyValue returns) for a value, EscapeName of non-empty
//     strings (all Table accepts) for a name, values joined by ":" for {pk}. The default template's
//     language leaves out precisely the tables with their own template (the tracker compares the
//     escaped names, and escaping is injective).
//   - A run reads a key as one text per placeholder, and the texts determine the run: placeholders
//     appear at most once (parseTemplate) and only the fixed literals lie between them. A text gives
//     one value (escaping is injective; for {pk}, ":" splits the values, as no value contains one).
//     So two different runs on a key are two different rows with that key (for the default template's
//     tables: different names, i.e. tables, or different key values), and two different rows with one
//     key are two different runs. The tracker is a function of the text read, so it adds no runs.
//   - {pk} accepts any number of values, which is right across tables (each has its own key length).
//     Inside one table it cannot make a false collision: {pk} is the only key placeholder and follows
//     the names, so only literal text comes after it and its text is fixed once its start is.
//   - Rule 2 is the emptiness of an intersection; rule 3 that of a pattern's language (the template's
//     segments up to the first key placeholder, then any bytes) with another key space, and, among the
//     default template's tables, of pairs of runs whose names differ (the runs part before the key).
//     Rule 3 implies rule 2 (a table's keys match its pattern); rule 2 is checked first for its
//     clearer message.
//   - Each search is breadth-first over pairs of NFA states, a finite set, so it ends; it tries one byte
//     of each class (byteClasses), and the bytes of a class have the same transitions everywhere, so it
//     misses no key. It returns a shortest key, which the message shows with the rows behind it.
//
// Rule 3 is what keeps a truncate from deleting another table's rows (Table.Pattern is a glob);
// Table.OwnsKey lets every sweep and report also skip keys that are not the table's.

// keySpace is the keys of one table, or of every table without a template of its own.
type keySpace struct {
	table string // "db.table"; "" for every table the default template covers
	src   string // its template as configured
	own   bool   // the table has its own template (CACHE_KEY_TEMPLATES)
	keys  *keyLang
	scan  *keyLang // the keys its SCAN patterns match
	lit   string   // the literal text every key starts with
	hint  string   // for a table: the literal prefix the default template gives it, a prefix of its own
}

// keyError is a refused key configuration, with the example that shows the collision.
type keyError struct {
	msg  string
	kind string // "same key", "pattern", "reserved", "reserved pattern"
	key  string // the example key
	a, b example
}

func (e *keyError) Error() string { return e.msg }

// example is one way to produce a key: a table and its key values.
type example struct {
	db, table string
	phs       []string   // placeholders in template order ("pk" or a column)
	vals      [][]string // their decoded values ({pk}: one per key column)
}

// id names the example's table as messages show it: db.table, or `db`.`table` when a name needs
// quoting (it holds a "." or a character that is not printable ASCII).
func (e example) id() string {
	plain := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '.' || s[i] == '`' {
				return false
			}
		}
		return true
	}
	if plain(e.db) && plain(e.table) {
		return e.db + "." + e.table
	}
	q := func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
	return q(e.db) + "." + q(e.table)
}

// values describes the key values: {tenant}="a" {id}="1", or {pk}="1","2".
func (e example) values() string {
	var parts []string
	for i, ph := range e.phs {
		q := make([]string, len(e.vals[i]))
		for j, v := range e.vals[i] {
			q[j] = strconv.Quote(v)
		}
		parts = append(parts, "{"+ph+"}="+strings.Join(q, ","))
	}
	return strings.Join(parts, " ")
}

// describe reads run r of key as the example it stands for.
func (s *keySpace) describe(r run, key string) example {
	e := example{}
	if s.table != "" {
		e.db, e.table, _ = splitTable(s.table)
	}
	texts := r.texts(key)
	for i, g := range r.lang.segs {
		switch g.kind {
		case segName:
			if g.ph == "db" {
				e.db = unescape(texts[i])
			} else {
				e.table = unescape(texts[i])
			}
		case segValue:
			e.phs = append(e.phs, g.ph)
			e.vals = append(e.vals, []string{unescape(texts[i])})
		case segPK:
			var vs []string
			for _, t := range strings.Split(texts[i], ":") {
				vs = append(vs, unescape(t))
			}
			e.phs = append(e.phs, g.ph)
			e.vals = append(e.vals, vs)
		}
	}
	return e
}

func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, _ := hexUpper(s[i+1])
			lo, _ := hexUpper(s[i+2])
			b.WriteByte(hi<<4 | lo)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// name is how messages name the key space.
func (s *keySpace) name() string {
	switch {
	case s.own:
		return fmt.Sprintf("%s (%q)", s.table, s.src)
	case s.table != "":
		return fmt.Sprintf("%s (CACHE_KEY_TEMPLATE %q)", s.table, s.src)
	}
	return fmt.Sprintf("the tables without a template of their own (CACHE_KEY_TEMPLATE %q)", s.src)
}

// setting prefixes a message about s with the setting to fix.
func (s *keySpace) setting() string {
	if s.own {
		return fmt.Sprintf("key templates: %s: %q", s.table, s.src)
	}
	return fmt.Sprintf("key template: %q", s.src)
}

// of names the table of example e of s, for a message.
func (s *keySpace) of(e example) string {
	if s.table != "" {
		return s.table
	}
	return e.id()
}

// orList is the other fix when s is the default template's tables: they are all tables Debezium sends.
func (s *keySpace) orList() string {
	if s.table == "" {
		return ", or list the cached tables in CACHE_TABLES"
	}
	return ""
}

const separatorHint = `a character that escaping always encodes (anything but letters, digits and "-._~%"), such as ":"`

// keySpaces lists the key spaces of a validated policy, ordered by their literal prefix.
func (p *Policy) keySpaces() []*keySpace {
	var spaces []*keySpace
	add := func(table string, t *keyTemplate, own bool) {
		db, name, _ := splitTable(table)
		keys := t.bind(db, name).lang()
		spaces = append(spaces, &keySpace{table: table, src: t.src, own: own, keys: keys, scan: keys.patternLang(),
			lit: keys.leadingLiteral(), hint: p.def.bind(db, name).prefix()})
	}
	if p.include == nil {
		for table, t := range p.custom {
			add(table, t, true)
		}
		keys := p.def.lang()
		for table := range p.custom {
			db, name, _ := splitTable(table)
			pair := [2]string{EscapeName(db), EscapeName(name)}
			if keys.names[0] >= 0 && keys.segs[keys.names[0]].ph == "table" {
				pair[0], pair[1] = pair[1], pair[0]
			}
			keys.excluded = append(keys.excluded, pair)
		}
		sort.Slice(keys.excluded, func(i, j int) bool {
			return keys.excluded[i][0]+"\x00"+keys.excluded[i][1] < keys.excluded[j][0]+"\x00"+keys.excluded[j][1]
		})
		spaces = append(spaces, &keySpace{src: p.def.src, keys: keys, scan: keys.patternLang(), lit: keys.leadingLiteral()})
	} else {
		for table := range p.include {
			if t, ok := p.custom[table]; ok {
				add(table, t, true)
			} else {
				add(table, p.def, false)
			}
		}
	}
	sort.Slice(spaces, func(i, j int) bool {
		if spaces[i].lit != spaces[j].lit {
			return spaces[i].lit < spaces[j].lit
		}
		return spaces[i].table < spaces[j].table
	})
	return spaces
}

// checkKeys applies the rules above to a policy whose settings are otherwise valid.
func (p *Policy) checkKeys() []error {
	spaces := p.keySpaces()
	meta := literalLang(MetaPrefix)
	var errs []error
	defaultChecked := false // the tables sharing the default template share its ambiguity
	for _, s := range spaces {
		switch {
		case s.own: // New checked its template already
		case s.table == "":
			if err := s.checkAmbiguous(); err != nil {
				errs = append(errs, err)
			} else if err := s.checkFamilyPatterns(); err != nil {
				errs = append(errs, err)
			}
		case !defaultChecked:
			defaultChecked = true
			if err := s.checkAmbiguous(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := s.checkReserved(meta); err != nil {
			errs = append(errs, err)
		}
	}
	for i, a := range spaces {
		for _, b := range spaces[i+1:] {
			if !strings.HasPrefix(b.lit, a.lit) {
				break // sorted: no later space's keys can start like a's
			}
			if err := checkPair(a, b); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// checkAmbiguous is rule 1.
func (s *keySpace) checkAmbiguous() error {
	key, r1, r2, found := ambiguous(s.keys)
	if !found {
		return nil
	}
	a, b := s.describe(r1, key), s.describe(r2, key)
	// The first placeholder read differently ends at two places: the text after it does not end it.
	t1, t2 := r1.texts(key), r2.texts(key)
	var first, next string
	for i, g := range s.keys.segs {
		if g.kind == segLit {
			continue
		}
		if first != "" {
			next = g.ph
			break
		}
		if t1[i] != t2[i] {
			first = g.ph
		}
	}
	what := "two rows"
	da, db := a.values(), b.values()
	if s.table == "" {
		if a.id() != b.id() {
			what = "two rows of different tables"
		}
		da, db = "table "+a.id()+" with "+da, "table "+b.id()+" with "+db
	}
	msg := fmt.Sprintf("%s gives %s the same key: %s and %s both give %q; separate {%s} from {%s} with %s",
		s.setting(), what, da, db, key, first, next, separatorHint)
	return &keyError{msg: msg, kind: "same key", key: key, a: a, b: b}
}

// ambiguous looks for a key of l with two different runs, preferring an example with no empty value.
func ambiguous(l *keyLang) (string, run, run, bool) {
	differ := func(p, q lstate) bool { return p != q }
	key, r1, r2, found := intersect(l, l, differ)
	if !found {
		return "", run{}, run{}, false
	}
	if k, s1, s2, ok := intersect(l.withNonEmptyValues(), l.withNonEmptyValues(), differ); ok {
		key, r1, r2 = k, s1, s2
	}
	return key, r1, r2, true
}

// checkFamilyPatterns is rule 3 among the tables the default template covers: the pattern of one
// matches no key of another (the runs read different names).
func (s *keySpace) checkFamilyPatterns() error {
	k := s.keys.firstKeySeg()
	other := func(p, q lstate) bool { return (p.seg < k || q.seg < k) && p != q }
	key, rp, rk, found := intersect(s.scan, s.keys, other)
	if !found {
		return nil
	}
	if k2, r1, r2, ok := intersect(s.scan, s.keys.withNonEmptyValues(), other); ok {
		key, rp, rk = k2, r1, r2
	}
	a, b := s.describe(rp, key), s.describe(rk, key)
	prefix := key[:len(key)-len(rp.texts(key)[len(s.scan.segs)-1])]
	msg := fmt.Sprintf("%s: the SCAN pattern %q of table %s (how a truncate finds its rows) matches key %q of table %s; end {db} and {table} with %s",
		s.setting(), globEscape(prefix)+"*", a.id(), key, b.id(), separatorHint)
	return &keyError{msg: msg, kind: "pattern", key: key, a: a, b: b}
}

// checkReserved is rule 3 against the cache's own keys.
func (s *keySpace) checkReserved(meta *keyLang) error {
	if !strings.HasPrefix(s.lit, MetaPrefix) && !strings.HasPrefix(MetaPrefix, s.lit) {
		return nil
	}
	key, r, _, found := intersect(s.keys.withNonEmptyValues(), meta, nil)
	if !found {
		key, r, _, found = intersect(s.keys, meta, nil)
	}
	if found {
		e := s.describe(r, key)
		from := e.values()
		if s.table == "" {
			from = "table " + e.id() + " with " + from
		}
		return &keyError{kind: "reserved", key: key, a: e, msg: fmt.Sprintf("%s: keys may not start with %q, which the cache reserves for its own keys (e.g. %s gives %q); start the template with other literal text%s",
			s.setting(), MetaPrefix, from, key, s.orList())}
	}
	if key, r, _, found := intersect(s.scan, meta, nil); found {
		e := s.describe(r, key)
		pattern := globEscape(key[:len(key)-len(r.texts(key)[len(s.scan.segs)-1])]) + "*"
		return &keyError{kind: "reserved pattern", key: key, a: e, msg: fmt.Sprintf("%s: its SCAN pattern %q (how a truncate finds the table's rows) also matches the cache's own keys (%q…); start the template with other literal text%s",
			s.setting(), pattern, MetaPrefix, s.orList())}
	}
	return nil
}

// checkPair is rules 2 and 3 between two key spaces.
func checkPair(a, b *keySpace) error {
	if key, ra, rb, found := intersect(a.keys, b.keys, nil); found {
		if k, r1, r2, ok := intersect(a.keys.withNonEmptyValues(), b.keys.withNonEmptyValues(), nil); ok {
			key, ra, rb = k, r1, r2
		}
		ea, eb := a.describe(ra, key), b.describe(rb, key)
		fix := a
		if b.own && !a.own {
			fix = b
		}
		var how string
		switch {
		case fix.own && fix.hint != "":
			how = fmt.Sprintf("start %s's template with literal text no other table's keys start with, such as %q", fix.table, fix.hint)
		case fix.own:
			how = fmt.Sprintf("start %s's template with literal text no other table's keys start with", fix.table)
		default:
			how = "separate {db}, {table} and the key in CACHE_KEY_TEMPLATE with " + separatorHint + `, as the default "{db}.{table}:{pk}" does`
		}
		msg := fmt.Sprintf("%s: %s and %s can produce the same key %q (%s with %s, %s with %s); %s",
			fix.setting(), a.name(), b.name(), key, a.of(ea), ea.values(), b.of(eb), eb.values(), how)
		return &keyError{msg: msg, kind: "same key", key: key, a: ea, b: eb}
	}
	if err := checkPattern(a, b); err != nil {
		return err
	}
	return checkPattern(b, a)
}

// checkPattern is rule 3: a's SCAN pattern matches none of b's keys.
func checkPattern(a, b *keySpace) error {
	key, rp, rk, found := intersect(a.scan, b.keys, nil)
	if !found {
		return nil
	}
	if k, r1, r2, ok := intersect(a.scan, b.keys.withNonEmptyValues(), nil); ok {
		key, rp, rk = k, r1, r2
	}
	ea, eb := a.describe(rp, key), b.describe(rk, key)
	pattern := globEscape(key[:len(key)-len(rp.texts(key)[len(a.scan.segs)-1])]) + "*"
	fix := a
	if b.own && !a.own {
		fix = b
	}
	how := "start the template with literal text no other table's keys start with"
	switch {
	case fix.own && fix.hint != "":
		how += fmt.Sprintf(", such as %q", fix.hint)
	case !fix.own:
		how = "separate {db}, {table} and the key in CACHE_KEY_TEMPLATE with " + separatorHint + `, as the default "{db}.{table}:{pk}" does`
	}
	if a.table == "" || b.table == "" {
		how += ", or list the cached tables in CACHE_TABLES"
	}
	var msg string
	if fix == a {
		msg = fmt.Sprintf("%s: its SCAN pattern %q (how a truncate finds the table's rows) also matches keys of %s, e.g. %q of %s with %s; %s",
			a.setting(), pattern, b.name(), key, b.of(eb), eb.values(), how)
	} else {
		msg = fmt.Sprintf("%s: its keys match the SCAN pattern %q of %s (how a truncate finds that table's rows), e.g. %q from %s; %s",
			b.setting(), pattern, a.of(ea), key, eb.values(), how)
	}
	return &keyError{msg: msg, kind: "pattern", key: key, a: ea, b: eb}
}
