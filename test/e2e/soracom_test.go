package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/targets/soracom"
	"github.com/keyrotator/keyrotator/functions/tasks"
	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/pipeline/pipelinetest"
	"github.com/keyrotator/keyrotator/local/sandbox"
	sbsoracom "github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

// The first credential a SORACOM operator keeps the fixture's old key in,
// as the source post made it by hand.
const oldCredential = "aws-soracom-funnel-20260901"

// soracomAccount is an operator with groups that push data with the old key.
type soracomAccount struct {
	op                 *sbsoracom.Operator
	authKeyID, authKey string
	target             map[string]any
	funnel             []string // groups that must move: Funnel or Funk on the old credential
	other              []string // groups that must stay as they are
}

// soracomOperator makes an operator whose credential holds the fixture's
// key and n groups whose Funnel (or, every fifth, Funk) configuration points
// at it, half storing credentialsId as a string and half as
// {"$credentialsId": …}; plus a group of another namespace and one on an
// unrelated credential, which must stay untouched. The SAM user's auth key
// joins the I1 scan.
func (h *H) soracomOperator(f fixture, name string, n int, strategy string) soracomAccount {
	h.t.Helper()
	h.consumers(f.user)
	authKey := "secret-" + name + "-" + strings.Repeat("k", 24)
	h.secrets = append(h.secrets, authKey)
	op, err := h.sb.Soracom.AddOperator(sbsoracom.OperatorConfig{Coverage: "jp", SAMUsers: []sbsoracom.SAMUser{{
		Name: "keyrotator", AuthKeyID: "keyId-" + name, AuthKey: authKey,
		Permissions: []string{"Credential:listCredentials", "Credential:createCredential", "Credential:updateCredential", "Credential:deleteCredential", "Group:listGroups", "Group:putConfigurationParameters"},
	}}})
	if err != nil {
		h.t.Fatal(err)
	}
	awsCred := func(id, secret string) sbsoracom.CredentialInput {
		return sbsoracom.CredentialInput{Type: "aws-credentials", Description: "made by hand", Credentials: map[string]any{"accessKeyId": id, "secretAccessKey": secret}}
	}
	if err := op.PutCredential(oldCredential, awsCred(f.old.AccessKeyID, f.old.SecretAccessKey)); err != nil {
		h.t.Fatal(err)
	}
	// Another team's credential: a key of another user, on another credential.
	other := h.sb.User(h.t, name+"-other-team", 1)[0]
	h.consumers(name + "-other-team")
	if err := op.PutCredential("other-team-kinesis", awsCred(other.AccessKeyID, other.SecretAccessKey)); err != nil {
		h.t.Fatal(err)
	}
	acct := soracomAccount{op: op, authKeyID: "keyId-" + name, authKey: authKey}
	for i := range n {
		var ref any = oldCredential
		if i%2 == 1 {
			ref = map[string]any{"$credentialsId": oldCredential}
		}
		ns, dest := "SoracomFunnel", map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://example.iot.ap-northeast-1.amazonaws.com/sensors/#{imsi}"}
		if i%5 == 4 {
			ns, dest = "SoracomFunk", map[string]any{"provider": "aws", "service": "lambda", "resourceUrl": "arn:aws:lambda:ap-northeast-1:111122223333:function:ingest"}
		}
		id, err := op.AddGroup(sbsoracom.GroupConfig{Name: fmt.Sprintf("sensors-%03d", i), Configuration: map[string]map[string]any{
			ns: {"enabled": true, "destination": dest, "credentialsId": ref, "contentType": "application/json"},
		}})
		if err != nil {
			h.t.Fatal(err)
		}
		acct.funnel = append(acct.funnel, id)
	}
	for _, g := range []sbsoracom.GroupConfig{
		{Name: "harvest-only", Configuration: map[string]map[string]any{"SoracomHarvest": {"enabled": true}}},
		{Name: "other-team", Configuration: map[string]map[string]any{"SoracomFunnel": {"enabled": true, "credentialsId": "other-team-kinesis",
			"destination": map[string]any{"provider": "aws", "service": "kinesis", "resourceUrl": "https://kinesis.ap-northeast-1.amazonaws.com/other"}}}},
	} {
		id, err := op.AddGroup(g)
		if err != nil {
			h.t.Fatal(err)
		}
		acct.other = append(acct.other, id)
	}
	conn, _ := json.Marshal(map[string]string{"authKeyId": "keyId-" + name, "authKey": authKey, "coverage": "jp", "endpoint": op.Endpoint()})
	h.putConnection("keyrotator/connections/"+name, conn)
	acct.target = map[string]any{"type": "soracom", "name": name, "connection": "keyrotator/connections/" + name, "credentialPrefix": "aws-soracom-funnel"}
	if strategy != "" {
		acct.target["strategy"] = strategy
	}
	return acct
}

