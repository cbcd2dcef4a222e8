package steps

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// I7 at the Validate Lambda's boundary: malformed input is refused as
// InvalidInput naming the field, before any call (so nothing is written),
// and an unknown user as UserNotFound with nothing written. These cases
// were TestMalformedInputRefused's in test/e2e, each an execution through
// the whole machine; e2e keeps one, for the path Validate → NotifyFailure.
// rotation's TestParseInputRefusesNamingTheField holds the schema to more.
func TestValidateRefusesMalformedInput(t *testing.T) {
	t.Parallel()
	sec := `{"type":"secret","name":"app","secretId":"app/strict"}`
	cases := []struct{ name, input, field string }{
		{"missing user", `{"targets":[` + sec + `]}`, "user"},
		{"missing targets", `{"user":"strict"}`, "targets"},
		{"user not a string", `{"user":1,"targets":[` + sec + `]}`, "user"},
		{"user too long", `{"user":"` + strings.Repeat("u", 65) + `","targets":[` + sec + `]}`, "user"},
		{"user with a slash", `{"user":"a/b","targets":[` + sec + `]}`, "user"},
		{"empty targets", `{"user":"strict","targets":[]}`, "targets"},
		{"targets an object", `{"user":"strict","targets":{}}`, "targets"},
		{"unknown target type", `{"user":"strict","targets":[{"type":"ftp","name":"x"}]}`, "targets[0].type"},
		{"target without name", `{"user":"strict","targets":[{"type":"secret","secretId":"s"}]}`, "targets[0].name"},
		{"secret without secretId", `{"user":"strict","targets":[{"type":"secret","name":"a"}]}`, "targets[0].secretId"},
		{"secret in keyrotator's space", `{"user":"strict","targets":[{"type":"secret","name":"a","secretId":"keyrotator/users/x"}]}`, "targets[0].secretId"},
		{"auth0 bad region", `{"user":"strict","targets":[{"type":"auth0","name":"t","connection":"keyrotator/connections/a","sesRegion":"tokyo"}]}`, "targets[0].sesRegion"},
		{"auth0 without connection", `{"user":"strict","targets":[{"type":"auth0","name":"t","sesRegion":"us-east-1"}]}`, "targets[0].connection"},
		{"soracom bad strategy", `{"user":"strict","targets":[{"type":"soracom","name":"f","connection":"keyrotator/connections/s","strategy":"x"}]}`, "targets[0].strategy"},
		{"field of another kind", `{"user":"strict","targets":[{"type":"secret","name":"a","secretId":"s","sesRegion":"us-east-1"}]}`, "targets[0].sesRegion"},
		{"duplicate target names", `{"user":"strict","targets":[` + sec + `,` + sec + `]}`, "targets[1].name"},
		{"negative waitDays", `{"user":"strict","targets":[` + sec + `],"waitDays":-1}`, "waitDays"},
		{"zero waitDays", `{"user":"strict","targets":[` + sec + `],"waitDays":0}`, "waitDays"},
		{"fractional waitDays", `{"user":"strict","targets":[` + sec + `],"waitDays":1.5}`, "waitDays"},
		{"waitDays as text", `{"user":"strict","targets":[` + sec + `],"waitDays":"7"}`, "waitDays"},
		{"negative graceDays", `{"user":"strict","targets":[` + sec + `],"graceDays":-1}`, "graceDays"},
		{"huge minKeyAgeDays", `{"user":"strict","targets":[` + sec + `],"minKeyAgeDays":9999}`, "minKeyAgeDays"},
		{"zero verifyAttempts", `{"user":"strict","targets":[` + sec + `],"verifyAttempts":0}`, "verifyAttempts"},
		{"dryRun as text", `{"user":"strict","targets":[` + sec + `],"dryRun":"yes"}`, "dryRun"},
		{"unknown field", `{"user":"strict","targets":[` + sec + `],"wait":7}`, "wait"},
		{"unknown trigger", `{"user":"strict","targets":[` + sec + `],"trigger":"cron"}`, "trigger"},
		{"not an object", `["strict"]`, ""},
		{"null", `null`, ""},
	}
	for _, c := range cases {
		for _, kind := range []string{"", "lock"} { // Validate, and TakeLock
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				p := newRotationRun(t)
				p.data.Input = json.RawMessage(c.input)
				p.e.l.off = false
				inv := invokeLambda(context.Background(), "validate", p.validate.Run, p.in(kind))
				if got := errorTypeOf(inv.err); got != "InvalidInput" {
					t.Fatalf("errorType %q (%v), want InvalidInput", got, inv.err)
				}
				if c.field != "" && !strings.Contains(inv.err.Error(), c.field) {
					t.Errorf("%q does not name %s", inv.err, c.field)
				}
				if calls := p.e.l.recorded(); len(calls) > 0 {
					t.Errorf("refused input made calls: %v", calls)
				}
			})
		}
	}
	t.Run("unknown user", func(t *testing.T) {
		t.Parallel()
		for _, kind := range []string{"", "lock"} {
			p := newRotationRun(t)
			p.e.l.off = false
			p.e.l.fault = &injectedFault{at: 0, class: errNotFound} // IAM GetUser: NoSuchEntity
			inv := invokeLambda(context.Background(), "validate", p.validate.Run, p.in(kind))
			if got := errorTypeOf(inv.err); got != "UserNotFound" {
				t.Fatalf("%s: errorType %q (%v), want UserNotFound", kind, got, inv.err)
			}
			if w := writesOf(p.e.l.recorded()); len(w) > 0 {
				t.Errorf("%s: an unknown user's run wrote: %v", kind, w)
			}
			var nf *rotation.UserNotFound
			if nf, _ = inv.err.(*rotation.UserNotFound); nf == nil || nf.User != ckUser { //nolint:errorlint // the boundary returns it unwrapped
				t.Errorf("%s: %#v does not name the user", kind, inv.err)
			}
		}
	})
}
