// Package rowcache is the Redis side of cloudsql-cache: the format of a cached row (value and version in
// one string key), the version order, and the Lua script that applies a change only if it is newer than
// what is stored.
//
// A cached row is one Redis string, readable with a single GET by any client:
//
//	<version> SP <row JSON>     a live row, e.g. "0.0.3.154.0 {\"id\":1004,\"name\":\"Anne\"}"
//	<version>                  a tombstone: the row was deleted (or truncated) at that version
//
// <version> is five non-negative decimal integers joined by dots (see Version). A reader splits the
// value at the first space; a value without a space is a tombstone and means "not found".
package rowcache

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version totally orders the changes of one row. Components compare left to right:
//
//   - Epoch is raised by the operator when binlog coordinates restart (database restored or replaced),
//     so every change from the new source wins over everything cached from the old one.
//   - Column is always 0. It held the value of a per-table version column, a feature removed because
//     no column a database writes orders commits (an ON UPDATE CURRENT_TIMESTAMP is the statement's
//     start, not its commit); it stays in the format so that stored values need no migration.
//   - File, Pos and Row are the binlog coordinates of the change: the binlog file's sequence number,
//     the event's byte position in it, and the change's number within it (Debezium's transaction
//     total_order when the event carries transaction metadata, else the row's index in its rows
//     event). They are monotonic within one server's binlog.
type Version struct {
	Epoch, Column, File, Pos, Row uint64
}

// MaxVersionLen bounds the encoded length of a Version: five 20-digit numbers and four dots.
const MaxVersionLen = 5*20 + 4

// String encodes v in the form stored in Redis.
func (v Version) String() string { return string(v.AppendTo(nil)) }

// AppendTo appends the encoded form of v to b.
func (v Version) AppendTo(b []byte) []byte {
	b = strconv.AppendUint(b, v.Epoch, 10)
	for _, n := range [...]uint64{v.Column, v.File, v.Pos, v.Row} {
		b = append(b, '.')
		b = strconv.AppendUint(b, n, 10)
	}
	return b
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	a := [...]uint64{v.Epoch, v.Column, v.File, v.Pos, v.Row}
	b := [...]uint64{w.Epoch, w.Column, w.File, w.Pos, w.Row}
	for i := range a {
		switch {
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
	return 0
}

// ParseVersion decodes the stored form of a Version.
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 5 {
		return Version{}, fmt.Errorf("rowcache: version %q: want 5 dot-separated numbers, got %d", s, len(parts))
	}
	var n [5]uint64
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') {
			return Version{}, fmt.Errorf("rowcache: version %q: component %d is not a canonical decimal number", s, i)
		}
		x, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Version{}, fmt.Errorf("rowcache: version %q: %w", s, err)
		}
		n[i] = x
	}
	return Version{Epoch: n[0], Column: n[1], File: n[2], Pos: n[3], Row: n[4]}, nil
}

// Entry is a decoded cache value.
type Entry struct {
	Version Version
	// Row is the row's JSON object; nil for a tombstone.
	Row []byte
}

// Deleted reports whether the entry is a tombstone.
func (e Entry) Deleted() bool { return e.Row == nil }

// ErrMalformed is returned for a value that is not in the rowcache format (for example a key written
// by another application).
var ErrMalformed = errors.New("rowcache: value is not in the cloudsql-cache format")

// Decode parses a stored value: exactly what the script takes for one of its own (see apply.lua's
// owned_version), a version alone or a version, a space and a JSON object.
func Decode(value []byte) (Entry, error) {
	head, row := value, []byte(nil)
	for i, c := range value {
		if c == ' ' {
			head, row = value[:i], value[i+1:]
			if len(row) == 0 || row[0] != '{' {
				return Entry{}, fmt.Errorf("%w: no JSON object after the version", ErrMalformed)
			}
			break
		}
	}
	if len(head) > MaxVersionLen {
		return Entry{}, fmt.Errorf("%w: version too long", ErrMalformed)
	}
	v, err := ParseVersion(string(head))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return Entry{Version: v, Row: row}, nil
}

// EncodeRow returns the stored form of a live row.
func EncodeRow(v Version, row []byte) []byte {
	b := make([]byte, 0, MaxVersionLen+1+len(row))
	b = v.AppendTo(b)
	b = append(b, ' ')
	return append(b, row...)
}
