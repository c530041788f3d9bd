package readcache

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

// keyArg is one primary-key value bound as its column's type. MySQL's "=" coerces types and applies
// the column's collation, so the caller's value is converted here first: an integer column gets an
// integer (a string "1abc" is refused rather than read as 1), a string column gets a string (an
// integer 1 must not match '01' by numeric comparison), and a decimal column gets the decimal as text.
type keyArg struct {
	arg any // the query argument
	// value is the key value as Debezium encodes the column (1, "Alice", "12.30"): what the Redis key
	// is built from, so a lookup of "01" on an integer key reads the key of row 1.
	value json.RawMessage
	// exact: "=" on this column matches only a row whose key is exactly value, so a "not found" may be
	// cached under value's key. False where the collation folds case or ignores trailing spaces, and
	// for decimals.
	exact bool
}

// bindKey binds v, a primary-key value passed to Get, as column c's type.
func bindKey(c *mysqlrow.Column, v any) (keyArg, error) {
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
		text, err := integerText(v)
		if err != nil {
			return keyArg{}, fmt.Errorf("key column %s is %s: %w", c.Name, c.ColumnType, err)
		}
		var arg any
		if c.Unsigned && c.DataType == "bigint" {
			// bigint.unsigned.handling.mode=long: values above 2^63-1 arrive as negative longs; bind the
			// unsigned value they stand for.
			if n, err := strconv.ParseInt(text, 10, 64); err == nil && n < 0 {
				text = strconv.FormatUint(uint64(n), 10)
			}
			u, err := strconv.ParseUint(text, 10, 64)
			if err != nil {
				return keyArg{}, fmt.Errorf("key column %s is %s: %q is out of range", c.Name, c.ColumnType, text)
			}
			arg = u
		} else {
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return keyArg{}, fmt.Errorf("key column %s is %s: %q is out of range", c.Name, c.ColumnType, text)
			}
			arg = n
		}
		value, err := c.FromText([]byte(text), false)
		if err != nil {
			return keyArg{}, fmt.Errorf("key column %s: %w", c.Name, err)
		}
		// YEAR: "=" converts the constant as the column stores it, so 24 matches 2024 (1-69 are 2001-2069,
		// 70-99 are 1970-1999): a value is not the only spelling of its row's key.
		return keyArg{arg: arg, value: value, exact: c.DataType != "year"}, nil
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		s, err := stringText(v)
		if err != nil {
			return keyArg{}, fmt.Errorf("key column %s is %s: %w", c.Name, c.ColumnType, err)
		}
		value, err := c.FromText([]byte(s), false)
		if err != nil {
			return keyArg{}, fmt.Errorf("key column %s: %w", c.Name, err)
		}
		// CHAR strips trailing spaces on read and ENUM/SET compare by member: neither is exact.
		exact := (c.DataType == "varchar" || strings.HasSuffix(c.DataType, "text")) && exactCollation(c.Collation)
		return keyArg{arg: s, value: value, exact: exact}, nil
	case "decimal", "numeric", "float", "double", "real":
		s, err := stringText(v)
		if err != nil {
			return keyArg{}, fmt.Errorf("key column %s is %s: %w", c.Name, c.ColumnType, err)
		}
		value, err := c.FromText([]byte(s), false)
		if err != nil {
			return keyArg{}, fmt.Errorf("key column %s is %s: %q is not a number", c.Name, c.ColumnType, s)
		}
		return keyArg{arg: s, value: value}, nil
	}
	return keyArg{}, fmt.Errorf("key column %s is %s: Get supports integer, string and decimal primary-key columns (temporal and binary keys are not supported)", c.Name, c.ColumnType)
}

// exactCollation reports whether "=" under the collation compares bytes and trailing spaces: binary
// and the NO PAD binary collations (MariaDB's *_nopad_bin, MySQL 8's *_0900_bin). Every other
// collation, utf8mb4_bin included, is PAD SPACE, and most fold case.
func exactCollation(name string) bool {
	return name == "binary" || strings.HasSuffix(name, "_nopad_bin") || strings.HasSuffix(name, "_0900_bin")
}

// integerText is v as the decimal digits of an integer.
func integerText(v any) (string, error) {
	switch x := v.(type) {
	case int:
		return strconv.FormatInt(int64(x), 10), nil
	case int8:
		return strconv.FormatInt(int64(x), 10), nil
	case int16:
		return strconv.FormatInt(int64(x), 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case string, []byte, json.RawMessage:
		s, err := stringText(v)
		if err != nil {
			return "", err
		}
		if !isInteger(s) {
			return "", fmt.Errorf("%q is not an integer", s)
		}
		return s, nil
	}
	return "", fmt.Errorf("unsupported type %T: pass an integer or its digits as a string", v)
}

// isInteger: an optional minus sign and decimal digits (leading zeros allowed: "01" is 1).
func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stringText is v as text: a string as it is, an integer in decimal, json.RawMessage decoded (a JSON
// string's content, or a number's literal).
func stringText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case json.RawMessage:
		s := strings.TrimSpace(string(x))
		if strings.HasPrefix(s, `"`) {
			var out string
			if err := json.Unmarshal([]byte(s), &out); err != nil {
				return "", fmt.Errorf("bad JSON string %s: %w", s, err)
			}
			return out, nil
		}
		if s == "" || s == "null" || strings.ContainsAny(s[:1], "[{tfn") {
			return "", fmt.Errorf("a key value must be a JSON string or number, got %.40s", s)
		}
		return s, nil
	case bool:
		return "", fmt.Errorf("unsupported type bool for a string or decimal column")
	}
	return integerText(v)
}
