package steps_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/steps"
)

// placePlanner plans each target as resolving to where[name]; a name not
// in it fails its plan.
type placePlanner struct {
	where map[string]string
	calls int
}

func (p *placePlanner) Plan(_ context.Context, tg rotation.Target, oldKeyID, _ string) (rotation.Receipt, error) {
	p.calls++
	w, ok := p.where[tg.Name]
	if !ok {
		return rotation.Receipt{}, &rotation.TargetFailed{Target: tg.Name, Reason: "no such place"}
	}
	return rotation.Receipt{Target: tg.Name, Type: tg.Type, Where: w, PreviousKeyID: oldKeyID}, nil
}

// TestTwoTargetsOnePlaceRefused (I2): a Preflight item refuses its target
// when another target of the input, of its type, resolves to the same
// place (one secret however named, one Auth0 tenant, one SORACOM
// operator), naming both; targets in different places pass, and a peer
// whose own plan fails is left to its own item.
func TestTwoTargetsOnePlaceRefused(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/x-AbCdEf"
	tests := []struct {
		name   string
		typ    string
		where  map[string]string // by target name: a, b
		refuse bool
	}{
		{"one secret by name and by ARN", rotation.TargetSecret, map[string]string{"a": arn, "b": arn}, true},
		{"two secrets", rotation.TargetSecret, map[string]string{"a": arn, "b": arn + "x"}, false},
		{"secret names differ in case: two secrets", rotation.TargetSecret, map[string]string{"a": arn, "b": strings.ToLower(arn)}, false},
		{"one Auth0 tenant through two connections", rotation.TargetAuth0, map[string]string{"a": "prod.eu.auth0.com", "b": "PROD.eu.auth0.com"}, true},
		{"two Auth0 tenants", rotation.TargetAuth0, map[string]string{"a": "prod.eu.auth0.com", "b": "dev.eu.auth0.com"}, false},
		{"one SORACOM operator", rotation.TargetSoracom, map[string]string{"a": "SORACOM operator OP0012345678 (coverage jp)", "b": "SORACOM operator OP0012345678 (coverage jp)"}, true},
		{"one operator id in two coverages", rotation.TargetSoracom, map[string]string{"a": "SORACOM operator OP0012345678 (coverage jp)", "b": "SORACOM operator OP0012345678 (coverage g)"}, false},
		{"a peer whose plan fails", rotation.TargetSecret, map[string]string{"a": arn}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &placePlanner{where: tt.where}
			all := []rotation.Target{{Type: tt.typ, Name: "a"}, {Type: tt.typ, Name: "b"}, {Type: "other", Name: "c"}}
			r, err := steps.PlanTarget(context.Background(), p, all[0], all, "AKIAOLD0000000000000", "")
			var tf *rotation.TargetFailed
			switch {
			case tt.refuse && (!errors.As(err, &tf) || !strings.Contains(err.Error(), "targets a and b resolve to the same") || !strings.Contains(err.Error(), tt.where["a"])):
				t.Errorf("got %v, want TargetFailed naming a, b and %s", err, tt.where["a"])
			case !tt.refuse && (err != nil || r.Target != "a"):
				t.Errorf("got %+v %v, want a's plan", r, err)
			}
			if p.calls != 2 {
				t.Errorf("%d plans, want 2 (the item's and its one peer of its type)", p.calls)
			}
		})
	}
}
