package mysqlrow

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var null = json.RawMessage("null")

// FromText converts one column value as the server prints it in the text protocol (what
// database/sql returns with parseTime off and a UTC session) to Debezium's JSON. isNull is true for SQL
// NULL.
func (c *Column) FromText(v []byte, isNull bool) (json.RawMessage, error) {
	if isNull {
		return null, nil
	}
	out, err := c.fromText(v)
	if err != nil {
		return nil, fmt.Errorf("column %s (%s) value %q: %w", c.Name, c.ColumnType, clip(v), err)
	}
	return out, nil
}

func (c *Column) fromText(v []byte) (json.RawMessage, error) {
	s := string(v)
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "year":
		// TINYINT(1) is INT16 in Debezium, not BOOLEAN: the connector reads the column type from
		// SHOW CREATE TABLE, which says tinyint(1) even for a BOOLEAN column.
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, n, 10), nil
	case "bigint":
		if c.Unsigned {
			// bigint.unsigned.handling.mode=long: a Java long, so values above 2^63-1 wrap around.
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, err
			}
			return strconv.AppendInt(nil, int64(n), 10), nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, n, 10), nil
	case "decimal", "numeric":
		d, err := normalizeDecimal(s, c.Scale)
		if err != nil {
			return nil, err
		}
		return AppendJSONString(nil, d), nil
	case "float":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		return javaFloat(float64(float32(f)), 32), nil
	case "double", "real":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		return javaFloat(f, 64), nil
	case "date":
		t, ok, err := parseDateTime(s)
		if err != nil || !ok {
			return null, err // zero dates: Debezium sends null
		}
		return strconv.AppendInt(nil, int64(math.Floor(float64(t.Unix())/86400)), 10), nil
	case "datetime":
		t, ok, err := parseDateTime(s)
		if err != nil || !ok {
			return null, err
		}
		if c.FSP <= 3 {
			return strconv.AppendInt(nil, t.UnixMilli(), 10), nil // io.debezium.time.Timestamp
		}
		return strconv.AppendInt(nil, t.UnixMicro(), 10), nil // io.debezium.time.MicroTimestamp
	case "timestamp":
		t, ok, err := parseDateTime(s)
		if err != nil || !ok {
			return null, err
		}
		return AppendJSONString(nil, zonedTimestamp(t, c.FSP)), nil
	case "time":
		us, err := parseTime(s)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, us, 10), nil // io.debezium.time.MicroTime
	case "bit":
		return bits(v, c.Length), nil
	case "binary":
		if len(v) < c.Length {
			// The binlog drops BINARY(n)'s trailing zero bytes; Debezium pads them back to n.
			v = append(append([]byte{}, v...), make([]byte, c.Length-len(v))...)
		}
		return AppendJSONString(nil, base64.StdEncoding.EncodeToString(v)), nil
	case "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return AppendJSONString(nil, base64.StdEncoding.EncodeToString(v)), nil
	case "json":
		// io.debezium.data.Json: the document as a string. MySQL prints it one way, the binlog decoder
		// another; both are normalised to compact JSON with sorted keys so the two paths agree.
		doc, err := canonicalJSON(v)
		if err != nil {
			return nil, err
		}
		return AppendJSONString(nil, string(doc)), nil
	default: // char, varchar, text, enum, set
		return AppendJSONString(nil, s), nil
	}
}

// normalizeDecimal writes a decimal with exactly scale fraction digits, as Java's
// BigDecimal.toPlainString does for a DECIMAL(p,scale) value.
func normalizeDecimal(s string, scale int) (string, error) {
	// MySQL prints decimals as plain digits (at most 65 of them); anything else (exponents, fractions
	// that big.Rat would accept) is refused before it can cost time or memory.
	if len(s) == 0 || len(s) > 80 || strings.Trim(s, "+-0123456789.") != "" {
		return "", fmt.Errorf("not a decimal")
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "", fmt.Errorf("not a decimal")
	}
	return r.FloatString(scale), nil
}

