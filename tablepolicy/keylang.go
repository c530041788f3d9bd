package tablepolicy

import "strings"

// This file models the keys a template can produce as a regular language over bytes, recognised by a
// small NFA, so that the policy can decide exactly whether two key spaces share a key (an emptiness test
// on the product of two NFAs) and whether one template gives two rows the same key (two different
// accepting runs on one key), and so that a table can recognise its own keys (Table.OwnsKey).
//
// The NFA of a template walks its segments in order. A literal matches itself. A placeholder is a DFA
// of what escaping can produce: EscapeValue of a valid UTF-8 string for a key value (KeyValue only ever
// returns valid UTF-8: encoding/json replaces invalid bytes), EscapeName of a non-empty string for a
// database or table name. Both DFAs accept exactly the canonical forms: a byte escaping keeps, or "%"
// and two uppercase hex digits of a byte it does not keep; a value's decoded bytes must also be valid
// UTF-8. {pk} is values joined by ":", which no value contains. The only choice the NFA makes is where
// each placeholder ends, so a run of the NFA on a key is exactly one way of reading the key as
// placeholder texts.

type segKind uint8

const (
	segLit   segKind = iota // literal bytes
	segValue                // one key value, escaped
	segPK                   // key values joined by ":"
	segName                 // a database or table name, escaped, non-empty
	segAny                  // any bytes: the rest of a SCAN pattern, or of the reserved prefix
)

type langSeg struct {
	kind segKind
	lit  string // the bytes of a segLit
	ph   string // the placeholder, for messages: "pk", "db", "table" or a column name
}

// keyLang is a set of keys: a sequence of segments, and optionally tables left out of it.
type keyLang struct {
	segs []langSeg
	// names are the indices in segs of the name segments, in template order (the default template's
	// {db} and {table}, unbound); -1 when absent.
	names [2]int
	// excluded are the escaped names, in the order of names, of the tables whose keys are not in the
	// set: the tables with a template of their own, when the default template covers every other table.
	excluded [][2]string
	// nonEmpty requires every key value to be non-empty; it only makes examples in messages readable.
	nonEmpty bool
}

// literalLang is the set of keys starting with prefix (any bytes after it), the language of a SCAN
// pattern "<prefix>*".
func literalLang(prefix string) *keyLang {
	return &keyLang{segs: []langSeg{{kind: segLit, lit: prefix}, {kind: segAny}}, names: [2]int{-1, -1}}
}

// leadingLiteral is the literal text every key of l starts with.
func (l *keyLang) leadingLiteral() string {
	if len(l.segs) > 0 && l.segs[0].kind == segLit {
		return l.segs[0].lit
	}
	return ""
}

// patternLang is the set of keys matched by the SCAN patterns of l's keys: its segments up to the first
// key placeholder, then any bytes. The names and exclusions stay, so for the default template it is
// the union of the patterns of the tables it covers.
func (l *keyLang) patternLang() *keyLang {
	p := &keyLang{names: l.names, excluded: l.excluded}
	for _, s := range l.segs {
		if s.kind == segValue || s.kind == segPK {
			break
		}
		p.segs = append(p.segs, s)
	}
	p.segs = append(p.segs, langSeg{kind: segAny})
	return p
}

// firstKeySeg is the index of the first key placeholder (the number of segments a pattern keeps).
func (l *keyLang) firstKeySeg() int {
	for i, s := range l.segs {
		if s.kind == segValue || s.kind == segPK {
			return i
		}
	}
	return len(l.segs)
}

func (l *keyLang) withNonEmptyValues() *keyLang {
	c := *l
	c.nonEmpty = true
	return &c
}

// UTF-8 decoder states (RFC 3629, section 4), over the bytes a value's escapes decode to.
const (
	u8Accept uint8 = iota // between characters
	u8Need1               // one continuation byte 80–BF left
	u8Need2               // two left
	u8Need3               // three left
	u8E0                  // after E0: A0–BF, then one
	u8ED                  // after ED: 80–9F (no surrogates), then one
	u8F0                  // after F0: 90–BF, then two
	u8F4                  // after F4: 80–8F (≤ U+10FFFF), then two
	u8Reject
)

func utf8Step(s uint8, b byte) uint8 {
	in := func(lo, hi byte) bool { return lo <= b && b <= hi }
	switch s {
	case u8Accept:
		switch {
		case b < 0x80:
			return u8Accept
		case in(0xC2, 0xDF):
			return u8Need1
		case b == 0xE0:
			return u8E0
		case b == 0xED:
			return u8ED
		case in(0xE1, 0xEF):
			return u8Need2
		case b == 0xF0:
			return u8F0
		case in(0xF1, 0xF3):
			return u8Need3
		case b == 0xF4:
			return u8F4
		}
	case u8Need1, u8Need2, u8Need3:
		if in(0x80, 0xBF) {
			return s - 1
		}
	case u8E0:
		if in(0xA0, 0xBF) {
			return u8Need1
		}
	case u8ED:
		if in(0x80, 0x9F) {
			return u8Need1
		}
	case u8F0:
		if in(0x90, 0xBF) {
			return u8Need2
		}
	case u8F4:
		if in(0x80, 0x8F) {
			return u8Need2
		}
	}
	return u8Reject
}

