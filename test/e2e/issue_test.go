package e2e

// Issuance end to end (docs/design.md, Issuance): a user with no active key
// is issued one through the pipeline — Validate plans an issue, CreateKey,
// Distribute fills every target (a secret that does not exist is made, an
// empty one filled, an Auth0 tenant with no email provider given a disabled
// SES one), Promote records AWSCURRENT and lets the lock go, NotifySuccess —
// and no retire state is visited. One deploy for every case; I1 is checked
// over every byte when the test ends.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
	sbauth0 "github.com/keyrotator/keyrotator/local/sandbox/auth0"
)

// retireStates are the states only a rotation visits: an issue has no old key.
var retireStates = []string{"InitVerify", "WaitForUse", "VerifyOldKeyUnused", "OldKeyUnused?", "AlertStillInUse", "DeactivateOldKey", "WaitGrace", "DeleteOldKey", "CleanupTargets"}

// approveIssue approves an issue's pending approval the way the pipeline
// takes approvals (h.answer: through answerapproval's function URL, as
// approver, issue 14). One helper, so a change of the approval mechanism
// changes this line only.
func approveIssue(h *H, approver identity, arn string) {
	h.answer(approver, arn, true, "first key for the new app")
}

// issueUser makes user with n keys, the first `inactive` of them deactivated.
func (h *H) issueUser(user string, n, inactive int) []string {
	h.t.Helper()
	keys := h.sb.User(h.t, user, n)
	c := iam.NewFromConfig(h.sb.Config(h.t))
	var ids []string
	for i, k := range keys {
		ids = append(ids, k.AccessKeyID)
		if i < inactive {
			if _, err := c.UpdateAccessKey(context.Background(), &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(k.AccessKeyID), Status: iamtypes.StatusTypeInactive}); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	return ids
}

// secretValue is a secret's AWSCURRENT JSON (read here, never printed).
func (h *H) secretValue(id string) map[string]string {
	h.t.Helper()
	out, err := h.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		h.t.Fatalf("secret %s: %v", id, err)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		h.t.Fatalf("secret %s is not JSON", id)
	}
	return v
}

// issued checks the end of a successful issue: the new key is the user's
// one active key (beside the keys it kept), AWSCURRENT in the record with no
// lock left, every secret target holds it with its secret, no retire state
// was visited, and the alert says issued.
func (h *H) issued(r *Result, user string, kept []string, secretTargets ...string) string {
	h.t.Helper()
	if r.Status != types.ExecutionStatusSucceeded {
		h.t.Fatalf("issue ended %s %s: %s", r.Status, r.Error, r.Cause)
	}
	visited := r.Visited()
	for _, s := range retireStates {
		if slices.Contains(visited, s) {
			h.t.Errorf("an issue visited %s: %v", s, visited)
		}
	}
	if i := slices.Index(visited, "Promote"); i < 0 || !slices.Equal(visited[i:], []string{"Promote", "OldKeyToRetire?", "NotifySuccess", "Succeeded"}) {
		h.t.Errorf("visited %v: want Promote → OldKeyToRetire? → NotifySuccess → Succeeded", visited)
	}
	var plan struct{ Plan rotation.Plan }
	r.StateOutput(h.t.(*testing.T), "TakeLock", &plan)
	if !plan.Plan.Issue || plan.Plan.OldKeyID != "" {
		h.t.Errorf("the plan is not an issue's: %+v", plan.Plan)
	}
	var key struct{ Key rotation.NewKey }
	r.StateOutput(h.t.(*testing.T), "CreateKey", &key)
	newID := key.Key.KeyID
	keys := h.keys(user)
	var active []string
	for id, st := range keys {
		if st == "Active" {
			active = append(active, id)
		}
	}
	if len(active) != 1 || active[0] != newID || len(keys) != len(kept)+1 {
		h.t.Errorf("keys after the issue %v: want %s the one active key beside %v", keys, newID, kept)
	}
	for _, id := range kept {
		if _, ok := keys[id]; !ok {
			h.t.Errorf("the issue deleted key %s", id)
		}
	}
	record := rotation.RecordName(user)
	d, err := h.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(record)})
	if err != nil {
		h.t.Fatal(err)
	}
	for v, stages := range d.VersionIdsToStages {
		if slices.Contains(stages, "AWSPENDING") {
			h.t.Errorf("the issue left its lock: version %s holds %v", v, stages)
		}
	}
	cur := h.secretValue(record)
	if cur["accessKeyId"] != newID {
		h.t.Errorf("AWSCURRENT of %s holds %s, not the new key %s", record, cur["accessKeyId"], newID)
	}
	for _, id := range secretTargets {
		v := h.secretValue(id)
		if v["accessKeyId"] != newID || v["secretAccessKey"] != cur["secretAccessKey"] {
			h.t.Errorf("target secret %s holds %s, not the new key %s with its secret", id, v["accessKeyId"], newID)
		}
	}
	msg, a := h.alertOf(r.ARN, "success")
	if !strings.Contains(msg.Subject, "key issued") || a.NewKeyID != newID || a.OldKeyID != "" {
		h.t.Errorf("the success alert does not say issued: %s / %+v", msg.Subject, a)
	}
	return newID
}

