package steps

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// runbookAnchors are the sections of docs/runbook.md, as GitHub links them.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
		}
	}
	return out
}

// Every alert, of every kind and for every named error, has the one shape:
// a subject of under 100 ASCII characters that names the user, the state,
// what changed, what is safe, the next commands, a runbook section that
// exists, the console link, and the same facts as JSON.
func TestEveryAlertHasOneShape(t *testing.T) {
	t.Parallel()
	anchors := runbookAnchors(t)
	const exec = "arn:aws:states:ap-northeast-1:111122223333:execution:keyrotator:mailer-20261201T030000Z"
	plan := `"plan":{"user":"mailer","record":"keyrotator/users/mailer","oldKeyId":"AKIAOLD","approvalTimeoutSeconds":3600,"requestedBy":"arn:aws:iam::111122223333:user/alice","reason":"IAM.3","approvers":["arn:aws:iam::111122223333:role/security-*"],"minApprovals":2,"changes":["ask for approval on the alert topic","create a new access key"],"targets":[{"type":"secret","name":"app","secretId":"app/k"},{"type":"soracom","name":"funnel","connection":"keyrotator/connections/s"}]}`
	key := `"key":{"keyId":"AKIANEW","versionId":"v1"}`
	receipt := `"receipts":[{"target":"app","type":"secret","newKeyId":"AKIANEW"}]`
	type tc struct {
		kind, state, errName, data string
		says                       []string
	}
	cases := []tc{
		{kind: "success", data: plan + "," + key + "," + receipt, says: []string{"rotated", "AKIANEW"}},
		{kind: "warning", data: plan + "," + key + "," + receipt + `,"verify":{"attemptsLeft":1,"evidence":"old key AKIAOLD was last used by ses"}`, says: []string{"still in use", "by ses"}},
		{kind: "approval", data: plan, says: []string{"keyrotator approve " + exec, "keyrotator reject " + exec, "Needs:    2 approval(s) from distinct principals of: arn:aws:iam::111122223333:role/security-*", "By:       2026-12-01", "arn:aws:iam::111122223333:user/alice", "IAM.3", "Approving lets it:\n  - create a new access key"}},
	}
	for _, e := range append(rotation.ErrorNames, "States.Timeout", "Runtime.ExitError") {
		state := map[string]string{"InvalidInput": "Validate", "UserNotFound": "Validate", "KeyLimitReached": "Validate", "RotationInProgress": "Validate",
			"TargetFailed": "Distribute", "OldKeyStillInUse": "VerifyOldKeyUnused", "ApprovalRejected": "Approve", "States.Timeout": "Approve", "ApprovalForged": "VerifyApproval"}[e]
		if state == "" {
			state = "CreateKey"
		}
		data := plan
		if state != "Validate" && state != "Approve" && state != "VerifyApproval" {
			data += "," + key
		}
		says := []string{"what went wrong"}
		if e == "ApprovalRejected" {
			// Whoever answered the token wrote this cause, and the record
			// holds no verified rejection: it is not repeated.
			says = []string{"not verified", "not repeated"}
		}
		cases = append(cases, tc{kind: "failure", state: state, errName: e, data: data + `,"failure":{"` + state + `":{"Error":"` + e + `","Cause":"{\"errorMessage\":\"what went wrong\"}"}}`, says: says})
	}
	cases = append(cases, tc{kind: "failure", state: "CleanupTargets", errName: "TargetFailed", data: plan + "," + key + "," + receipt + `,"retire":{"keyId":"AKIAOLD","status":"Deleted"},"failure":{"CleanupTargets":{"Error":"TargetFailed","Cause":"kept old credential"}}`, says: []string{"do not re-run"}})
	for _, c := range cases {
		t.Run(c.kind+" "+c.state+" "+c.errName, func(t *testing.T) {
			var in NotifyInput
			in.Kind, in.Now, in.Token = c.kind, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), "tok-123"
			if err := json.Unmarshal([]byte(`{"input":{"user":"mailer"},"execution":"`+exec+`",`+c.data+`}`), &in.Data); err != nil {
				t.Fatal(err)
			}
			topic := &fakeTopic{}
			recs := &fakeApprovals{}
			if _, err := (&Notify{Topic: topic, Records: recs}).Run(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(topic.body, in.Token) {
				t.Errorf("the %s message holds the task token (issue 14: it is kept in the record only):\n%s", c.kind, topic.body)
			}
			if c.kind == "approval" && (recs.req.TokenSHA256 != rotation.TokenDigest(in.Token) || recs.req.MinApprovals != 2 || len(recs.req.Approvers) != 1 || recs.req.RequestedBy != "arn:aws:iam::111122223333:user/alice") {
				t.Errorf("the approval request kept in the record: %+v", recs.req)
			}
			if len(topic.subject) >= 100 || !strings.Contains(topic.subject, "mailer") || strings.ContainsFunc(topic.subject, func(r rune) bool { return r > 0x7e || r < 0x20 }) {
				t.Errorf("subject %q: want ASCII, ≤ 100 characters, naming the user", topic.subject)
			}
			body := topic.body
			for _, s := range append([]string{"What has changed:", "What is safe:", "Next:", "Runbook:   docs/runbook.md#", "Console:   https://ap-northeast-1.console.aws.amazon.com/states/", "mailer"}, c.says...) {
				if !strings.Contains(body, s) {
					t.Errorf("the %s message does not say %q:\n%s", c.kind, s, body)
				}
			}
			if c.state != "" && !strings.Contains(body, "State:  "+c.state) {
				t.Errorf("the alert does not name the state %s", c.state)
			}
			_, js, ok := strings.Cut(body, JSONMarker)
			var a Alert
			if !ok || json.Unmarshal([]byte(js), &a) != nil {
				t.Fatalf("no JSON block:\n%s", body)
			}
			if a.User != "mailer" || a.Kind != c.kind || a.Error != c.errName || len(a.Changed) == 0 || len(a.Next) == 0 || a.Safe == "" || a.Subject != topic.subject {
				t.Errorf("JSON block %+v", a)
			}
			anchor := a.Runbook[strings.Index(a.Runbook, "#")+1:]
			if !anchors[anchor] {
				t.Errorf("runbook section #%s does not exist in docs/runbook.md (it has %v)", anchor, anchors)
			}
			if c.kind == "failure" && c.state != "Validate" && c.state != "Approve" && c.state != "VerifyApproval" && !strings.Contains(body, "target app") {
				t.Errorf("the alert does not say which key target app holds")
			}
		})
	}
}