func hexUpper(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// escState is the state of a placeholder's DFA.
type escState struct {
	utf8 uint8 // UTF-8 state of the decoded bytes (values only)
	pend uint8 // 0: between tokens; 1: after "%"; 2: after "%" and one hex digit
	hi   uint8 // that digit
	some bool  // a byte was read since the placeholder (or, in {pk}, the value) began
}

func escStep(e escState, b byte, name bool) (escState, bool) {
	switch e.pend {
	case 0:
		if keep(b, name) {
			// Kept bytes are ASCII, which cannot continue a multi-byte character.
			if e.utf8 != u8Accept {
				return e, false
			}
			e.some = true
			return e, true
		}
		if b == '%' {
			e.pend, e.some = 1, true
			return e, true
		}
	case 1:
		if h, ok := hexUpper(b); ok {
			e.pend, e.hi = 2, h
			return e, true
		}
	case 2:
		if h, ok := hexUpper(b); ok {
			x := e.hi<<4 | h
			if keep(x, name) {
				return e, false // escaping never encodes a byte it keeps
			}
			if !name {
				if e.utf8 = utf8Step(e.utf8, x); e.utf8 == u8Reject {
					return e, false
				}
			}
			e.pend, e.hi = 0, 0
			return e, true
		}
	}
	return e, false
}

// track follows the names read so far while they may still be those of an excluded table.
type track struct {
	phase uint8  // trackFree: no excluded table is possible any more; trackFirst, trackSecond: reading that name
	first string // the first name, once read
	cur   string // the name being read
}

const (
	trackFree uint8 = iota
	trackFirst
	trackSecond
)

// lstate is a state of the NFA: in segment seg, pos bytes into its literal, or in esc of its DFA.
type lstate struct {
	seg int
	pos int
	esc escState
	tr  track
}

func (l *keyLang) start() lstate {
	s := lstate{}
	if len(l.excluded) > 0 {
		s.tr.phase = trackFirst
	}
	return s
}

// complete reports whether segment s.seg may end here.
func (l *keyLang) complete(s lstate) bool {
	g := l.segs[s.seg]
	switch g.kind {
	case segLit:
		return s.pos == len(g.lit)
	case segAny:
		return true
	case segName:
		return s.esc.pend == 0 && s.esc.some
	}
	return s.esc.pend == 0 && s.esc.utf8 == u8Accept && (s.esc.some || !l.nonEmpty)
}

// leave is the tracker after segment s.seg ends, and false if that makes the key an excluded table's.
func (l *keyLang) leave(s lstate) (track, bool) {
	t := s.tr
	switch {
	case t.phase == trackFirst && s.seg == l.names[0]:
		for _, e := range l.excluded {
			if e[0] == t.cur {
				return track{phase: trackSecond, first: t.cur}, true
			}
		}
		return track{}, true
	case t.phase == trackSecond && s.seg == l.names[1]:
		for _, e := range l.excluded {
			if e[0] == t.first && e[1] == t.cur {
				return t, false
			}
		}
		return track{}, true
	}
	return t, true
}

// next is the state reached from s by ending its segment, and false if it cannot end here.
func (l *keyLang) next(s lstate) (lstate, bool) {
	if s.seg == len(l.segs) || !l.complete(s) {
		return s, false
	}
	tr, ok := l.leave(s)
	return lstate{seg: s.seg + 1, tr: tr}, ok
}

// byteStep reads b in the segment of s (deterministic).
func (l *keyLang) byteStep(s lstate, b byte) (lstate, bool) {
	if s.seg == len(l.segs) {
		return s, false
	}
	g := l.segs[s.seg]
	switch g.kind {
	case segLit:
		if s.pos < len(g.lit) && g.lit[s.pos] == b {
			s.pos++
			return s, true
		}
		return s, false
	case segAny:
		return s, true
	case segPK:
		if b == ':' && s.esc.pend == 0 && s.esc.utf8 == u8Accept && (s.esc.some || !l.nonEmpty) {
			s.esc = escState{}
			return s, true
		}
	}
	var ok bool
	if s.esc, ok = escStep(s.esc, b, g.kind == segName); !ok {
		return s, false
	}
	if g.kind == segName {
		s.tr = l.trackName(s.seg, s.tr, b)
	}
	return s, true
}

func (l *keyLang) trackName(seg int, t track, b byte) track {
	var want func(e [2]string) string
	switch {
	case t.phase == trackFirst && seg == l.names[0]:
		want = func(e [2]string) string { return e[0] }
	case t.phase == trackSecond && seg == l.names[1]:
		want = func(e [2]string) string {
			if e[0] != t.first {
				return ""
			}
			return e[1]
		}
	default:
		return t
	}
	t.cur += string(b)
	for _, e := range l.excluded {
		if strings.HasPrefix(want(e), t.cur) {
			return t
		}
	}
	return track{}
}

// step appends to out the states reached from p by reading b, after ending none, one or more segments.
// Each comes from a different segment, so each is a different run.
func (l *keyLang) step(p lstate, b byte, out []lstate) []lstate {
	for ok := true; ok; p, ok = l.next(p) {
		if r, ok := l.byteStep(p, b); ok {
			out = append(out, r)
		}
	}
	return out
}

// accepts reports whether a key may end in state p.
func (l *keyLang) accepts(p lstate) bool {
	for ok := true; ok; p, ok = l.next(p) {
		if p.seg == len(l.segs) {
			return true
		}
	}
	return false
}

// match reports whether key is in l.
func (l *keyLang) match(key string) bool {
	cur := []lstate{l.start()}
	var next []lstate
	for i := 0; i < len(key); i++ {
		next = next[:0]
		for _, p := range cur {
			next = l.step(p, key[i], next)
		}
		// Runs that meet are one run from here on: keep one of them.
		n := 0
	dedupe:
		for _, s := range next {
			for _, t := range next[:n] {
				if s == t {
					continue dedupe
				}
			}
			next[n] = s
			n++
		}
		next = next[:n]
		if len(next) == 0 {
			return false
		}
		cur, next = next, cur
	}
	for _, p := range cur {
		if l.accepts(p) {
			return true
		}
	}
	return false
}

// byteClasses returns one byte of each class of bytes the languages cannot tell apart, letters first
// (so examples in messages read well). A byte of a literal or an excluded name, "%", ":" and the hex
// digits are classes of their own; the others differ only by whether escaping keeps them in a value
// and in a name.
func byteClasses(langs ...*keyLang) []byte {
	var own [256]bool
	for _, c := range []byte("%:0123456789ABCDEF") {
		own[c] = true
	}
	for _, l := range langs {
		for _, s := range l.segs {
			for i := 0; i < len(s.lit); i++ {
				own[s.lit[i]] = true
			}
		}
		for _, e := range l.excluded {
			for _, n := range e {
				for i := 0; i < len(n); i++ {
					own[n[i]] = true
				}
			}
		}
	}
	order := []byte("abcdefghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ3A2F0145678BCDE9-_~.:%/#@!")
	for b := 0; b < 256; b++ {
		order = append(order, byte(b))
	}
	var seen [256]bool
	var classSeen [4]bool
	var reps []byte
	for _, b := range order {
		if seen[b] {
			continue
		}
		seen[b] = true
		if own[b] {
			reps = append(reps, b)
			continue
		}
		c := 0
		if keep(b, false) {
			c |= 1
		}
		if keep(b, true) {
			c |= 2
		}
		if !classSeen[c] {
			classSeen[c] = true
			reps = append(reps, b)
		}
	}
	return reps
}

// run is one way of reading key in a language: runs[i] is the state after key[i].
type run struct {
	lang   *keyLang
	states []lstate
}

// texts returns each segment's part of key in this run, "" for segments that read nothing.
func (r run) texts(key string) []string {
	t := make([]string, len(r.lang.segs))
	for i, s := range r.states {
		t[s.seg] += string(key[i])
	}
	return t
}

type pairState struct {
	p, q lstate
	d    bool // the runs have diverged (see intersect)
}

// intersect looks for a shortest key in both x and y. With diverge, it looks only for keys with two
// runs (one in x, one in y) for which diverge held in some state pair along the way: with x == y and
// diverge "the states differ", a key with two different runs, i.e. two readings of one key.
func intersect(x, y *keyLang, diverge func(p, q lstate) bool) (key string, rx, ry run, found bool) {
	type edge struct {
		prev pairState
		b    byte
	}
	classes := byteClasses(x, y)
	start := pairState{p: x.start(), q: y.start()}
	parent := map[pairState]edge{start: {}}
	queue := []pairState{start}
	var ps, qs []lstate
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if (diverge == nil || cur.d) && x.accepts(cur.p) && y.accepts(cur.q) {
			var bytes []byte
			rx, ry = run{lang: x}, run{lang: y}
			for s := cur; s != start; s = parent[s].prev {
				bytes = append(bytes, parent[s].b)
				rx.states = append(rx.states, s.p)
				ry.states = append(ry.states, s.q)
			}
			for i, j := 0, len(bytes)-1; i < j; i, j = i+1, j-1 {
				bytes[i], bytes[j] = bytes[j], bytes[i]
				rx.states[i], rx.states[j] = rx.states[j], rx.states[i]
				ry.states[i], ry.states[j] = ry.states[j], ry.states[i]
			}
			return string(bytes), rx, ry, true
		}
		for _, b := range classes {
			ps = x.step(cur.p, b, ps[:0])
			if len(ps) == 0 {
				continue
			}
			qs = y.step(cur.q, b, qs[:0])
			for _, p := range ps {
				for _, q := range qs {
					n := pairState{p: p, q: q, d: cur.d || (diverge != nil && diverge(p, q))}
					if _, seen := parent[n]; !seen {
						parent[n] = edge{cur, b}
						queue = append(queue, n)
					}
				}
			}
		}
	}
	return "", run{}, run{}, false
}
