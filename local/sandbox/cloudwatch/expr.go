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
	// eval is the expression's value for one period.
	eval(vals map[string]datapoint) operand
	ids(into map[string]bool)
}

type datapoint struct {
	v  float64
	ok bool
}

// operand is a value inside an expression for one period: a time series'
// datapoint, a time series without one there, or a scalar (a number, which
// is not a time series and has a value in every period).
type operand struct {
	v    float64
	kind operandKind
}

type operandKind int

const (
	absent  operandKind = iota // a time series without a datapoint in this period
	present                    // a time series with one
	scalar                     // a number
)

// point is the operand as the alarm sees it: a scalar alone is not a time
// series (AWS refuses it as an alarm's result; the sandbox treats it as a
// value in every period).
func (o operand) point() datapoint { return datapoint{o.v, o.kind != absent} }

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

func (n num) eval(map[string]datapoint) operand { return operand{float64(n), scalar} }
func (num) ids(map[string]bool)                 {}
func (r ref) eval(v map[string]datapoint) operand {
	d := v[string(r)]
	if !d.ok {
		return operand{}
	}
	return operand{d.v, present}
}
func (r ref) ids(into map[string]bool) { into[string(r)] = true }

// eval of an arithmetic operator, as AWS documents metric math's basic
// arithmetic: "Missing values in a time series are treated as 0. If the
// value of a data point causes a function to attempt to divide by zero,
// the data point is dropped." So failed + timedOut has a datapoint in a
// period where only failed has one (failed + 0). A period where no time
// series of the expression has a datapoint has none in the result: there
// is no timestamp there to compute at (a number alone does not make one).
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html#metric-math-syntax-arithmetic
func (b binop) eval(v map[string]datapoint) operand {
	l, r := b.l.eval(v), b.r.eval(v)
	switch {
	case l.kind == absent && r.kind != present, r.kind == absent && l.kind != present:
		return operand{} // no time series of either side has a datapoint here
	}
	kind := present
	if l.kind == scalar && r.kind == scalar {
		kind = scalar
	}
	// an absent side is 0 (its v is 0)
	switch b.op {
	case '+':
		return operand{l.v + r.v, kind}
	case '-':
		return operand{l.v - r.v, kind}
	case '*':
		return operand{l.v * r.v, kind}
	}
	if r.v == 0 {
		return operand{} // dropped
	}
	return operand{l.v / r.v, kind}
}
func (b binop) ids(into map[string]bool) { b.l.ids(into); b.r.ids(into) }

// eval of FILL(x, value): a period where x has no datapoint gets value.
func (f fill) eval(v map[string]datapoint) operand {
	if x := f.x.eval(v); x.kind != absent {
		return x
	}
	return operand{f.value, present}
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
