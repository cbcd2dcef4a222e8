package cloudwatch

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// expr is a parsed metric math expression: + - * /, parentheses, numbers,
// the ids of other queries, and FILL(x, value). Other functions are refused
// when the alarm is made, so an alarm the sandbox cannot evaluate fails its
// deploy instead of never firing.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
type expr interface {
	// eval is the value for one period; ok is false when it has no
	// datapoint there.
	eval(vals map[string]datapoint) (float64, bool)
	ids(into map[string]bool)
}

type datapoint struct {
	v  float64
	ok bool
}

type num float64
type ref string
type binop struct {
	op   byte
	l, r expr
}
type fill struct {
	x     expr
	value float64
}

func (n num) eval(map[string]datapoint) (float64, bool) { return float64(n), true }
func (num) ids(map[string]bool)                         {}
func (r ref) eval(v map[string]datapoint) (float64, bool) {
	d := v[string(r)]
	return d.v, d.ok
}
func (r ref) ids(into map[string]bool) { into[string(r)] = true }

// eval of an arithmetic operator: a period where either side has no
// datapoint has none in the result. This is the sandbox's reading of metric
// math aligning time series by timestamp, the strict one: no AWS page found
// says what "a + b" gives where only a has a datapoint. FILL(x, 0) gives a
// missing side a value and makes an alarm fire either way, so the sandbox
// only fires where AWS surely would.
func (b binop) eval(v map[string]datapoint) (float64, bool) {
	l, lok := b.l.eval(v)
	r, rok := b.r.eval(v)
	if !lok || !rok {
		return 0, false
	}
	switch b.op {
	case '+':
		return l + r, true
	case '-':
		return l - r, true
	case '*':
		return l * r, true
	}
	if r == 0 {
		return 0, false
	}
	return l / r, true
}
func (b binop) ids(into map[string]bool) { b.l.ids(into); b.r.ids(into) }
func (f fill) eval(v map[string]datapoint) (float64, bool) {
	if x, ok := f.x.eval(v); ok {
		return x, true
	}
	return f.value, true
}
func (f fill) ids(into map[string]bool) { f.x.ids(into) }

// parseExpr reads a metric math expression.
func parseExpr(s string) (expr, error) {
	p := &parser{s: s}
	e, err := p.sum()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i:], p.i)
	}
	return e, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *parser) peek() byte {
	p.space()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *parser) sum() (expr, error) {
	l, err := p.product()
	if err != nil {
		return nil, err
	}
	for c := p.peek(); c == '+' || c == '-'; c = p.peek() {
		p.i++
		r, err := p.product()
		if err != nil {
			return nil, err
		}
		l = binop{c, l, r}
	}
	return l, nil
}

func (p *parser) product() (expr, error) {
	l, err := p.term()
	if err != nil {
		return nil, err
	}
	for c := p.peek(); c == '*' || c == '/'; c = p.peek() {
		p.i++
		r, err := p.term()
		if err != nil {
			return nil, err
		}
		l = binop{c, l, r}
	}
	return l, nil
}

func (p *parser) term() (expr, error) {
	c := p.peek()
	switch {
	case c == '(':
		p.i++
		e, err := p.sum()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, fmt.Errorf("missing ) at %d", p.i)
		}
		p.i++
		return e, nil
	case c >= '0' && c <= '9' || c == '.':
		start := p.i
		for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.') {
			p.i++
		}
		f, err := strconv.ParseFloat(p.s[start:p.i], 64)
		if err != nil {
			return nil, err
		}
		return num(f), nil
	case c == '-':
		p.i++
		e, err := p.term()
		if err != nil {
			return nil, err
		}
		return binop{'-', num(0), e}, nil
	case unicode.IsLetter(rune(c)):
		start := p.i
		for p.i < len(p.s) && (unicode.IsLetter(rune(p.s[p.i])) || unicode.IsDigit(rune(p.s[p.i])) || p.s[p.i] == '_') {
			p.i++
		}
		word := p.s[start:p.i]
		if p.peek() != '(' {
			if !unicode.IsLower(rune(word[0])) {
				return nil, fmt.Errorf("id %q must start with a lowercase letter", word)
			}
			return ref(word), nil
		}
		if strings.ToUpper(word) != "FILL" {
			return nil, fmt.Errorf("the sandbox's CloudWatch does not evaluate %s()", word)
		}
		p.i++
		x, err := p.sum()
		if err != nil {
			return nil, err
		}
		if p.peek() != ',' {
			return nil, fmt.Errorf("FILL wants two arguments")
		}
		p.i++
		v, err := p.sum()
		if err != nil {
			return nil, err
		}
		n, ok := v.(num)
		if !ok {
			return nil, fmt.Errorf("FILL's value must be a number")
		}
		if p.peek() != ')' {
			return nil, fmt.Errorf("missing ) after FILL")
		}
		p.i++
		return fill{x, float64(n)}, nil
	}
	return nil, fmt.Errorf("unexpected %q at %d", string(c), p.i)
}
