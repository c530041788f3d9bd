package readcache

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

// ErrNoColumnTypes is returned by Row.Values and Row.Scan when the row's column types are unknown: they
// are read from the database's information_schema, so a Client without Options.DB cannot convert rows
// to Go values (Row.Decode still unmarshals the JSON as it is).
var ErrNoColumnTypes = errors.New("readcache: converting a row to Go values needs its table's column types, read from Options.DB")

// rowTable is what a Row needs to convert its values: the Client that knows (or can read) the table's
// columns, and the table.
type rowTable struct {
	c      *Client
	db, tb string
}

// columns returns the table's columns as the Client last read them, reading them if it has not. A
// column not among them (one added since they were read) makes it read them once more.
func (rt *rowTable) columns(ctx context.Context, need []string) (*mysqlrow.Table, error) {
	if rt == nil || rt.c == nil {
		return nil, errors.New("readcache: the row is not from a Client (use Client.Get)")
	}
	if rt.c.o.DB == nil {
		return nil, ErrNoColumnTypes
	}
	for attempt := 0; ; attempt++ {
		m, err := rt.c.metadata(ctx, rt.db, rt.tb)
		if err != nil {
			return nil, err
		}
		missing := ""
		for _, name := range need {
			if _, ok := m.Column(name); !ok {
				missing = name
				break
			}
		}
		if missing == "" {
			return m, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("readcache: %s.%s has no column %s (the row has it)", rt.db, rt.tb, missing)
		}
		rt.c.forgetSchema(rt.db + "." + rt.tb)
	}
}

// Values returns the row's columns as Go values, converted from Debezium's encoding by the column's
// type as database/sql returns them (mysqlrow.Column.GoValue: integers as int64, BIGINT UNSIGNED as
// uint64, DECIMAL as its exact string, FLOAT as float32, DOUBLE as float64, DATE, DATETIME and TIMESTAMP
// as time.Time in UTC, TIME as time.Duration, BIT(1) as bool, wider BIT and binary types as []byte,
// JSON as json.RawMessage, the rest as string; nil for NULL). The first conversion of a table's row
// reads its columns from the database (once per Client and table, within DBTimeout).
func (r Row) Values() (map[string]any, error) {
	cols, err := r.goValues()
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(cols))
	for _, c := range cols {
		out[c.name] = c.value
	}
	return out, nil
}

type goColumn struct {
	name  string
	value any
}

func (r Row) goValues() ([]goColumn, error) {
	row, err := mysqlrow.SplitRow(r.JSON)
	if err != nil {
		return nil, fmt.Errorf("readcache: row: %w", err)
	}
	names := make([]string, len(row))
	for i, c := range row {
		names[i] = c.Name
	}
	m, err := r.table.columns(context.Background(), names)
	if err != nil {
		return nil, err
	}
	out := make([]goColumn, len(row))
	for i, c := range row {
		col, _ := m.Column(c.Name)
		v, err := col.GoValue(c.Value)
		if err != nil {
			return nil, fmt.Errorf("readcache: %s.%s: %w", m.DB, m.Name, err)
		}
		out[i] = goColumn{c.Name, v}
	}
	return out, nil
}

// Scan stores the row's columns, converted as Values converts them, into dest: a pointer to a struct
// or to a map[string]any. A struct field takes the column its `db:"name"` tag names (`db:"-"` skips
// it), or without a tag the column whose name equals the field's, ignoring case; columns no field takes
// are ignored, and a field no column has is left as it is.
//
// A field may be of the value's own type or one it converts to without loss: any integer type (the
// value must fit), a float from an integer or a DECIMAL (a float64 may round it), bool from an integer
// (non-zero is true: BOOLEAN is TINYINT(1)) or BIT(1), uint64 from BIT(n), string or []byte from a
// string, []byte or JSON, json.RawMessage from JSON or a string; a pointer to any of them (nil for NULL);
// any (the value itself); or a type implementing sql.Scanner (sql.NullInt64, sql.NullTime, a decimal
// library's type), which is given the value as Values has it. NULL into a field that cannot hold it is
// an error, as with database/sql.
func (r Row) Scan(dest any) error {
	cols, err := r.goValues()
	if err != nil {
		return err
	}
	if m, ok := dest.(*map[string]any); ok {
		if *m == nil {
			*m = make(map[string]any, len(cols))
		}
		for _, c := range cols {
			(*m)[c.name] = c.value
		}
		return nil
	}
	rv := reflect.ValueOf(dest)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("readcache: Scan wants a non-nil pointer to a struct or a map[string]any, got %T", dest)
	}
	sv := rv.Elem()
	fields := r.table.c.structFields(sv.Type())
	for _, c := range cols {
		idx, ok := fields.byName[c.name]
		if !ok {
			idx, ok = fields.byFold[strings.ToLower(c.name)]
		}
		if !ok {
			continue
		}
		f := sv.FieldByIndex(idx)
		if err := assign(f, c.value); err != nil {
			return fmt.Errorf("readcache: column %s into field %s (%s): %w", c.name, sv.Type().FieldByIndex(idx).Name, f.Type(), err)
		}
	}
	return nil
}

// ScanAs reads a row and scans it (Row.Scan) into a T, a struct.
func ScanAs[T any](ctx context.Context, c *Client, table string, pk ...any) (T, error) {
	var v T
	row, err := c.Get(ctx, table, pk...)
	if err != nil {
		return v, err
	}
	return v, row.Scan(&v)
}