// failedAt is the execution data a run holds when state fails, as the ASL
// builds it: what each state before it added.
func failedAt(state string) string {
	const (
		input    = `"input":{"user":"mailer"}`
		plan     = `"plan":{"user":"mailer","record":"keyrotator/users/mailer","oldKeyId":"AKIAOLD","targets":[{"type":"secret","name":"app","secretId":"app/k"}]}`
		locked   = `"plan":{"user":"mailer","record":"keyrotator/users/mailer","oldKeyId":"AKIAOLD","lockVersionId":"v-lock","targets":[{"type":"secret","name":"app","secretId":"app/k"}]}`
		key      = `"key":{"keyId":"AKIANEW","versionId":"v1"}`
		receipts = `"receipts":[{"target":"app","type":"secret","newKeyId":"AKIANEW"}]`
		promote  = `"promote":{"at":"2026-11-01T00:00:00Z"}`
	)
	parts := map[string][]string{
		"Validate":           {input},
		"Preflight":          {input, plan},
		"TakeLock":           {input, plan},
		"Approve":            {input, locked},
		"CreateKey":          {input, locked},
		"Distribute":         {input, locked, key},
		"Promote":            {input, locked, key, receipts},
		"VerifyOldKeyUnused": {input, locked, key, receipts, promote},
		"AlertStillInUse":    {input, locked, key, receipts, promote},
		"DeactivateOldKey":   {input, locked, key, receipts, promote},
		"DeleteOldKey":       {input, locked, key, receipts, promote, `"retire":{"keyId":"AKIAOLD","status":"Inactive"}`},
		"CleanupTargets":     {input, locked, key, receipts, promote, `"retire":{"keyId":"AKIAOLD","status":"Deleted"}`},
	}[state]
	return strings.Join(parts, ",")
}

