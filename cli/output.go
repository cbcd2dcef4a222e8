package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// writeJSON prints v as the one JSON document of an invocation.
func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// table is a tabwriter for human output: columns two spaces apart.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// humanDuration says a duration as a person would: "12 seconds",
// "14 minutes", "5.3 hours", "3.2 days", "95 days".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return plural(math.Round(d.Seconds()), "second", 0)
	case d < time.Hour:
		return plural(math.Round(d.Minutes()), "minute", 0)
	case d < 24*time.Hour:
		return plural(d.Hours(), "hour", 1)
	case d < 10*24*time.Hour:
		return plural(d.Hours()/24, "day", 1)
	default:
		return plural(math.Floor(d.Hours()/24), "day", 0)
	}
}

// plural formats n with up to prec decimals, "1 day" but "1.5 days".
func plural(n float64, unit string, prec int) string {
	s := strconv.FormatFloat(n, 'f', prec, 64)
	s = strings.TrimSuffix(s, ".0")
	if s == "1" {
		return s + " " + unit
	}
	return s + " " + unit + "s"
}

// ago says when t was, seen from now: "3.2 days ago", "in 5 hours".
func ago(t, now time.Time) string {
	if t.After(now) {
		return "in " + humanDuration(t.Sub(now))
	}
	return humanDuration(now.Sub(t)) + " ago"
}

// ageDays is how many whole days old something made at t is.
func ageDays(t, now time.Time) int {
	if t.IsZero() || now.Before(t) {
		return 0
	}
	return int(now.Sub(t) / (24 * time.Hour))
}

// isTerminal says whether w is a terminal, where progress is redrawn in
// place; elsewhere (a pipe, a file, a test) every line stays.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// bar draws a progress bar of width cells for frac in [0,1].
func bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	full := int(math.Round(frac * float64(width)))
	return "[" + strings.Repeat("█", full) + strings.Repeat("░", width-full) + "]" + fmt.Sprintf(" %3.0f%%", frac*100)
}
