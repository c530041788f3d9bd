package debezium

import "strings"

// TableName is a table named in a DDL statement; DB is "" when the statement did not qualify it.
type TableName struct {
	DB, Table string
}

// Rename is one table renamed by a statement.
type Rename struct {
	From, To TableName
}

// Statement is what a DDL statement does to tables beyond what a schema change's tableChanges say:
// Debezium reports a rename only under the new name, and a partition statement as a plain ALTER.
type Statement struct {
	// DropDatabase is the database a DROP DATABASE (or DROP SCHEMA) statement drops, "" otherwise.
	DropDatabase string
	// Renames are the pairs of RENAME TABLE a TO b[, c TO d] and of ALTER TABLE a … RENAME [TO|AS] b.
	Renames []Rename
	// Partition is true for an ALTER TABLE with a partition clause (DROP, TRUNCATE, EXCHANGE,
	// REORGANIZE, … PARTITION), which can remove rows without row events.
	Partition bool
	// Exchanged are the tables an ALTER TABLE … EXCHANGE PARTITION p WITH TABLE x swaps rows with.
	Exchanged []TableName
}

// ReadDDL reads the parts of a MySQL DDL statement that say which tables lose rows without row events.
// It never fails: a statement it does not understand says nothing.
func ReadDDL(ddl string) Statement {
	toks := tokenize(ddl)
	var st Statement
	word := func(i int, w string) bool { return i < len(toks) && toks[i].keyword(w) }
	switch {
	case word(0, "DROP") && (word(1, "DATABASE") || word(1, "SCHEMA")):
		i := 2
		if word(i, "IF") && word(i+1, "EXISTS") {
			i += 2
		}
		if i < len(toks) && toks[i].ident() {
			st.DropDatabase = toks[i].text
		}
	case word(0, "RENAME") && (word(1, "TABLE") || word(1, "TABLES")):
		for i := 2; i < len(toks); {
			from, j, ok := tableName(toks, i)
			if !ok || !word(j, "TO") {
				break
			}
			to, k, ok := tableName(toks, j+1)
			if !ok {
				break
			}
			st.Renames = append(st.Renames, Rename{From: from, To: to})
			if k >= len(toks) || toks[k].text != "," {
				break
			}
			i = k + 1
		}
	case word(0, "ALTER"):
		i := 1
		for word(i, "ONLINE") || word(i, "IGNORE") {
			i++
		}
		if !word(i, "TABLE") {
			break
		}
		i++
		if word(i, "IF") && word(i+1, "EXISTS") {
			i += 2
		}
		table, j, ok := tableName(toks, i)
		if !ok {
			break
		}
		depth := 0
		for ; j < len(toks); j++ {
			switch t := toks[j]; {
			case t.text == "(":
				depth++
			case t.text == ")":
				depth--
			case t.keyword("PARTITION"), t.keyword("PARTITIONS"):
				st.Partition = true
			case depth == 0 && t.keyword("RENAME"):
				k := j + 1
				if word(k, "TO") || word(k, "AS") {
					k++
				} else if word(k, "COLUMN") || word(k, "INDEX") || word(k, "KEY") || word(k, "CONSTRAINT") {
					continue
				}
				if to, _, ok := tableName(toks, k); ok {
					st.Renames = append(st.Renames, Rename{From: table, To: to})
				}
			case depth == 0 && t.keyword("WITH") && word(j+1, "TABLE"):
				if x, _, ok := tableName(toks, j+2); ok {
					st.Exchanged = append(st.Exchanged, x)
				}
			}
		}
	}
	return st
}

// tableName reads [db.]table at toks[i] and returns it with the index after it.
func tableName(toks []token, i int) (TableName, int, bool) {
	if i >= len(toks) || !toks[i].ident() {
		return TableName{}, i, false
	}
	if i+2 < len(toks) && toks[i+1].text == "." && !toks[i+1].quoted && toks[i+2].ident() {
		return TableName{DB: toks[i].text, Table: toks[i+2].text}, i + 3, true
	}
	return TableName{Table: toks[i].text}, i + 1, true
}

type token struct {
	text   string
	word   bool // a bare word or a backquoted identifier
	quoted bool // backquoted (an identifier, never a keyword) or a string literal
}

func (t token) ident() bool { return t.word && t.text != "" }

// keyword reports whether t is the bare (not backquoted) word w.
func (t token) keyword(w string) bool { return t.word && !t.quoted && strings.EqualFold(t.text, w) }

// tokenize splits a statement into bare words, backquoted identifiers (their quotes removed and
// doubled backquotes undone), string literals and single punctuation characters, skipping comments.
func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#' || c == '-' && strings.HasPrefix(s[i:], "-- "):
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(s)
			}
		case c == '`' || c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for j < len(s) {
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				if s[j] == '\\' && c != '`' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, token{text: b.String(), word: c == '`', quoted: true})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, token{text: s[i:j], word: true})
			i = j
		default:
			toks = append(toks, token{text: s[i : i+1]})
			i++
		}
	}
	return toks
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}
