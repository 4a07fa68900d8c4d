// placeholders.go — ? placeholders to PostgreSQL's $1, $2, ... A ? is
// rewritten only outside string constants ('...', E'...' with backslash
// escapes), quoted identifiers ("..."), dollar-quoted strings ($tag$...$tag$),
// line comments and nested block comments; ?? is a literal ? (jsonb's
// operators) in a statement that is translated. conn.encodeQuery applies it on
// PostgreSQL pools to statements that have arguments (a statement without
// arguments is sent untouched, so jsonb's ? operator keeps working there;
// DSN placeholders=native turns the translation off).

package dbpool

import "strconv"

func translatePlaceholders(q string) string {
	out := make([]byte, 0, len(q)+8)
	n := 0
	for i := 0; i < len(q); {
		j := skipQuoted(q, i)
		if j > i {
			out = append(out, q[i:j]...)
			i = j
			continue
		}
		if q[i] == '?' && i+1 < len(q) && q[i+1] == '?' {
			out = append(out, '?')
			i++
		} else if q[i] == '?' {
			n++
			out = append(out, '$')
			out = strconv.AppendInt(out, int64(n), 10)
		} else {
			out = append(out, q[i])
		}
		i++
	}
	return string(out)
}

// skipQuoted returns the end of the quoted text or comment starting at i,
// or i when none starts there.
func skipQuoted(q string, i int) int {
	switch c := q[i]; {
	case c == '\'':
		escapes := i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !isIdent(q[i-2]))
		return skipString(q, i, '\'', escapes)
	case c == '"':
		return skipString(q, i, '"', false)
	case c == '-' && i+1 < len(q) && q[i+1] == '-':
		for i < len(q) && q[i] != '\n' {
			i++
		}
		return i
	case c == '/' && i+1 < len(q) && q[i+1] == '*':
		return skipComment(q, i)
	case c == '$' && (i == 0 || !isIdent(q[i-1])):
		return skipDollar(q, i)
	}
	return i
}

func skipString(q string, i int, quote byte, escapes bool) int {
	for i++; i < len(q); i++ {
		switch {
		case escapes && q[i] == '\\':
			i++
		case q[i] == quote && i+1 < len(q) && q[i+1] == quote:
			i++
		case q[i] == quote:
			return i + 1
		}
	}
	return len(q)
}

func skipComment(q string, i int) int {
	depth := 0
	for i < len(q) {
		switch {
		case q[i] == '/' && i+1 < len(q) && q[i+1] == '*':
			depth++
			i += 2
		case q[i] == '*' && i+1 < len(q) && q[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(q)
}

// skipDollar skips $tag$...$tag$; a $ that opens no tag ($1) is not quoting.
func skipDollar(q string, i int) int {
	j := i + 1
	for j < len(q) && isIdent(q[j]) && !(j == i+1 && q[j] >= '0' && q[j] <= '9') {
		j++
	}
	if j >= len(q) || q[j] != '$' {
		return i
	}
	tag := q[i : j+1]
	for k := j + 1; k+len(tag) <= len(q); k++ {
		if q[k:k+len(tag)] == tag {
			return k + len(tag)
		}
	}
	return len(q)
}

func isIdent(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
