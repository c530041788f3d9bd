package jsonscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

type member struct {
	name  string
	value []byte
}

func members(raw []byte) ([]member, error) {
	var ms []member
	err := EachMember(raw, func(name string, value []byte) error {
		ms = append(ms, member{name, value})
		return nil
	})
	return ms, err
}

// reference is encoding/json's reading of an object's members, in order: what EachMember must agree
// with on every valid object.
func reference(raw []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		ms = append(ms, member{tok.(string), v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if dec.More() {
		return nil, false // trailing data
	}
	return ms, true
}

func FuzzEachMember(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}],"d\"e":"x\\"y","f":null,"g":-1.5e3,"h":true} `,
		`{"nested":{"a":{"b":[[],{}]}},"s":"{[\"]}"}`, `{"a":1,"a":2}`, `{"é":"\u00e9"}`, `[1]`, `"s"`, `{"a":1} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := members(raw) // must never panic, valid or not
		if !json.Valid(raw) {
			return
		}
		want, ok := reference(raw)
		if !ok {
			if err == nil {
				t.Fatalf("split a non-object %q", raw)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, want %d", raw, len(got), len(want))
		}
		for i := range got {
			if got[i].name != want[i].name || !bytes.Equal(bytes.TrimSpace(got[i].value), bytes.TrimSpace(want[i].value)) {
				t.Fatalf("%q member %d: %q=%s, want %q=%s", raw, i, got[i].name, got[i].value, want[i].name, want[i].value)
			}
			if cap(got[i].value) != len(got[i].value) {
				t.Fatalf("member %q: capacity reaches past the value, an append would overwrite the input", got[i].name)
			}
		}
	})
}

func TestEachMemberStopsOnCallbackError(t *testing.T) {
	stop := fmt.Errorf("stop")
	n := 0
	err := EachMember([]byte(`{"a":1,"b":2,"c":3}`), func(string, []byte) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("err %v after %d members, want stop after 2", err, n)
	}
}

func TestScalars(t *testing.T) {
	for _, tc := range []struct {
		in     string
		str    string
		strErr bool
		raw    string
		rawOK  bool
		num    int64
		numErr bool
		isNull bool
	}{
		{in: `"abc"`, str: "abc", raw: "abc", rawOK: true, numErr: true},
		{in: ` "a\/b\n" `, str: "a/b\n", numErr: true},
		{in: `"\u00e9"`, str: "é", numErr: true},
		{in: `12`, strErr: true, num: 12},
		{in: `-9223372036854775808`, strErr: true, num: -9223372036854775808},
		{in: `9223372036854775808`, strErr: true, numErr: true},
		{in: `1.5`, strErr: true, numErr: true},
		{in: `1e3`, strErr: true, numErr: true},
		{in: `null`, strErr: true, numErr: true, isNull: true},
		{in: `"5"`, str: "5", raw: "5", rawOK: true, numErr: true},
	} {
		s, err := String([]byte(tc.in))
		if (err != nil) != tc.strErr || (err == nil && s != tc.str) {
			t.Errorf("String(%s) = %q, %v", tc.in, s, err)
		}
		r, ok := RawString([]byte(tc.in))
		if ok != tc.rawOK || string(r) != tc.raw {
			t.Errorf("RawString(%s) = %q, %v", tc.in, r, ok)
		}
		n, err := Int64([]byte(tc.in))
		if (err != nil) != tc.numErr || n != tc.num {
			t.Errorf("Int64(%s) = %d, %v", tc.in, n, err)
		}
		if IsNull([]byte(tc.in)) != tc.isNull {
			t.Errorf("IsNull(%s) wrong", tc.in)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,-0,0.5,1e5,1E-5,-1.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"]}`,
		` "s" `, `01`, `1.`, `.5`, `-`, `1e`, `{"a"}`, `{"a":}`, `{,}`, `[1,]`, `[1 2]`, `{"a":1,}`, "\"\x01\"",
		`"\x"`, `"\u12"`, `"\u12G4"`, `nul`, `truex`, `{} {}`, `"unterminated`, "\xff", `{"a":{"b":[{}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func TestValidDepthLimit(t *testing.T) {
	for _, n := range []int{9999, 10000, 10001} {
		for _, open := range []string{"[", `{"a":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			b := []byte(strings.Repeat(open, n) + "1" + strings.Repeat(close, n))
			if got, want := Valid(b), json.Valid(b); got != want {
				t.Errorf("depth %d of %s: Valid %v, json.Valid %v", n, open, got, want)
			}
		}
	}
}

// BenchmarkValid compares Valid with json.Valid on a ~2.4 KB change event:
//
//	go test ./internal/jsonscan -run '^$' -bench Valid -count 5
func BenchmarkValid(b *testing.B) {
	row := `{"id":42,"email":"user42@example.com","name":"User 42","balance":"1234.56","created_at":1700000000000000,"bio":"` +
		strings.Repeat("lorem ipsum dolor sit amet ", 32) + `","score":-12.5e3,"flags":[true,false,null]}`
	event := []byte(`{"before":` + row + `,"after":` + row + `,"source":{"db":"shop","table":"customers","file":"mysql-bin.000007","pos":1234567,"row":0},"op":"u","ts_ms":1700000000200}`)
	for _, bc := range []struct {
		name  string
		valid func([]byte) bool
	}{{"jsonscan", Valid}, {"encoding_json", json.Valid}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(event)))
			for b.Loop() {
				if !bc.valid(event) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

func TestOptional(t *testing.T) {
	for _, tc := range []struct {
		in            []byte
		str           string
		strOK, strErr bool
		num           int64
		numOK, numErr bool
	}{
		{in: nil},
		{in: []byte(` null `)},
		{in: []byte(`"x"`), str: "x", strOK: true, numErr: true},
		{in: []byte(`7`), strErr: true, num: 7, numOK: true},
	} {
		s, ok, err := OptString(tc.in)
		if s != tc.str || ok != tc.strOK || (err != nil) != tc.strErr {
			t.Errorf("OptString(%q) = %q, %v, %v", tc.in, s, ok, err)
		}
		n, ok, err := OptInt64(tc.in)
		if n != tc.num || ok != tc.numOK || (err != nil) != tc.numErr {
			t.Errorf("OptInt64(%q) = %d, %v, %v", tc.in, n, ok, err)
		}
	}
}
