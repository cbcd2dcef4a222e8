package contract

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Every target kind registered in functions/rotation (kinds.go) is routed
// by the Preflight's RouteDryRun and Distribute's RouteTarget, and by no
// other type: both send it to a Task state of the one task of the kind
// (Plan<Kind> and Update<Kind>, its updatesecret/updateauth0/updatesoracom),
// so a new kind is planned and updated by the same code.
func TestEveryKindIsRouted(t *testing.T) {
	b, err := os.ReadFile(aslPath)
	if err != nil {
		t.Fatal(err)
	}
	type choiceState struct {
		Type    string `json:"Type"`
		Choices []struct {
			Variable, StringEquals, Next string
		} `json:"Choices"`
	}
	type states = map[string]json.RawMessage
	routes := map[string]map[string]string{} // route → kind → next state
	var visit func(states)
	visit = func(ss states) {
		for name, raw := range ss {
			var inner struct {
				ItemProcessor *struct{ States states } `json:"ItemProcessor"`
			}
			if json.Unmarshal(raw, &inner) == nil && inner.ItemProcessor != nil {
				visit(inner.ItemProcessor.States)
			}
			if name != "RouteDryRun" && name != "RouteTarget" {
				continue
			}
			var c choiceState
			if err := json.Unmarshal(raw, &c); err != nil || c.Type != "Choice" {
				t.Fatalf("%s is no Choice state: %v", name, err)
			}
			routes[name] = map[string]string{}
			for _, ch := range c.Choices {
				if ch.Variable != "$.target.type" {
					t.Errorf("%s chooses on %s, not $.target.type", name, ch.Variable)
				}
				routes[name][ch.StringEquals] = ch.Next
			}
		}
	}
	var top struct{ States states }
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	visit(top.States)
	placeholder := map[string]string{} // Task state → its task's placeholder
	for _, s := range taskStates(t) {
		placeholder[s.Name] = s.placeholder()
	}
	var names []string
	for _, k := range rotation.Kinds() {
		names = append(names, k.Name)
		plan, update := routes["RouteDryRun"][k.Name], routes["RouteTarget"][k.Name]
		switch {
		case plan == "" || update == "":
			t.Errorf("kind %s: RouteDryRun sends it to %q, RouteTarget to %q; want a Task state each", k.Name, plan, update)
		case placeholder[plan] == "" || placeholder[plan] != placeholder[update]:
			t.Errorf("kind %s: %s runs %q and %s runs %q; want one task's Lambda for both", k.Name, plan, placeholder[plan], update, placeholder[update])
		}
	}
	for route, kinds := range routes {
		for kind := range kinds {
			if !slices.Contains(names, kind) {
				t.Errorf("%s routes type %q, which is no kind registered in functions/rotation", route, kind)
			}
		}
	}
	if len(routes) != 2 {
		t.Errorf("found the routes %v, want RouteDryRun and RouteTarget", routes)
	}
}
