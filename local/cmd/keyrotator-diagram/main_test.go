package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// Every state of the deployed definition is in the picture.
func TestDrawsEveryState(t *testing.T) {
	raw, err := os.ReadFile("../../../statemachine/rotation.asl.json")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run(strings.NewReader(string(raw)), &out); err != nil {
		t.Fatal(err)
	}
	var m machine
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var names []string
	var collect func(machine)
	collect = func(m machine) {
		for n, s := range m.States {
			names = append(names, n)
			if s.ItemProcessor != nil {
				collect(*s.ItemProcessor)
			}
		}
	}
	collect(m)
	for _, n := range names {
		if !strings.Contains(out.String(), `"`+n+`" [`) {
			t.Errorf("state %s is not drawn", n)
		}
	}
	if !strings.HasPrefix(out.String(), "digraph ") {
		t.Errorf("not DOT: %.40s", out.String())
	}
	if err := run(strings.NewReader("not json"), &out); err == nil {
		t.Error("a broken file must be refused")
	}
}