func TestIssue(t *testing.T) {
	t.Parallel()
	h := Start(t)
	ctx := context.Background()
	clientSecret := "client-secret-issue-" + strings.Repeat("y", 24)
	h.secrets = append(h.secrets, clientSecret) // on h: the I1 scan is h's

	t.Run("no key", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		user := "issue-none"
		h.issueUser(user, 0, 0)
		h.consumers(user)
		if _, err := h.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/" + user + "-empty"), SecretString: aws.String(`{"endpoint":"keep-me"}`)}); err != nil {
			t.Fatal(err)
		}
		tenant, err := h.sb.Auth0.AddTenant(sbauth0.TenantConfig{Name: "issue-tenant", ClientID: "cid-issue", ClientSecret: clientSecret,
			Scopes: []string{sbauth0.ScopeRead, sbauth0.ScopeUpdate, sbauth0.ScopeCreate}})
		if err != nil {
			t.Fatal(err)
		}
		conn, _ := json.Marshal(map[string]string{"domain": "http://" + tenant.Domain(), "clientId": "cid-issue", "clientSecret": clientSecret})
		h.putConnection("keyrotator/connections/issue-tenant", conn)
		r := h.Run(map[string]any{"user": user, "issue": true, "targets": []map[string]string{
			{"type": "secret", "name": "new", "secretId": "app/" + user},
			{"type": "secret", "name": "empty", "secretId": "app/" + user + "-empty"},
			{"type": "auth0", "name": "tenant", "connection": "keyrotator/connections/issue-tenant", "sesRegion": "ap-northeast-1"},
		}})
		newID := h.issued(r, user, nil, "app/"+user, "app/"+user+"-empty")
		if v := h.secretValue("app/" + user + "-empty"); v["endpoint"] != "keep-me" {
			t.Errorf("the filled secret lost its other fields: endpoint %q", v["endpoint"])
		}
		p := tenant.View().Provider
		creds, _ := p["credentials"].(map[string]any)
		if p["name"] != "ses" || p["enabled"] != false || creds["accessKeyId"] != newID {
			t.Errorf("the tenant's email provider after the issue: name %v enabled %v key %v; want ses, disabled, %s", p["name"], p["enabled"], creds["accessKeyId"], newID)
		}
	})

	t.Run("only an inactive key", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		user := "issue-inactive"
		ids := h.issueUser(user, 1, 1)
		r := h.Run(map[string]any{"user": user, "issue": true, "targets": []map[string]string{{"type": "secret", "name": "app", "secretId": "app/" + user}}})
		h.issued(r, user, ids, "app/"+user)
		if st := h.keys(user)[ids[0]]; st != "Inactive" {
			t.Errorf("the inactive key %s is %q after the issue, want it left Inactive", ids[0], st)
		}
	})

	t.Run("two keys are refused with no write", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		user := "issue-two"
		ids := h.issueUser(user, 2, 1)
		arn := h.StartExecution(map[string]any{"user": user, "issue": true, "allowRemoveInactiveKey": true,
			"targets": []map[string]string{{"type": "secret", "name": "app", "secretId": "app/" + user}}})
		r := h.Wait(arn)
		if r.Status != types.ExecutionStatusFailed || r.Error != "KeyLimitReached" {
			t.Fatalf("ended %s %s: %s; want FAILED KeyLimitReached", r.Status, r.Error, r.Cause)
		}
		var writes []string
		for _, c := range h.sb.Calls(t, 0) {
			if c.Write && c.Origin != nil && c.Origin.Execution == arn && c.Service != "lambda" && c.Service != "sns" { // its alert is published
				writes = append(writes, c.Service+"."+c.Action+" "+c.Resource)
			}
		}
		if len(writes) > 0 {
			t.Errorf("a refused issue wrote: %v", writes)
		}
		if keys := h.keys(user); len(keys) != 2 || keys[ids[0]] != "Inactive" || keys[ids[1]] != "Active" {
			t.Errorf("keys after the refusal: %v", keys)
		}
		msg, a := h.alertOf(arn, "failure")
		if !strings.Contains(msg.Message, "could not issue") || !strings.Contains(msg.Message, "no room to issue") || a.Error != "KeyLimitReached" {
			t.Errorf("the alert does not say why the issue was refused: %s", msg.Subject)
		}
	})

	t.Run("approval first: nothing made before it", func(t *testing.T) {
		t.Parallel()
		h := h.For(t)
		user := "issue-gated"
		h.issueUser(user, 0, 0)
		gate, approver := h.gate(user)
		in := map[string]any{"user": user, "issue": true, "reason": "the new app's first key",
			"targets": []map[string]string{{"type": "secret", "name": "app", "secretId": "app/" + user}}}
		for k, v := range gate {
			in[k] = v
		}
		arn := h.StartExecution(in)
		h.awaitApproval(arn)
		msg, _ := h.alertOf(arn, "approval")
		if !strings.Contains(msg.Subject, "approve key issue?") {
			t.Errorf("the approval request does not say issue: %s", msg.Subject)
		}
		if keys := h.keys(user); len(keys) != 0 {
			t.Errorf("a key exists before the approval: %v", keys)
		}
		if _, err := h.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/" + user)}); err == nil {
			t.Error("the target secret was made before the approval")
		}
		for _, c := range h.sb.Calls(t, 0) {
			if c.Write && c.Origin != nil && c.Origin.Execution == arn && c.Service == "iam" {
				t.Errorf("IAM written before the approval: %s %s", c.Action, c.Resource)
			}
		}
		approveIssue(h, approver, arn)
		h.issued(h.Wait(arn), user, nil, "app/"+user)
	})
}
