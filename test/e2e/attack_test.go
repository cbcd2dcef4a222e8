package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
)

// TestUntaggedRecordRefused (I1, I7): a rotation record that lost its tags
// (an UntagResource, or re-created from a backup without them) is still
// keyrotator's own. A user allowed to start rotations names it by ARN as a
// `secret` target of the very user it belongs to: its AWSCURRENT holds that
// user's current key id, so without the tag the preflight passed and
// UpdateSecret wrote the new key into the record as a new AWSCURRENT, behind
// the lock's back. The record's claim stage gives it away: refused in the
// preflight, nothing written but the alert, the record unchanged.
func TestUntaggedRecordRefused(t *testing.T) {
	t.Parallel()
	// keyrotator's own refusal, the wall behind IAM's: the template's
	// policies already deny the updatesecret role keyrotator's records and
	// connections (AccessDenied under enforcement), so this runs where IAM
	// would let it through — a policy widened by hand.
	h := startWith(t, fullsandbox.Options{WaitScale: waitScale})
	ctx := context.Background()
	victim := h.seed("untagged", 95)
	if r := h.Run(victim.input(nil)); r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("the victim's rotation: %s %s: %s", r.Status, r.Error, r.Cause)
	}
	name := rotation.RecordName(victim.user)
	d, err := h.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, tag := range d.Tags {
		keys = append(keys, aws.ToString(tag.Key))
	}
	if _, err := h.sm.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: d.ARN, TagKeys: keys}); err != nil {
		t.Fatal(err)
	}
	before, _ := h.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: d.ARN})
	seq := h.sb.Server.Calls().Last()
	in := victim.input(map[string]any{"targets": []map[string]string{
		{"type": "secret", "name": "app", "secretId": victim.secretID},
		{"type": "secret", "name": "record", "secretId": aws.ToString(d.ARN)},
	}})
	r := h.Run(in)
	if r.Status != types.ExecutionStatusFailed || r.Error != "TargetFailed" || !strings.Contains(r.Cause, "keyrotator's own") {
		t.Errorf("a target naming the untagged record: %s %s: %s, want TargetFailed: keyrotator's own", r.Status, r.Error, r.Cause)
	}
	for _, w := range h.writesSince(seq) {
		if w.Service != "sns" {
			t.Errorf("wrote %s %s %s", w.Service, w.Action, w.Resource)
		}
	}
	after, _ := h.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: d.ARN})
	if len(after.Versions) != len(before.Versions) {
		t.Errorf("the record has %d versions, had %d", len(after.Versions), len(before.Versions))
	}
}

// TestMissedSESConsumerNotDeactivated (I2): an Auth0 tenant nobody listed
// keeps mailing through SES with the old key after the cut-over, under the
// sandbox's 4-hour IAM lag. SES sends are not in CloudTrail, so IAM's
// last-used alone must show it: the run fails OldKeyStillInUse at the
// verification and never deactivates the key the tenant mails with.
func TestMissedSESConsumerNotDeactivated(t *testing.T) {
	t.Parallel()
	// The tenant's mail must land inside the 7-day WaitForUse: 60 ms of
	// real time at waitScale came out too short on a loaded machine (the
	// use was seen only at DeleteOldKey); 0.6 s holds it.
	h := startIn(t, fullsandbox.Options{WaitScale: 10 * waitScale, EnforceIAM: true}, pipelinetest.Deploy{AnyUser: true})
	f := h.seed("missed-ses", 95)
	h.auth0Tenant(f, "forgotten") // not a target
	h.sendsWith("forgotten", f.old.AccessKeyID)
	h.app(f, true)
	r := h.Run(f.input(map[string]any{"verifyAttempts": 2}))
	if slices.Contains(r.Visited(), "DeactivateOldKey") {
		t.Errorf("deactivated the old key a tenant was mailing with: %s %s: %s (states %v)", r.Status, r.Error, r.Cause, r.Visited())
	}
	if r.Status != types.ExecutionStatusFailed || r.Error != "OldKeyStillInUse" || !strings.Contains(r.Cause, "by ses") {
		t.Errorf("%s %s: %s; want FAILED OldKeyStillInUse naming ses", r.Status, r.Error, r.Cause)
	}
	if ks := h.keys(f.user); ks[f.old.AccessKeyID] != "Active" {
		t.Errorf("keys after: %v, want the old key active", ks)
	}
}