// Every failure alert's words are true of the state it failed in (finding 8
// of issue 11): for every (failed state × error) pair, what the alert says
// was made, is held, is safe to do and where the runbook is matches what the
// execution data shows was done.
func TestFailureAlertWordsMatchTheRun(t *testing.T) {
	t.Parallel()
	anchors := runbookAnchors(t)
	states := []string{"Validate", "Preflight", "TakeLock", "Approve", "CreateKey", "Distribute", "Promote",
		"VerifyOldKeyUnused", "AlertStillInUse", "DeactivateOldKey", "DeleteOldKey", "CleanupTargets"}
	errs := append(slices.Clone(rotation.ErrorNames), "States.Timeout", "States.Runtime", "Runtime.ExitError",
		"Lambda.TooManyRequestsException", "Sandbox.Timedout", "wrapError")
	for _, state := range states {
		for _, e := range errs {
			t.Run(state+"/"+e, func(t *testing.T) {
				var in NotifyInput
				in.Kind = "failure"
				data := `{"execution":"arn:aws:states:us-east-1:111122223333:execution:keyrotator:x",` + failedAt(state) +
					`,"failure":{"` + state + `":{"Error":"` + e + `","Cause":"what went wrong"}}}`
				if err := json.Unmarshal([]byte(data), &in.Data); err != nil {
					t.Fatal(err)
				}
				topic := &fakeTopic{}
				if _, err := (&Notify{Topic: topic}).Run(context.Background(), in); err != nil {
					t.Fatal(err)
				}
				body, _, _ := strings.Cut(topic.body, JSONMarker)
				hasKey, hasLock := in.Data.Key != nil, in.Data.Plan != nil && in.Data.Plan.LockVersionID != ""
				claims := []struct {
					says string
					true bool
					why  string
				}{
					{"reuses the new key", hasKey, "no key was made"},
					{"lock of this run", hasLock, "the run took no lock"},
					{"takes over the lock", hasLock, "the run took no lock"},
					{"no key was created", !hasKey, "a key was made"},
					{"no key was made", !hasKey, "a key was made"},
					{"re-running is safe", slices.Contains(transient, e) && state != "CleanupTargets", e + " is not transient"},
					{"a transient error", slices.Contains(transient, e), e + " is not transient"},
					{"is still active", in.Data.Retire == nil, "the old key was deactivated"},
					{"inactive, not deleted", in.Data.Retire != nil && in.Data.Retire.Status == "Inactive", "the old key is not inactive"},
				}
				for _, c := range claims {
					if strings.Contains(body, c.says) && !c.true {
						t.Errorf("the alert says %q, but %s:\n%s", c.says, c.why, body)
					}
				}
				if !hasKey && !strings.Contains(body, "no key was") {
					t.Errorf("no key was made, and the alert does not say so:\n%s", body)
				}
				if hasKey && !strings.Contains(body, "new key AKIANEW exists") {
					t.Errorf("the alert does not say the new key exists:\n%s", body)
				}
				anchor := topic.body[strings.Index(topic.body, "docs/runbook.md#")+len("docs/runbook.md#"):]
				anchor = anchor[:strings.IndexAny(anchor, "\n\"")]
				want := map[string]string{"AccessDenied": "accessdenied", "Internal": "internal", "States.Runtime": "internal", "wrapError": "internal",
					"Runtime.ExitError": "retryable", "Lambda.TooManyRequestsException": "retryable", "Sandbox.Timedout": "retryable"}[e]
				switch {
				case state == "CleanupTargets":
					want = "cleanup"
				case e == "States.Timeout" && state == "Approve":
					want = "approvaltimedout"
				case want == "" && slices.Contains(rotation.ErrorNames, e):
					want = strings.ToLower(e)
				case want == "":
					want = "internal"
				}
				if anchor != want || !anchors[anchor] {
					t.Errorf("the alert links #%s, want #%s (in docs/runbook.md: %v)", anchor, want, anchors[anchor])
				}
			})
		}
	}
}
