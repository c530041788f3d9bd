// Package jsonscantest helps differential tests that hold a jsonscan-based decoder to the
// json.Unmarshal-based one it replaced.
package jsonscantest

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Ambiguous reports whether some object in data repeats a member name, or has a member whose name
// matches one of fields only case-insensitively: the documents on which json.Unmarshal into a struct
// (last member wins, names matched case-insensitively) and a jsonscan-based decoder (which refuses
// repeats and matches names exactly) may rightly disagree. Invalid JSON is not ambiguous.
func Ambiguous(data []byte, fields ...string) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		names  map[string]bool
		key    bool // the next token in this object is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
				continue
			}
			name := tok.(string)
			if top.names[name] {
				return true
			}
			top.names[name] = true
			for _, f := range fields {
				if name != f && strings.EqualFold(name, f) {
					return true
				}
			}
			top.key = false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{object: true, names: map[string]bool{}, key: true})
			continue
		case '[':
			stack = append(stack, &frame{})
			continue
		case ']':
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}
