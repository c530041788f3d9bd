package debezium

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// connectSchema is the part of a Kafka Connect JSON schema the decoder needs.
type connectSchema struct {
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	Field      string            `json:"field"`
	Parameters map[string]string `json:"parameters"`
	Fields     []connectSchema   `json:"fields"`
}

type logicalTypes struct {
	before, after map[string]logicalType
}

// rowTypes finds the logical types of the before and after images of an envelope schema.
func (s connectSchema) rowTypes() logicalTypes {
	var lt logicalTypes
	for _, f := range s.Fields {
		switch f.Field {
		case "before":
			lt.before = f.fieldTypes()
		case "after":
			lt.after = f.fieldTypes()
		}
	}
	return lt
}

// fieldTypes maps the fields of a struct schema that need converting to their logical type.
func (s connectSchema) fieldTypes() map[string]logicalType {
	var m map[string]logicalType
	for _, f := range s.Fields {
		var lt logicalType
		switch f.Name {
		case decimalSchema:
			scale, err := strconv.Atoi(f.Parameters["scale"])
			if err != nil {
				lt = logicalType{name: f.Name, err: fmt.Errorf("decimal without a valid scale parameter %q", f.Parameters["scale"])}
			} else {
				lt = logicalType{name: f.Name, scale: scale}
			}
		case variableScaleDecimalSchema:
			lt = logicalType{name: f.Name}
		default:
			continue
		}
		if m == nil {
			m = map[string]logicalType{}
		}
		m[f.Field] = lt
	}
	return m
}

const (
	decimalSchema              = "org.apache.kafka.connect.data.Decimal"
	variableScaleDecimalSchema = "io.debezium.data.VariableScaleDecimal"
)

// logicalType converts a value whose raw JSON form is unusable to the form Debezium gives without
// schemas under the settings the README recommends: a Decimal (base64 of a big-endian two's-complement
// unscaled integer) becomes the exact decimal string that decimal.handling.mode=string produces.
// Temporal types are left as numbers, as they are without schemas.
type logicalType struct {
	name  string
	scale int
	err   error
}

func (lt logicalType) convert(v json.RawMessage) (json.RawMessage, error) {
	if isNull(v) {
		return v, nil
	}
	if lt.err != nil {
		return nil, lt.err
	}
	switch lt.name {
	case decimalSchema:
		var b64 string
		if err := json.Unmarshal(v, &b64); err != nil {
			return nil, fmt.Errorf("decimal: want a base64 string: %w", err)
		}
		s, err := decimalString(b64, lt.scale)
		if err != nil {
			return nil, err
		}
		return json.Marshal(s)
	case variableScaleDecimalSchema:
		var w struct {
			Scale *int    `json:"scale"`
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(v, &w); err != nil || w.Scale == nil || w.Value == nil {
			return nil, fmt.Errorf("variable-scale decimal: want {\"scale\":n,\"value\":\"base64\"}, got %s", truncate(string(v), 80))
		}
		s, err := decimalString(*w.Value, *w.Scale)
		if err != nil {
			return nil, err
		}
		return json.Marshal(s)
	}
	return v, nil
}

// decimalString renders the unscaled two's-complement integer in b64 with the given scale, like Java's
// BigDecimal.toPlainString: no exponent, trailing zeros kept.
func decimalString(b64 string, scale int) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("decimal: bad base64 %q: %w", truncate(b64, 40), err)
	}
	if len(raw) == 0 {
		return "", fmt.Errorf("decimal: empty value")
	}
	if scale < -1000 || scale > 1000 {
		return "", fmt.Errorf("decimal: scale %d out of range", scale)
	}
	n := new(big.Int).SetBytes(raw)
	if raw[0]&0x80 != 0 { // negative: subtract 2^(8·len)
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(raw))))
	}
	digits := n.String()
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	switch {
	case scale < 0:
		digits += strings.Repeat("0", -scale)
	case scale > 0:
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		digits = "-" + digits
	}
	return digits, nil
}
