package debezium

import (
	"bytes"
	"encoding/json"
	"testing"
)

// referenceSplit is encoding/json's reading of an object's members, in order: what splitObject must
// agree with on every valid object.
func referenceSplit(raw []byte) (Row, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var row Row
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		row = append(row, Column{Name: tok.(string), Value: v})
	}
	return row, true
}

func FuzzSplitObject(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}],"d\"e":"x\\"y","f":null,"g":-1.5e3,"h":true} `,
		`{"nested":{"a":{"b":[[],{}]}},"s":"{[\"]}"}`, `{"a":1,"a":2}`, `{"é":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := splitObject(raw) // must never panic, valid or not
		if !json.Valid(raw) {
			return
		}
		want, ok := referenceSplit(raw)
		if !ok {
			if err == nil {
				t.Fatalf("split a non-object %q", raw)
			}
			return
		}
		if noDuplicates(want) != nil {
			if err == nil {
				t.Fatalf("accepted duplicate columns in %q", raw)
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
			if got[i].Name != want[i].Name || !bytes.Equal(bytes.TrimSpace(got[i].Value), bytes.TrimSpace(want[i].Value)) {
				t.Fatalf("%q member %d: %q=%s, want %q=%s", raw, i, got[i].Name, got[i].Value, want[i].Name, want[i].Value)
			}
		}
	})
}
