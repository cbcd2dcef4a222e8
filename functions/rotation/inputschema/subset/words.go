package subset

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The library's words: its kind package's messages, as its English
// printer (golang.org/x/text/message) writes them. The differential test
// in package inputschema compares every leaf's words with the library's.

// quote is the library's kind.quote: Go-quoted, in single quotes.
func quote(s string) string {
	s = fmt.Sprintf("%q", s)
	s = strings.ReplaceAll(s, `\"`, `"`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s[1:len(s)-1] + "'"
}

func joinQuoted(arr []string) string {
	q := make([]string, len(arr))
	for i, s := range arr {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}

// display is the library's kind.display of a primitive value.
func display(v any) string {
	if s, ok := v.(string); ok {
		return quote(s)
	}
	return fmt.Sprintf("%v", v)
}

// grouped is %d as the English printer writes it: 262,144.
func grouped(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// float is a number as the library's minimum and maximum messages write
// it: the nearest float64, %v through the English printer (1,000; 1.5;
// 1×10²¹; ∞).
func float(r *big.Rat) string {
	f, _ := r.Float64()
	switch {
	case math.IsInf(f, 1):
		return "∞"
	case math.IsInf(f, -1):
		return "-∞"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	mant, exp, isExp := strings.Cut(s, "e")
	intPart, frac, hasFrac := strings.Cut(mant, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	if !isExp {
		if n, err := strconv.Atoi(intPart); err == nil {
			intPart = grouped(n)
		}
	}
	out := intPart
	if neg {
		out = "-" + out
	}
	if hasFrac {
		out += "." + frac
	}
	if isExp {
		out += "×10" + superscript(exp)
	}
	return out
}

// superscript writes a Go exponent ("+06", "-324") as the printer does
// ("⁰⁶", "⁻³²⁴").
func superscript(exp string) string {
	const digits = "⁰¹²³⁴⁵⁶⁷⁸⁹"
	sup := []rune(digits)
	var b strings.Builder
	for _, c := range exp {
		switch {
		case c == '-':
			b.WriteRune('⁻')
		case c >= '0' && c <= '9':
			b.WriteRune(sup[c-'0'])
		}
	}
	return b.String()
}
