package rotation

import (
	"encoding/json"
	"slices"
	"testing"
)

// Every kind the schema admits is registered, and every registered kind is
// in the schema: a kind added to one and not the other would be refused, or
// pass without its defaults, checks and plan sentence.
func TestEveryKindInTheSchemaIsRegistered(t *testing.T) {
	var schema struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal([]byte(schemaJSON), &schema); err != nil {
		t.Fatal(err)
	}
	var target struct {
		Properties struct {
			Type struct {
				Enum []string `json:"enum"`
			} `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(schema.Defs["target"], &target); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Name)
		if k.Title == "" || k.Place == "" || k.Clash == "" || k.Change == nil {
			t.Errorf("kind %s lacks a title, place, clash or plan sentence: %+v", k.Name, k)
		}
		if _, ok := schema.Defs[k.Name]; !ok {
			t.Errorf("kind %s has no $defs/%s in the schema", k.Name, k.Name)
		}
	}
	enum := target.Properties.Type.Enum
	slices.Sort(enum)
	slices.Sort(names)
	if !slices.Equal(enum, names) {
		t.Errorf("the schema's target types %v, the registered kinds %v", enum, names)
	}
	if _, ok := KindOf("s3"); ok {
		t.Error("KindOf found an unregistered kind")
	}
}

func TestReceiptDetailsAreTheKinds(t *testing.T) {
	r := Receipt{Type: TargetSoracom, Soracom: &SoracomChange{Strategy: "newCredential", NewCredential: "f-2", OldCredentials: []string{"f-1"},
		Groups: []GroupChange{{GroupID: "g1", Name: "sensors", Namespace: "SoracomFunnel", From: "f-1", To: "f-2"}, {GroupID: "g2", Namespace: "SoracomFunk", From: "f-1", To: "f-2"}}}}
	if got, want := r.Summary(), "new credential f-2 (old: f-1); 2 group(s) use it: g1 (SoracomFunnel), g2 (SoracomFunk)"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	if got, want := r.Details(), []string{"group sensors (SoracomFunnel): f-1 → f-2", "group g2 (SoracomFunk): f-1 → f-2"}; !slices.Equal(got, want) {
		t.Errorf("Details = %q, want %q", got, want)
	}
	if s, d := (Receipt{Type: TargetSecret}).Summary(), (Receipt{Type: TargetSecret}).Details(); s != "" || d != nil {
		t.Errorf("a secret receipt has no part of its own, got %q %q", s, d)
	}
}
