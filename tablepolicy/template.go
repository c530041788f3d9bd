package tablepolicy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// DefaultKeyTemplate is the key of a row unless configured otherwise: the database, the table and the
// primary-key values (in key order, joined with ":"), each escaped.
const DefaultKeyTemplate = "{db}.{table}:{pk}"

// segment of a key template: literal text, or a placeholder.
type segment struct {
	lit   string
	ph    string // "db", "table", "pk" or a key column name; "" for literal text
	isLit bool
}

type keyTemplate struct {
	src  string
	segs []segment
	cols []string // key columns named in the template, if it does not use {pk}
}

func parseTemplate(src string) (*keyTemplate, error) {
	t := &keyTemplate{src: src}
	rest := src
	usesPK := false
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		closeB := strings.IndexByte(rest, '}')
		if open < 0 {
			if closeB >= 0 {
				return nil, fmt.Errorf("key template %q: unmatched \"}\"", src)
			}
			t.segs = append(t.segs, segment{lit: rest, isLit: true})
			break
		}
		if closeB >= 0 && closeB < open {
			return nil, fmt.Errorf("key template %q: unmatched \"}\"", src)
		}
		if open > 0 {
			t.segs = append(t.segs, segment{lit: rest[:open], isLit: true})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("key template %q: unclosed \"{\"", src)
		}
		name := rest[open+1 : open+end]
		if name == "" || strings.ContainsAny(name, "{") {
			return nil, fmt.Errorf("key template %q: bad placeholder %q", src, rest[open:open+end+1])
		}
		// Each placeholder at most once: a repeated one would make the key's parts depend on each
		// other, which the collision check (collide.go) does not model, and adds nothing to a key.
		for _, s := range t.segs {
			if s.ph == name {
				return nil, fmt.Errorf("key template %q: {%s} appears twice", src, name)
			}
		}
		switch name {
		case "pk":
			usesPK = true
		case "db", "table":
		default:
			t.cols = append(t.cols, name)
		}
		t.segs = append(t.segs, segment{ph: name})
		rest = rest[open+end+1:]
	}
	if !usesPK && len(t.cols) == 0 {
		return nil, fmt.Errorf("key template %q: it must contain {pk} or the primary-key columns as {column}, or every row of a table would share one key", src)
	}
	if usesPK && len(t.cols) > 0 {
		return nil, fmt.Errorf("key template %q: use either {pk} or the key columns by name, not both", src)
	}
	return t, nil
}

// bind substitutes {db} and {table}, giving the template of one table.
func (t *keyTemplate) bind(db, table string) *keyTemplate {
	b := &keyTemplate{src: t.src, cols: t.cols}
	for _, s := range t.segs {
		switch {
		case s.isLit:
			b.segs = appendLit(b.segs, s.lit)
		case s.ph == "db":
			b.segs = appendLit(b.segs, EscapeName(db))
		case s.ph == "table":
			b.segs = appendLit(b.segs, EscapeName(table))
		default:
			b.segs = append(b.segs, s)
		}
	}
	return b
}

func appendLit(segs []segment, lit string) []segment {
	if n := len(segs); n > 0 && segs[n-1].isLit {
		segs[n-1].lit += lit
		return segs
	}
	return append(segs, segment{lit: lit, isLit: true})
}

// lang is the language of the template's keys (keylang.go). Bound, it is one table's; unbound, {db} and
// {table} stand for any names.
func (t *keyTemplate) lang() *keyLang {
	l := &keyLang{names: [2]int{-1, -1}}
	n := 0
	for _, s := range t.segs {
		switch {
		case s.isLit:
			l.segs = append(l.segs, langSeg{kind: segLit, lit: s.lit})
		case s.ph == "db" || s.ph == "table":
			l.names[n] = len(l.segs)
			n++
			l.segs = append(l.segs, langSeg{kind: segName, ph: s.ph})
		case s.ph == "pk":
			l.segs = append(l.segs, langSeg{kind: segPK, ph: s.ph})
		default:
			l.segs = append(l.segs, langSeg{kind: segValue, ph: s.ph})
		}
	}
	return l
}

// prefix is the literal text before the first key placeholder of a bound template.
func (t *keyTemplate) prefix() string {
	if len(t.segs) > 0 && t.segs[0].isLit {
		return t.segs[0].lit
	}
	return ""
}

// render builds the key of the row whose primary key is pk (a bound template).
func (t *keyTemplate) render(pk debezium.Row) (string, error) {
	if len(t.cols) > 0 {
		if len(pk) != len(t.cols) {
			return "", fmt.Errorf("key template %q names %d key columns but the table's key has %d (%s)", t.src, len(t.cols), len(pk), names(pk))
		}
		for _, c := range t.cols {
			if _, ok := pk.Get(c); !ok {
				return "", fmt.Errorf("key template %q names column %q, which is not in the table's key (%s)", t.src, c, names(pk))
			}
		}
	}
	var b strings.Builder
	for _, s := range t.segs {
		switch {
		case s.isLit:
			b.WriteString(s.lit)
		case s.ph == "pk":
			for i, c := range pk {
				if i > 0 {
					b.WriteByte(':')
				}
				v, err := KeyValue(c.Value)
				if err != nil {
					return "", fmt.Errorf("key column %q: %w", c.Name, err)
				}
				b.WriteString(EscapeValue(v))
			}
		default:
			raw, _ := pk.Get(s.ph)
			v, err := KeyValue(raw)
			if err != nil {
				return "", fmt.Errorf("key column %q: %w", s.ph, err)
			}
			b.WriteString(EscapeValue(v))
		}
	}
	return b.String(), nil
}

// KeyValue is the text of one primary-key value before escaping: a string as it is, a number as its
// JSON literal (integers in plain decimal), a boolean as true or false.
func KeyValue(raw json.RawMessage) (string, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "", fmt.Errorf("empty value")
	}
	switch c := s[0]; {
	case c == '"':
		var v string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return "", fmt.Errorf("bad string %s: %w", s, err)
		}
		return v, nil
	case c == '-' || ('0' <= c && c <= '9'):
		if _, err := strconv.ParseFloat(s, 64); err != nil && !strings.Contains(err.Error(), "range") {
			return "", fmt.Errorf("bad number %s", s)
		}
		return s, nil
	case s == "true" || s == "false":
		return s, nil
	}
	return "", fmt.Errorf("a key value must be a string, number or boolean, got %.40s", s)
}

func names(r debezium.Row) string {
	n := make([]string, len(r))
	for i, c := range r {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}
