package tablepolicy

import "strings"

// EscapeValue escapes one primary-key value for use in a key: ASCII letters, digits and "-._~" stay as
// they are; every other byte of the value's UTF-8 form becomes %XX (uppercase hex). This is RFC 3986
// percent-encoding of everything but the unreserved characters (Python's urllib.parse.quote(v, safe=""),
// JavaScript's encodeURIComponent plus "!'()*"), so other languages can build the same keys. Because
// ":" and "%" are always escaped, the values of a composite key joined with ":" can never be confused.
func EscapeValue(s string) string { return escape(s, false) }

// EscapeName escapes a database or table name: as EscapeValue, and "." is escaped too, so that
// "{db}.{table}" identifies one table whatever the names contain.
func EscapeName(s string) string { return escape(s, true) }

func escape(s string, name bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep(s[i], name) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c, name) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}

func keep(c byte, name bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '~':
		return true
	case c == '.':
		return !name
	}
	return false
}

// globEscape escapes the characters that are special in a Redis SCAN MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
