// Command keyrotator-diagram draws a States Language file as Graphviz DOT:
// `make diagram` pipes statemachine/rotation.asl.json through it and dot to
// docs/statemachine.svg, so the picture is always the deployed definition.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type machine struct {
	StartAt string           `json:"StartAt"`
	States  map[string]state `json:"States"`
}

type state struct {
	Type          string                  `json:"Type"`
	Comment       string                  `json:"Comment"`
	Next          string                  `json:"Next"`
	End           bool                    `json:"End"`
	Default       string                  `json:"Default"`
	Choices       []struct{ Next string } `json:"Choices"`
	Catch         []struct{ Next string } `json:"Catch"`
	ItemProcessor *machine                `json:"ItemProcessor"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "keyrotator-diagram:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var m machine
	if err := json.NewDecoder(in).Decode(&m); err != nil {
		return fmt.Errorf("read the state machine: %w", err)
	}
	var b strings.Builder
	b.WriteString("digraph keyrotator {\n  rankdir=TB; node [fontname=\"Helvetica\", fontsize=11]; edge [fontname=\"Helvetica\", fontsize=9];\n")
	b.WriteString("  start [shape=circle, label=\"\", width=0.2, style=filled, fillcolor=black];\n")
	fmt.Fprintf(&b, "  start -> %q;\n", m.StartAt)
	catches := map[string][]string{}
	draw(&b, m, "  ", catches)
	// One edge per catch target rather than one per state, from a note that
	// names the states whose failures go there (they have a red border).
	targets := make([]string, 0, len(catches))
	for t := range catches {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, target := range targets {
		label := "when one of these fails:\\n" + wrap(catches[target], 3)
		fmt.Fprintf(&b, "  %q [shape=note, style=filled, fillcolor=\"#fbe4e4\", color=firebrick, label=\"%s\"];\n", "caught:"+target, label)
		fmt.Fprintf(&b, "  %q -> %q [style=dashed, color=firebrick];\n", "caught:"+target, target)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// wrap lists names, n to a line, for a DOT label.
func wrap(names []string, n int) string {
	sort.Strings(names)
	var lines []string
	for i := 0; i < len(names); i += n {
		lines = append(lines, strings.Join(names[i:min(i+n, len(names))], ", "))
	}
	return strings.Join(lines, "\\n")
}

func draw(b *strings.Builder, m machine, indent string, catches map[string][]string) {
	names := make([]string, 0, len(m.States))
	for n := range m.States {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := m.States[n]
		if s.ItemProcessor != nil {
			caught := ""
			if len(s.Catch) > 0 {
				caught = ", color=firebrick, penwidth=2"
			}
			fmt.Fprintf(b, "%ssubgraph %q {\n%s  label=%q; style=rounded; color=gray50;\n", indent, "cluster_"+n, indent, n+" (Map: each target)")
			fmt.Fprintf(b, "%s  %q [shape=box, style=\"rounded,dashed\", label=%q%s];\n", indent, n, n, caught)
			fmt.Fprintf(b, "%s  %q -> %q [style=dotted];\n", indent, n, s.ItemProcessor.StartAt)
			draw(b, *s.ItemProcessor, indent+"  ", catches)
			fmt.Fprintf(b, "%s}\n", indent)
		} else {
			caught := ""
			if len(s.Catch) > 0 {
				caught = ", color=firebrick, penwidth=2"
			}
			fmt.Fprintf(b, "%s%q [%s%s];\n", indent, n, style(s.Type), caught)
		}
		if s.Next != "" {
			fmt.Fprintf(b, "%s%q -> %q;\n", indent, n, s.Next)
		}
		for _, c := range s.Choices {
			fmt.Fprintf(b, "%s%q -> %q;\n", indent, n, c.Next)
		}
		if s.Default != "" {
			fmt.Fprintf(b, "%s%q -> %q [label=\"default\"];\n", indent, n, s.Default)
		}
		for _, c := range s.Catch {
			catches[c.Next] = append(catches[c.Next], n)
		}
	}
}

func style(typ string) string {
	switch typ {
	case "Task":
		return "shape=box, style=\"rounded,filled\", fillcolor=\"#dbe9f6\""
	case "Choice":
		return "shape=diamond, style=filled, fillcolor=\"#fff4cc\""
	case "Wait":
		return "shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", label=\"wait: \\N\""
	case "Succeed":
		return "shape=doublecircle, style=filled, fillcolor=\"#d5f5d5\", fontsize=9"
	case "Fail":
		return "shape=doublecircle, style=filled, fillcolor=\"#f8d0d0\", fontsize=9"
	default:
		return "shape=box, style=rounded"
	}
}
