// Package jsonscan walks JSON objects without decoding them: it finds where each member's name and
// value begin and end, and hands out the values as sub-slices of the input, so the hot path can pick
// the few fields it needs from a push body or a change event without encoding/json's reflection and
// copies.
//
// It finds boundaries; it does not validate. Callers check the whole input once with json.Valid, which
// costs one pass, instead of the two or three that json.Unmarshal into RawMessage fields costs. On
// malformed input every function returns an error or a wrong split, never panics.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// EachMember calls fn with the name and the raw value of every member of the JSON object in raw, in
// order. A value is a sub-slice of raw with its capacity clipped, so appending to it never writes
// into raw. fn's error stops the walk and is returned as is.
func EachMember(raw []byte, fn func(name string, value []byte) error) error {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return errors.New("want a JSON object")
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			end, err := endOfString(raw, i)
			if err != nil {
				return err
			}
			name, err := unquote(raw[i:end])
			if err != nil {
				return err
			}
			i = skipSpace(raw, end)
			if i >= len(raw) || raw[i] != ':' {
				return fmt.Errorf("member %q: want ':'", name)
			}
			i = skipSpace(raw, i+1)
			vend, err := endOfValue(raw, i)
			if err != nil {
				return fmt.Errorf("member %q: %w", name, err)
			}
			if err := fn(name, raw[i:vend:vend]); err != nil {
				return err
			}
			i = skipSpace(raw, vend)
			if i >= len(raw) {
				return errors.New("unterminated object")
			}
			if raw[i] == '}' {
				i++
				break
			}
			if raw[i] != ',' {
				return fmt.Errorf("after member %q: want ',' or '}'", name)
			}
			i = skipSpace(raw, i+1)
		}
	}
	if skipSpace(raw, i) != len(raw) {
		return errors.New("trailing data after the object")
	}
	return nil
}

// IsNull reports whether the value is the JSON null.
func IsNull(v []byte) bool { return string(bytes.TrimSpace(v)) == "null" }

// String returns the JSON string in v, unescaped.
func String(v []byte) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", fmt.Errorf("want a string, got %s", truncate(v))
	}
	return unquote(v)
}

// OptString reads a member that may be absent (v nil) or null, or else must be a string: what
// json.Unmarshal into a *string accepts. present is false for absent and null.
func OptString(v []byte) (s string, present bool, err error) {
	if v == nil || IsNull(v) {
		return "", false, nil
	}
	if s, err = String(v); err != nil {
		return "", false, err
	}
	return s, true, nil
}

// OptInt64 is OptString for an integer member (json.Unmarshal into an *int64).
func OptInt64(v []byte) (n int64, present bool, err error) {
	if v == nil || IsNull(v) {
		return 0, false, nil
	}
	if n, err = Int64(v); err != nil {
		return 0, false, err
	}
	return n, true, nil
}

// RawString returns the content of the JSON string in v when it has no escapes (ok true), without
// copying: the common case for base64 and identifiers. ok is false when v needs String.
func RawString(v []byte) (s []byte, ok bool) {
	v = bytes.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return nil, false
	}
	return v[1 : len(v)-1], true
}

// Int64 returns the JSON number in v, which must be an integer that fits in an int64 (what
// json.Unmarshal into an int64 accepts).
func Int64(v []byte) (int64, error) {
	v = bytes.TrimSpace(v)
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want an integer, got %s", truncate(v))
	}
	return n, nil
}

func truncate(v []byte) string {
	if len(v) > 40 {
		return string(v[:40]) + "…"
	}
	return string(v)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index just after the JSON string starting at b[i]. It jumps from quote to
// quote with bytes.IndexByte (vectorised) rather than stepping through the string: most of a push body
// is one long base64 string, walked twice (as part of "message", then as "data").
func endOfString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errors.New("want a string")
	}
	for j := i + 1; j < len(b); {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			break
		}
		q := j + k
		// The quote ends the string unless an odd number of backslashes escapes it.
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
	return 0, errors.New("unterminated string")
}

// endOfValue returns the index just after the JSON value starting at b[i].
func endOfValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := endOfString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated value")
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i {
		return 0, errors.New("missing value")
	}
	return j, nil
}

// unquote returns the string a quoted JSON string (quotes included) stands for.
func unquote(q []byte) (string, error) {
	if bytes.IndexByte(q, '\\') < 0 && utf8.Valid(q) {
		return string(q[1 : len(q)-1]), nil
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", fmt.Errorf("bad string %s: %w", truncate(q), err)
	}
	return s, nil
}
