package jsonscan

// maxDepth is encoding/json's limit on nesting: deeper documents are invalid there, so here too.
const maxDepth = 10000

// Valid reports whether b is one valid JSON value, surrounded by optional whitespace: exactly what
// json.Valid reports (FuzzValid holds it to that), about four times faster. Like json.Valid it does
// not check that strings are valid UTF-8. The hot path validates every change event once, and
// json.Valid's byte-at-a-time state machine was the largest cost of decoding one.
func Valid(b []byte) bool {
	var stack []byte // the open containers, '{' or '['
	const (
		wantValue = iota
		wantKey
		afterValue
	)
	state := wantValue
	i := skipSpace(b, 0)
	for {
		switch state {
		case wantKey:
			if i >= len(b) || b[i] != '"' {
				return false
			}
			j, ok := validString(b, i)
			if !ok {
				return false
			}
			i = skipSpace(b, j)
			if i >= len(b) || b[i] != ':' {
				return false
			}
			i = skipSpace(b, i+1)
			state = wantValue
		case wantValue:
			if i >= len(b) {
				return false
			}
			var ok bool
			switch c := b[i]; {
			case c == '{' || c == '[':
				if len(stack) == maxDepth {
					return false
				}
				close := byte('}')
				if c == '[' {
					close = ']'
				}
				i = skipSpace(b, i+1)
				if i < len(b) && b[i] == close {
					i++
					state = afterValue
					continue
				}
				stack = append(stack, c)
				if c == '{' {
					state = wantKey
				}
				continue
			case c == '"':
				i, ok = validString(b, i)
			case c == '-' || c >= '0' && c <= '9':
				i, ok = validNumber(b, i)
			case c == 't':
				i, ok = literal(b, i, "true")
			case c == 'f':
				i, ok = literal(b, i, "false")
			case c == 'n':
				i, ok = literal(b, i, "null")
			}
			if !ok {
				return false
			}
			state = afterValue
		case afterValue:
			i = skipSpace(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := stack[len(stack)-1]
			switch {
			case b[i] == ',':
				i = skipSpace(b, i+1)
				state = wantValue
				if top == '{' {
					state = wantKey
				}
			case top == '{' && b[i] == '}', top == '[' && b[i] == ']':
				stack = stack[:len(stack)-1]
				i++
			default:
				return false
			}
		}
	}
}

// plain marks the bytes a JSON string may hold as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// validString returns the index after the valid JSON string starting at b[i] (a quote).
func validString(b []byte, i int) (int, bool) {
	j := i + 1
	for j < len(b) {
		// Skip the bytes that need no look: all but a quote, a backslash or a control character.
		for j < len(b) && plain[b[j]] {
			j++
		}
		if j >= len(b) {
			return 0, false
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		}
		// A backslash: one of \" \\ \/ \b \f \n \r \t, or \u and four hex digits.
		if j+1 >= len(b) {
			return 0, false
		}
		switch b[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j += 2
		case 'u':
			if j+6 > len(b) {
				return 0, false
			}
			for _, h := range b[j+2 : j+6] {
				if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
					return 0, false
				}
			}
			j += 6
		default:
			return 0, false
		}
	}
	return 0, false
}

// validNumber returns the index after the valid JSON number starting at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}