// groupsPushWith waits until every group that must move delivers with key id.
func (h *H) groupsPushWith(a soracomAccount, id string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var behind []string
		for _, g := range a.op.Groups() {
			if slices.Contains(a.funnel, g.ID) && (g.Push.LastKeyID != id || g.Push.LastError != "") {
				behind = append(behind, fmt.Sprintf("%s: %+v", g.ID, g.Push))
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d groups do not push with %s, e.g. %s", len(behind), id, behind[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pushedAgain waits until every group that must move has pushed once more
// since the call, whether the push worked or not.
func (h *H) pushedAgain(a soracomAccount) {
	h.t.Helper()
	before := map[string]int{}
	for _, g := range a.op.Groups() {
		before[g.ID] = g.Push.Sent + g.Push.Failed
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var behind []string
		for _, g := range a.op.Groups() {
			if slices.Contains(a.funnel, g.ID) && g.Push.Sent+g.Push.Failed <= before[g.ID] {
				behind = append(behind, g.ID)
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d groups have not pushed in 10 s, e.g. %s", len(behind), behind[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// credentialOf is the credential id a group's namespace points at, and
// whether it is stored as {"$credentialsId": …}.
func credentialOf(g sbsoracom.GroupView) (id, ns string, wrapped bool) {
	for _, ns := range []string{"SoracomFunnel", "SoracomFunk"} {
		switch v := g.Configuration[ns]["credentialsId"].(type) {
		case string:
			return v, ns, false
		case map[string]any:
			s, _ := v["$credentialsId"].(string)
			return s, ns, true
		}
	}
	return "", "", false
}

func TestSoracomTarget(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		strategy string
		groups   int
	}{{"newCredential", 1}, {"newCredential", 250}, {"inPlace", 1}, {"inPlace", 250}} {
		t.Run(fmt.Sprintf("%s, %d groups", tt.strategy, tt.groups), func(t *testing.T) {
			t.Parallel()
			h := Start(t)
			f := h.seed("funnel-key", 95)
			acct := h.soracomOperator(f, "funnel", tt.groups, tt.strategy)
			before := map[string]sbsoracom.GroupView{}
			for _, g := range acct.op.Groups() {
				before[g.ID] = g
			}
			h.groupsPushWith(acct, f.old.AccessKeyID)

			r := h.Run(f.input(map[string]any{"targets": []map[string]any{acct.target}}))
			if r.Status != types.ExecutionStatusSucceeded {
				t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
			}
			if !slices.Contains(r.Visited(), "UpdateSoracom") {
				t.Fatalf("visited %v", r.Visited())
			}
			var out struct {
				Key      struct{ KeyID string } `json:"key"`
				Receipts []rotation.Receipt     `json:"receipts"`
			}
			r.StateOutput(t, "Distribute", &out)
			newKey := out.Key.KeyID
			if len(out.Receipts) != 1 || out.Receipts[0].Soracom == nil {
				t.Fatalf("receipts %+v", out.Receipts)
			}
			rc := out.Receipts[0].Soracom
			if rc.Strategy != tt.strategy || rc.Operator != acct.op.ID() || len(rc.Groups) != tt.groups {
				t.Errorf("receipt: strategy %s operator %s, %d groups; want %s %s %d", rc.Strategy, rc.Operator, len(rc.Groups), tt.strategy, acct.op.ID(), tt.groups)
			}
			want := oldCredential // inPlace: the same credential, now with the new key
			if tt.strategy == "newCredential" {
				want = "aws-soracom-funnel-" + time.Now().UTC().Format("20060102")
				if rc.NewCredential != want || !slices.Equal(rc.OldCredentials, []string{oldCredential}) {
					t.Errorf("receipt: new %s old %v", rc.NewCredential, rc.OldCredentials)
				}
			}
			for _, gc := range rc.Groups {
				if gc.To != want || gc.From != oldCredential {
					t.Errorf("receipt group %+v", gc)
				}
			}
			// Every group that used the old credential uses the new one, in
			// the shape it stored it in; the others are as they were.
			for _, g := range acct.op.Groups() {
				was := before[g.ID]
				if slices.Contains(acct.other, g.ID) {
					if fmt.Sprint(g.Configuration) != fmt.Sprint(was.Configuration) {
						t.Errorf("group %s (%s) changed: %v → %v", g.ID, g.Name, was.Configuration, g.Configuration)
					}
					continue
				}
				id, ns, wrapped := credentialOf(g)
				_, wasNS, wasWrapped := credentialOf(was)
				if id != want || ns != wasNS || wrapped != wasWrapped {
					t.Errorf("group %s: %s in %s (wrapped %v), want %s in %s (wrapped %v)", g.ID, id, ns, wrapped, want, wasNS, wasWrapped)
				}
				if g.Configuration[ns]["contentType"] != "application/json" || g.Configuration[ns]["destination"] == nil {
					t.Errorf("group %s lost the rest of its %s configuration: %v", g.ID, ns, g.Configuration[ns])
				}
			}
			h.groupsPushWith(acct, newKey)
			if ks := h.keys(f.user); len(ks) != 1 || ks[newKey] != "Active" {
				t.Errorf("keys after: %v", ks)
			}
			creds := map[string]sbsoracom.CredentialView{}
			for _, c := range acct.op.Credentials() {
				creds[c.ID] = c
			}
			if tt.strategy == "newCredential" {
				if _, ok := creds[oldCredential]; ok {
					t.Errorf("the old credential %s was not cleaned up", oldCredential)
				}
				if len(creds) != 2 { // the new one and the other team's
					t.Errorf("credentials after: %v", creds)
				}
			} else if len(creds) != 2 || creds[oldCredential].AccessKeyID != newKey {
				t.Errorf("credentials after: %v", creds)
			}
			var v struct {
				Verify rotation.Verification `json:"verify"`
			}
			r.StateOutput(t, "VerifyOldKeyUnused", &v)
			if len(v.Verify.CredentialUses) == 0 || !strings.Contains(v.Verify.Evidence, "SORACOM credential "+want) {
				t.Errorf("the verification does not report SORACOM's last use: %+v", v.Verify)
			}
			if msgs := string(h.admin("/sns/messages")); !strings.Contains(msgs, want) {
				t.Errorf("the success notice does not name the credential %s", want)
			}
		})
	}
}

// A failure after half the groups were repointed leaves both keys active
// and every group delivering; the alert says exactly which groups moved and
// which did not; a re-run moves the rest with the same key and credential.
func TestSoracomPartialRepointThenReRun(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("funnel-key", 95)
	acct := h.soracomOperator(f, "funnel", 250, "")
	h.groupsPushWith(acct, f.old.AccessKeyID)
	// The SAM user loses putConfigurationParameters after 125 groups: not
	// retryable, so the run fails there.
	acct.op.Fail(sbsoracom.Failure{Operation: "putConfigurationParameters", Status: http.StatusForbidden, After: 125, Times: 1000})

	r := h.Run(f.input(map[string]any{"targets": []map[string]any{acct.target}}))
	if r.Status != types.ExecutionStatusFailed || r.Error != "TargetFailed" {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	if ks := h.keys(f.user); len(ks) != 2 || ks[f.old.AccessKeyID] != "Active" {
		t.Fatalf("keys after the failure: %v (both must stay active)", ks)
	}
	var moved, stayed []string
	newCred := ""
	for _, g := range acct.op.Groups() {
		if !slices.Contains(acct.funnel, g.ID) {
			continue
		}
		id, _, _ := credentialOf(g)
		if id == oldCredential {
			stayed = append(stayed, g.ID)
		} else {
			moved, newCred = append(moved, g.ID), id
		}
	}
	if len(moved) != 125 || len(stayed) != 125 {
		t.Fatalf("%d groups moved, %d stayed: want 125 and 125", len(moved), len(stayed))
	}
	// Every group still delivers: the moved ones with the new key, the rest with the old.
	h.pushedAgain(acct)
	for _, g := range acct.op.Groups() {
		if slices.Contains(acct.funnel, g.ID) && g.Push.LastError != "" {
			t.Errorf("group %s fails to deliver: %s", g.ID, g.Push.LastError)
		}
	}
	alert := string(h.admin("/sns/messages"))
	var msgs []struct{ Subject, Message string }
	_ = json.Unmarshal([]byte(alert), &msgs)
	body := ""
	for _, m := range msgs {
		if strings.Contains(m.Subject, "failed") {
			body = m.Message
		}
	}
	for _, want := range []string{f.user, "State:  Distribute", `target "funnel"`, "Group:putConfigurationParameters", "125 group(s) already use the new credential " + newCred, "125 still use the old credential " + oldCredential, "both keys work"} {
		if !strings.Contains(body, want) {
			t.Errorf("the alert does not say %q:\n%s", want, body)
		}
	}
	alreadyAt := strings.Index(body, "already use the new credential")
	stillAt := strings.Index(body, "still use the old credential")
	for _, id := range moved {
		if i := strings.Index(body, id); i < alreadyAt || i > stillAt {
			t.Errorf("the alert does not list moved group %s among the moved", id)
		}
	}
	for _, id := range stayed {
		if i := strings.LastIndex(body, id); i < stillAt { // the first failed one is also named in the cause
			t.Errorf("the alert does not list group %s among those still on the old credential", id)
		}
	}

	acct.op.ClearFailures()
	r = h.Run(f.input(map[string]any{"targets": []map[string]any{acct.target}}))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("the re-run: %s %s: %s", r.Status, r.Error, r.Cause)
	}
	ks := h.keys(f.user)
	if len(ks) != 1 {
		t.Fatalf("keys after the re-run: %v", ks)
	}
	for id := range ks {
		h.groupsPushWith(acct, id)
	}
	var names []string
	for _, c := range acct.op.Credentials() {
		names = append(names, c.ID)
	}
	if !slices.Equal(names, []string{newCred, "other-team-kinesis"}) && !slices.Equal(names, []string{"other-team-kinesis", newCred}) {
		t.Errorf("credentials after the re-run: %v (want the first run's new one, reused, and the other team's)", names)
	}
}

// A SORACOM 500 after half the groups is retried by the state machine: the
// retry resumes where the first attempt stopped, within the same execution.
func TestSoracomTransientFailureIsResumedByTheRetry(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("funnel-key", 95)
	acct := h.soracomOperator(f, "funnel", 20, "")
	acct.op.Fail(sbsoracom.Failure{Operation: "putConfigurationParameters", Status: http.StatusInternalServerError, After: 10, Times: 1})
	r := h.Run(f.input(map[string]any{"targets": []map[string]any{acct.target}}))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	if n := strings.Count(strings.Join(r.Visited(), ","), "UpdateSoracom"); n != 1 {
		t.Errorf("UpdateSoracom entered %d times", n)
	}
	var retried bool
	for _, e := range r.History {
		if d := e.LambdaFunctionFailedEventDetails; d != nil && aws.ToString(d.Error) == "Retryable" {
			retried = true
		}
	}
	if !retried {
		t.Error("the 500 did not fail an attempt: this test proves nothing")
	}
	var out struct {
		Receipts []rotation.Receipt `json:"receipts"`
	}
	r.StateOutput(t, "Distribute", &out)
	changed := 0
	for _, g := range out.Receipts[0].Soracom.Groups {
		if g.Changed {
			changed++
		}
	}
	if len(out.Receipts[0].Soracom.Groups) != 20 || changed != 10 {
		t.Errorf("receipt: %d groups, %d moved by the retry; want 20 and 10", len(out.Receipts[0].Soracom.Groups), changed)
	}
	creates := 0
	for _, c := range acct.op.Calls() {
		if c.Operation == "createCredential" && c.Status == http.StatusCreated {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("%d credentials created, want 1 (I5)", creates)
	}
}

// I5 for the SORACOM tasks: UpdateSoracom and CleanupTargets each crash once
// after their work; the run ends with one new credential and the old one gone.
func TestSoracomTasksSurviveACrashAfterTheirWork(t *testing.T) {
	t.Parallel()
	for _, tk := range tasks.All {
		if !tk.ReadsConnections(rotation.TargetSoracom) {
			continue // the tasks that call SORACOM: UpdateSoracom, VerifyOldKeyUnused, CleanupTargets
		}
		task := tk.Function()
		t.Run(task, func(t *testing.T) {
			t.Parallel()
			h := Start(t)
			f := h.seed("crash-"+task, 95)
			acct := h.soracomOperator(f, "funnel", 3, "")
			h.sb.Fault(t, sandbox.Fault{Service: "lambda", Action: "Invoke", Resource: task, Crash: true})
			r := h.Run(f.input(map[string]any{"targets": []map[string]any{acct.target}}))
			if r.Status != types.ExecutionStatusSucceeded {
				t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
			}
			crashed := false
			for _, e := range r.History {
				if d := e.LambdaFunctionFailedEventDetails; d != nil && aws.ToString(d.Error) == "Runtime.ExitError" {
					crashed = true
				}
			}
			if !crashed {
				t.Fatal("the fault did not crash the task: this test proves nothing")
			}
			creds := acct.op.Credentials()
			if len(creds) != 2 {
				t.Errorf("credentials after: %+v (want the new one and the other team's)", creds)
			}
			for _, c := range creds {
				if c.ID == oldCredential {
					t.Error("the old credential survived")
				}
			}
			if ks := h.keys(f.user); len(ks) != 1 {
				t.Errorf("keys after: %v", ks)
			}
		})
	}
}

// A group repointed back to the old credential after the cut-over is use of
// the old key: the verification sees it (IAM and SORACOM), the old key and
// the old credential stay.
func TestSoracomGroupMissedIsSeen(t *testing.T) {
	t.Parallel()
	// The group put back pushes with the old key every 25 ms of real time,
	// and IAM shows a use 4 sandbox hours late: at waitScale the 7-day
	// WaitForUse lasts 60 ms, so on a loaded machine the wait could end
	// before a push IAM shows, and the cause lacked the old key's use (seen
	// once in make test). Ten times longer, the wait (0.6 s) holds pushes.
	h := startIn(t, fullsandbox.Options{WaitScale: 10 * waitScale, EnforceIAM: true}, pipelinetest.Deploy{AnyUser: true})
	f := h.seed("funnel-key", 95)
	acct := h.soracomOperator(f, "funnel", 2, "")
	// Once it has moved, put one group back on the old credential through
	// SORACOM's API, as a person with the console open might, before the
	// wait ends.
	person := soracom.NewClient(acct.op.Endpoint(), acct.authKeyID, acct.authKey, time.Minute, time.Second)
	moved := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if g, ok := acct.op.Group(acct.funnel[0]); ok {
				if id, ns, _ := credentialOf(g); id != oldCredential && id != "" {
					_, err := person.PutConfiguration(context.Background(), g.ID, ns, []soracom.Param{{Key: "credentialsId", Value: oldCredential}})
					moved <- err
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
		moved <- errors.New("the group never moved")
	}()
	r := h.Run(f.input(map[string]any{"targets": []map[string]any{acct.target}, "verifyAttempts": 1}))
	if err := <-moved; err != nil {
		t.Fatalf("putting the group back: %v", err)
	}
	if r.Status != types.ExecutionStatusFailed || r.Error != "OldKeyStillInUse" {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	if ks := h.keys(f.user); len(ks) != 2 || ks[f.old.AccessKeyID] != "Active" {
		t.Errorf("keys after: %v", ks)
	}
	if !strings.Contains(r.Cause, "old key "+f.old.AccessKeyID+" was last used") || !strings.Contains(r.Cause, "SORACOM credential "+oldCredential+" (old, target funnel) last used") {
		t.Errorf("the evidence does not show the old key's and the old credential's use: %s", r.Cause)
	}
	found := false
	for _, c := range acct.op.Credentials() {
		found = found || c.ID == oldCredential
	}
	if !found {
		t.Error("the old credential was deleted while a group uses it")
	}
}

// A dry run asks every target what it would change — the Auth0 tenant, the
// SORACOM groups, the app's secret, each read now — and writes nothing
// anywhere: no AWS write, no Auth0 PATCH, no SORACOM change.
func TestDryRunAsksEveryTarget(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("dry-everything", 95)
	acct := h.soracomOperator(f, "funnel", 3, "")
	tenant := h.auth0Tenant(f, "prod")
	seq := h.sb.Server.Calls().Last()
	r := h.Run(f.input(map[string]any{"dryRun": true, "targets": []any{
		map[string]string{"type": "secret", "name": "app", "secretId": f.secretID}, tenant, acct.target}}))
	if r.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	for _, w := range h.writesSince(seq) {
		// The consumers keep sending mail and pushing data with the old
		// key; keyrotator's functions must write nothing.
		if strings.Contains(w.Principal, "keyrotator-") {
			t.Errorf("a dry run wrote to AWS: %+v", w)
		}
	}
	for _, c := range acct.op.Calls() {
		if c.Method != http.MethodGet && c.Operation != "auth" {
			t.Errorf("a dry run called SORACOM's %s %s", c.Method, c.Path)
		}
	}
	if creds := acct.op.Credentials(); len(creds) != 2 {
		t.Errorf("credentials after a dry run: %+v", creds)
	}
	h.sendsWith("prod", f.old.AccessKeyID)
	var out struct {
		TargetPlans []rotation.Receipt `json:"targetPlans"`
	}
	if err := json.Unmarshal([]byte(r.Output), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.TargetPlans) != 3 {
		t.Fatalf("target plans %+v", out.TargetPlans)
	}
	said := map[string]string{}
	for _, p := range out.TargetPlans {
		if p.PreviousKeyID != f.old.AccessKeyID || p.NewKeyID != "" || p.Changed {
			t.Errorf("target %s's plan %+v", p.Target, p)
		}
		said[p.Target] = strings.Join(p.Planned, "\n")
	}
	for target, wants := range map[string][]string{
		"app":    {f.secretID, "accessKeyId", "keeping its 1 other field"},
		"prod":   {"PATCH", "ap-northeast-1"},
		"funnel": {"create credential aws-soracom-funnel-" + time.Now().UTC().Format("20060102"), "repoint 3 group(s)", acct.funnel[0], acct.funnel[2], "delete the old credential " + oldCredential},
	} {
		for _, w := range wants {
			if !strings.Contains(said[target], w) {
				t.Errorf("target %s's plan does not say %q:\n%s", target, w, said[target])
			}
		}
	}
	for _, other := range acct.other {
		if strings.Contains(said["funnel"], other) {
			t.Errorf("the plan would repoint group %s, which uses no credential of the target", other)
		}
	}
}

// A dry run that finds a target it could not update fails there, saying
// why, before any key exists.
func TestDryRunFindsABrokenTarget(t *testing.T) {
	t.Parallel()
	h := Start(t)
	f := h.seed("dry-broken", 95)
	acct := h.soracomOperator(f, "funnel", 2, "")
	if err := acct.op.SetPermissions("keyrotator", []string{"Group:listGroups"}); err != nil {
		t.Fatal(err)
	}
	r := h.Run(f.input(map[string]any{"dryRun": true, "targets": []any{acct.target}}))
	if r.Status != types.ExecutionStatusFailed || r.Error != "TargetFailed" || !strings.Contains(r.Cause, "may not call Credential:listCredentials") {
		t.Fatalf("status %s %s: %s", r.Status, r.Error, r.Cause)
	}
	if _, a := h.alertOf(r.ARN, "failure"); a.State != "Preflight" || !strings.Contains(strings.Join(a.Changed, " "), "nothing") {
		t.Errorf("the alert: %+v", a)
	}
	if ks := h.keys(f.user); len(ks) != 1 {
		t.Errorf("keys after: %v", ks)
	}
}