// javaFloat formats f as Java's Float.toString/Double.toString (what Kafka Connect's JSON converter
// writes): the shortest digits that round-trip, plain notation with at least one fraction digit for
// 1e-3 <= |f| < 1e7, computerised scientific notation ("1.0E10") otherwise.
func javaFloat(f float64, bitSize int) json.RawMessage {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return null // not representable in JSON; MySQL cannot store them either
	}
	if f == 0 {
		if math.Signbit(f) {
			return json.RawMessage("-0.0")
		}
		return json.RawMessage("0.0")
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, bitSize)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return json.RawMessage(s)
	}
	s := strconv.FormatFloat(f, 'e', -1, bitSize) // d.ddde±xx
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return json.RawMessage(mant + "E" + strconv.Itoa(e))
}

// parseDateTime reads "YYYY-MM-DD[ HH:MM:SS[.ffffff]]" as UTC; ok is false for MySQL's zero dates.
func parseDateTime(s string) (t time.Time, ok bool, err error) {
	if strings.HasPrefix(s, "0000-00-00") || strings.Contains(s[:min(len(s), 10)], "-00") {
		return time.Time{}, false, nil
	}
	layout := "2006-01-02"
	if len(s) > 10 {
		layout = "2006-01-02 15:04:05.999999"
	}
	t, err = time.ParseInLocation(layout, s, time.UTC)
	if err != nil {
		return time.Time{}, false, err
	}
	return t, true, nil
}

// zonedTimestamp formats t as io.debezium.time.ZonedTimestamp does for a TIMESTAMP(fsp) column: ISO-8601
// in UTC with exactly fsp fraction digits (none for fsp 0).
func zonedTimestamp(t time.Time, fsp int) string {
	b := t.UTC().AppendFormat(nil, "2006-01-02T15:04:05")
	if fsp > 0 {
		frac := fmt.Sprintf("%09d", t.Nanosecond())
		b = append(b, '.')
		b = append(b, frac[:min(fsp, 9)]...)
	}
	return string(append(b, 'Z'))
}

// parseTime reads a TIME value "[-]HHH:MM:SS[.ffffff]" as microseconds.
func parseTime(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	hms, frac, _ := strings.Cut(s, ".")
	p := strings.Split(hms, ":")
	if len(p) != 3 {
		return 0, fmt.Errorf("not a TIME")
	}
	var n [3]int64
	for i, x := range p {
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("not a TIME")
		}
		n[i] = v
	}
	us := (n[0]*3600 + n[1]*60 + n[2]) * 1_000_000
	if frac != "" {
		if len(frac) > 6 {
			return 0, fmt.Errorf("not a TIME")
		}
		f, err := strconv.ParseInt((frac + "000000")[:6], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("not a TIME")
		}
		us += f
	}
	if neg {
		us = -us
	}
	return us, nil
}

// bits encodes a BIT(n) value given as big-endian bytes: BIT(1) as a boolean, wider as
// io.debezium.data.Bits, the little-endian bytes in base64, ceil(n/8) of them.
func bits(v []byte, n int) json.RawMessage {
	if n == 1 {
		for _, b := range v {
			if b != 0 {
				return json.RawMessage("true")
			}
		}
		return json.RawMessage("false")
	}
	size := (n + 7) / 8
	le := make([]byte, size)
	for i := 0; i < size && i < len(v); i++ {
		le[i] = v[len(v)-1-i]
	}
	return AppendJSONString(nil, base64.StdEncoding.EncodeToString(le))
}

func canonicalJSON(v []byte) ([]byte, error) {
	if len(bytes.TrimSpace(v)) == 0 {
		return []byte("null"), nil
	}
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a JSON document: %w", err)
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// AppendJSONString appends s as a JSON string the way Jackson (Kafka Connect's JSON converter) writes it:
// only '"', '\\' and control characters escaped, everything else as UTF-8. Invalid UTF-8 becomes U+FFFD.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func clip(v []byte) string {
	if len(v) > 64 {
		return string(v[:64]) + "…"
	}
	return string(v)
}