type fieldMap struct {
	byName map[string][]int // by db tag
	byFold map[string][]int // untagged fields, by lower-case name
}

// structFields maps t's fields to columns, once per type and Client (c.fields).
func (c *Client) structFields(t reflect.Type) fieldMap {
	if fm, ok := c.fields.Load(t); ok {
		return fm.(fieldMap)
	}
	fm := fieldMap{byName: map[string][]int{}, byFold: map[string][]int{}}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		switch tag, ok := f.Tag.Lookup("db"); {
		case tag == "-":
		case ok && tag != "":
			fm.byName[tag] = f.Index
		default:
			if _, taken := fm.byFold[strings.ToLower(f.Name)]; !taken {
				fm.byFold[strings.ToLower(f.Name)] = f.Index
			}
		}
	}
	c.fields.Store(t, fm)
	return fm
}

var (
	scannerType  = reflect.TypeFor[sql.Scanner]()
	rawType      = reflect.TypeFor[json.RawMessage]()
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

// assign stores v (a value as Column.GoValue returns it) into f.
func assign(f reflect.Value, v any) error {
	if f.CanAddr() && f.Addr().Type().Implements(scannerType) {
		return f.Addr().Interface().(sql.Scanner).Scan(v)
	}
	if f.Kind() == reflect.Interface && f.NumMethod() == 0 {
		if v == nil {
			f.SetZero()
		} else {
			f.Set(reflect.ValueOf(v))
		}
		return nil
	}
	if f.Kind() == reflect.Pointer {
		if v == nil {
			f.SetZero()
			return nil
		}
		p := reflect.New(f.Type().Elem())
		if err := assign(p.Elem(), v); err != nil {
			return err
		}
		f.Set(p)
		return nil
	}
	if v == nil {
		if f.Kind() == reflect.Slice { // []byte, json.RawMessage: nil, as database/sql stores NULL
			f.SetZero()
			return nil
		}
		return errors.New("the value is NULL: use a pointer, an sql.Null type or any")
	}
	switch f.Type() {
	case timeType:
		t, ok := v.(time.Time)
		if !ok {
			return fmt.Errorf("cannot store a %T in a time.Time", v)
		}
		f.Set(reflect.ValueOf(t))
		return nil
	case durationType:
		d, ok := v.(time.Duration)
		if !ok {
			return fmt.Errorf("cannot store a %T in a time.Duration (TIME columns only)", v)
		}
		f.SetInt(int64(d))
		return nil
	case rawType:
		switch x := v.(type) {
		case json.RawMessage:
			f.SetBytes(append(json.RawMessage(nil), x...))
			return nil
		case string:
			f.SetBytes(json.RawMessage(x))
			return nil
		}
		return fmt.Errorf("cannot store a %T in a json.RawMessage", v)
	}
	switch f.Kind() {
	case reflect.String:
		switch x := v.(type) {
		case string:
			f.SetString(x)
		case []byte:
			f.SetString(string(x))
		case json.RawMessage:
			f.SetString(string(x))
		default:
			return fmt.Errorf("cannot store a %T in a string", v)
		}
		return nil
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.Uint8 {
			break
		}
		switch x := v.(type) {
		case []byte:
			f.SetBytes(append([]byte(nil), x...))
		case json.RawMessage:
			f.SetBytes(append([]byte(nil), x...))
		case string:
			f.SetBytes([]byte(x))
		default:
			return fmt.Errorf("cannot store a %T in a []byte", v)
		}
		return nil
	case reflect.Bool:
		switch x := v.(type) {
		case bool:
			f.SetBool(x)
		case int64:
			f.SetBool(x != 0)
		case uint64:
			f.SetBool(x != 0)
		default:
			return fmt.Errorf("cannot store a %T in a bool", v)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case uint64:
			if x > math.MaxInt64 {
				return fmt.Errorf("%d overflows %s", x, f.Type())
			}
			n = int64(x)
		default:
			return fmt.Errorf("cannot store a %T in an integer", v)
		}
		if f.OverflowInt(n) {
			return fmt.Errorf("%d overflows %s", n, f.Type())
		}
		f.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var n uint64
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return fmt.Errorf("%d overflows %s", x, f.Type())
			}
			n = uint64(x)
		case uint64:
			n = x
		case []byte: // BIT(n), big-endian
			if len(x) > 8 {
				return fmt.Errorf("%d bytes overflow %s", len(x), f.Type())
			}
			for _, b := range x {
				n = n<<8 | uint64(b)
			}
		default:
			return fmt.Errorf("cannot store a %T in an unsigned integer", v)
		}
		if f.OverflowUint(n) {
			return fmt.Errorf("%d overflows %s", n, f.Type())
		}
		f.SetUint(n)
		return nil
	case reflect.Float32, reflect.Float64:
		var x float64
		switch n := v.(type) {
		case float32:
			x = float64(n)
		case float64:
			x = n
		case int64:
			x = float64(n)
		case uint64:
			x = float64(n)
		case string: // DECIMAL
			p, err := strconv.ParseFloat(n, 64)
			if err != nil {
				return fmt.Errorf("cannot store %q in a float: %w", n, err)
			}
			x = p
		default:
			return fmt.Errorf("cannot store a %T in a float", v)
		}
		if f.Kind() == reflect.Float32 && f.OverflowFloat(x) {
			return fmt.Errorf("%v overflows float32", x)
		}
		f.SetFloat(x)
		return nil
	}
	return fmt.Errorf("unsupported field type %s", f.Type())
}
