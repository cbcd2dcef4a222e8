package e2e

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// A tenant that answers its email provider without credentials.accessKeyId,
// as Auth0 documents the answer: UpdateAuth0 updates it and says the
// cut-over is unconfirmed; VerifyOldKeyUnused confirms it through IAM's
// last use of the new key by ses (the tenant mails with it) before the old
// key is retired; the success alert says how it was confirmed. The leak
// canary runs over everything when the test ends.
func TestAuth0TenantWithholdsKeyID(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("ses-sender", 95)
	target := h.auth0Tenant(f, "prod")
	tenant, _ := h.sb.Auth0.Tenant("prod")
	tenant.SetWithholdKeyID(true)
	h.sendsWith("prod", f.old.AccessKeyID)

	r := h.Run(f.input(map[string]any{"targets": []map[string]string{target}}))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	var plans struct {
		TargetPlans []rotation.Receipt `json:"targetPlans"`
	}
	r.StateOutput(t, "PreflightPassed", &plans)
	if len(plans.TargetPlans) != 1 || !strings.Contains(strings.Join(plans.TargetPlans[0].Planned, " "), "does not show") {
		t.Errorf("the preflight's plan does not say Auth0 does not show the key: %+v", plans.TargetPlans)
	}
	var dist struct {
		Key      rotation.NewKey    `json:"key"`
		Receipts []rotation.Receipt `json:"receipts"`
	}
	r.StateOutput(t, "Distribute", &dist)
	if len(dist.Receipts) != 1 {
		t.Fatalf("receipts %+v", dist.Receipts)
	}
	rc := dist.Receipts[0]
	if u := rc.Unconfirmed; u == nil || u.UsedBy != "ses" || rc.PreviousKeyID != "" || rc.NewKeyID != dist.Key.KeyID || !rc.Changed {
		t.Errorf("UpdateAuth0's receipt %+v (%+v): want it unconfirmed, to be confirmed by ses", rc, rc.Unconfirmed)
	}
	if d := rc.Details(); len(d) != 1 || !strings.Contains(d[0], "cut-over unconfirmed") {
		t.Errorf("the receipt's details (the watch's report) %q", d)
	}
	var verified struct {
		Verify rotation.Verification `json:"verify"`
	}
	r.StateOutput(t, "VerifyOldKeyUnused", &verified)
	v := verified.Verify
	if !v.Unused || len(v.Confirmations) != 1 || !v.Confirmations[0].Confirmed || v.Confirmations[0].Target != "prod" || v.Confirmations[0].At == nil {
		t.Errorf("verification %+v: want the old key unused and the cut-over confirmed", v)
	}
	if !strings.Contains(v.Evidence, "cut-over confirmed: IAM showed the new key "+dist.Key.KeyID+" used by ses") {
		t.Errorf("evidence %q", v.Evidence)
	}
	h.sendsWith("prod", dist.Key.KeyID)
	if ks := h.keys(f.user); len(ks) != 1 || ks[dist.Key.KeyID] != "Active" {
		t.Errorf("keys after: %v", ks)
	}
	msg, alert := h.alertOf(r.ARN, "success")
	if !strings.Contains(msg.Message, "cut-over confirmed") || !strings.Contains(strings.Join(alert.Changed, "\n"), "cut-over confirmed") {
		t.Errorf("the success alert does not say the cut-over was confirmed:\n%s", msg.Message)
	}
}
