package subset

import (
	"math"
	"math/big"
	"testing"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// grouped and float write numbers as the library's English printer
// (golang.org/x/text/message) does: checked against that printer.
func TestNumbersAsThePrinterWritesThem(t *testing.T) {
	t.Parallel()
	p := message.NewPrinter(language.English)
	for _, n := range []int{0, 1, -1, 7, 999, 1000, -1000, 65536, 262144, 1234567, math.MaxInt64} {
		if got, want := grouped(n), p.Sprintf("%d", n); got != want {
			t.Errorf("grouped(%d) = %q, the printer %q", n, got, want)
		}
	}
	for _, s := range []string{"0", "1", "-1", "7", "1.5", "-1.5", "999", "1000", "123456", "999999", "1000000", "-1234567",
		"12345.5", "0.1", "0.0001", "0.00001", "1e20", "1e21", "-1e21", "1e-7", "123456789012", "1e308", "1.7976931348623157e308",
		"5e-324", "1e-400", "1e400", "-1e400", "2.5e-5", "3.14159265358979", "100000", "720", "365"} {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("%s: not a number", s)
		}
		f, _ := r.Float64()
		if got, want := float(r), p.Sprintf("%v", f); got != want {
			t.Errorf("float(%s) = %q, the printer %q", s, got, want)
		}
	}
}
