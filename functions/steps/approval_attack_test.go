package steps

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

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyrotator/keyrotator/functions/aws/kmsmac"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// Attacks on the approval gate (issue 14), as a hostile user with
// states:* (who can read the execution's history, so the task token, and
// answer it raw: SendTaskSuccess, SendTaskFailure with any error name and
// cause), an unlucky operator or an auditor would try them. Each test
// generates its cases; each was written failing, then fixed.

// approveFailureAlert is the failure alert (and the Notice the Fail state
// takes its error and cause from) of a run whose Approve state failed with
// errName and cause — whatever answered the task token wrote both.
func approveFailureAlert(t *testing.T, a *approvalRun, errName, cause string) (string, rotation.Notice) {
	t.Helper()
	in := a.in("failure")
	in.Data.Failure = map[string]rotation.StateError{"Approve": {Error: errName, Cause: cause}}
	topic := &fakeTopic{}
	res, err := (&Notify{Topic: topic, Records: a.records, Seals: kmsmac.New(a.kms, apKeyARN)}).Run(context.Background(), in)
	if err != nil {
		t.Fatalf("notify: %v", err)
	}
	return topic.subject + "\n" + topic.body, res
}

// A raw SendTaskFailure on the Approve state's token names any error and
// writes any cause: "rejected by <the CEO> (verified by answerapproval)",
// an ApprovalForged that "names what arrived", terminal escapes, 30 KB of
// instructions. The alert and the execution's error and cause must not
// pass any of it off as keyrotator's word: a rejection is said verified,
// and its rejector named, only from the run's record; ApprovalForged is
// VerifyApproval's error, never Approve's; any other error's cause is
// quoted as unverified, printable and bounded.
func TestAttackRawApproveFailureCarriesNoAnswerersWords(t *testing.T) {
	t.Parallel()
	const ceo = "arn:aws:iam::111122223333:user/ceo"
	const marker = "MALLORY-WROTE-THIS"
	causes := []string{
		"rejected by " + ceo + " (verified by answerapproval): " + marker,
		`{"errorMessage":"rejected by ` + ceo + ` (verified by answerapproval) ` + marker + `","errorType":"ApprovalRejected"}`,
		"\x1b[2J\x1b[31m" + marker + "\u202e" + strings.Repeat("run: aws iam delete-user --user-name x ", 800),
		"what arrived: approvedBy " + ceo + " " + marker,
	}
	names := []string{"ApprovalRejected", "ApprovalForged", "Internal", "AccessDenied", "States.Timeout", "Approval\u0430Rejected\x1b[0m" + marker}
	for _, errName := range names {
		for i, cause := range causes {
			t.Run(fmt.Sprintf("%q/%d", errName, i), func(t *testing.T) {
				t.Parallel()
				a := newApprovalRun(t, 1) // the record holds no answer: the failure was raw
				text, res := approveFailureAlert(t, a, errName, cause)
				all := text + "\n" + res.Error + "\n" + res.Cause
				for _, r := range all {
					if (r < 0x20 && r != '\n') || r == 0x7f || r == 0x1b || r == '\u202e' || r == '\u0430' {
						t.Fatalf("the alert carries control or look-alike character %U:\n%.600s", r, all)
					}
				}
				// Outside a cause labelled unverified, nothing the answerer
				// wrote: no "verified", no CEO, no marker.
				ours := strings.ReplaceAll(all, res.Cause, "")
				if strings.Contains(ours, "verified by answerapproval") || strings.Contains(ours, "rejection is verified") || strings.Contains(ours, marker) || strings.Contains(ours, "user/ceo") {
					t.Errorf("a raw failure's words are keyrotator's:\n%.2000s", ours)
				}
				if (errName == "ApprovalRejected" || errName == "ApprovalForged") && (strings.Contains(all, marker) || strings.Contains(all, "user/ceo")) {
					t.Errorf("the alert of a raw %s repeats the answerer's words:\n%.2000s", errName, all)
				}
				if strings.Contains(all, marker) && !strings.Contains(res.Cause, "unverified") {
					t.Errorf("the answerer's cause is quoted without saying it is unverified: %.300s", res.Cause)
				}
				if len(res.Cause) > 1024 || len(res.Error) > 128 {
					t.Errorf("the answerer's error (%d bytes) and cause (%d bytes) are not bounded", len(res.Error), len(res.Cause))
				}
			})
		}
	}
}

// A verified rejection raced by a raw one: answerapproval recorded bob's
// rejection, and a raw SendTaskFailure ApprovalRejected naming the CEO
// reached the token first. The alert names bob (the record), never the
// raw cause's rejector.
func TestAttackRawRejectionRacesAVerifiedOne(t *testing.T) {
	t.Parallel()
	const ceo = "arn:aws:iam::111122223333:user/ceo"
	a := newApprovalRun(t, 2)
	raw := "rejected by " + ceo + " (verified by answerapproval): fire everyone"
	// Bob's rejection is recorded; the raw answer reached the token
	// between that write and answerapproval's SendTaskFailure, so the
	// Approve state failed with the raw cause.
	if st, r := reply(t, a.ask(context.Background(), apBob, "reject", "not now")); st != 200 {
		t.Fatalf("bob's rejection: %d %+v", st, r)
	}
	req, ok, err := a.records.PendingApproval(context.Background(), ckUser, execA)
	if err != nil || !ok || req.Rejected == nil || req.Rejected.By != apBob {
		t.Fatalf("the record does not hold bob's rejection: %+v %v %v", req, ok, err)
	}
	text, res := approveFailureAlert(t, a, "ApprovalRejected", raw)
	if strings.Contains(text+res.Cause, "ceo") || strings.Contains(text+res.Cause, "fire everyone") {
		t.Errorf("the raw rejection's words are in the alert:\n%s\ncause %s", text, res.Cause)
	}
	if !strings.Contains(text, apBob) || !strings.Contains(res.Cause, apBob) {
		t.Errorf("the alert does not name the verified rejector %s:\n%s\ncause %s", apBob, text, res.Cause)
	}
}

// Step Functions lets a closed execution's name be used again 90 days
// after it closed
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html:
// "a name ... can't be reused for 90 days"), and a new execution of the
// same name has the same ARN. Someone with states:* keeps a signed
// approval from a run's history, starts a run of the same name (and input)
// later, and answers its Approve state's token with the old document: it
// names this execution ARN, this requester, approvers of this list. It
// must not pass: the document is bound to the run (the plan's start,
// TakeLock's time), not to its name.
func TestAttackApprovalReplayedOnALaterRunOfTheSameName(t *testing.T) {
	t.Parallel()
	old := newApprovalRun(t, 1)
	if st, r := reply(t, old.ask(context.Background(), apAlice, "approve", "ok")); st != 200 || old.answer.output == "" {
		t.Fatalf("the first run's approval: %d %+v", st, r)
	}
	later := newApprovalRun(t, 1) // the same execution ARN, the same HMAC key
	plan := *later.data.Plan
	plan.StartedAt = old.data.Plan.StartedAt.Add(91 * 24 * time.Hour)
	later.data.Plan = &plan
	inv := later.verify(context.Background(), old.answer.output)
	var forged *rotation.ApprovalForged
	if !errors.As(inv.err, &forged) {
		t.Fatalf("the earlier run's approval passed on a later run of the same name: %v %s", inv.err, inv.out)
	}
	if !strings.Contains(forged.What, "another run") {
		t.Errorf("ApprovalForged does not say the document is another run's: %s", forged.What)
	}
	// The run it was signed for still takes it.
	if v := old.verify(context.Background(), old.answer.output); v.err != nil {
		t.Errorf("the run the approval was signed for refused it: %v", v.err)
	}
}

// Every one-byte change of a signed answer (flip, drop, duplicate) is
// refused as ApprovalForged, or — when it leaves the same document (a
// key's case, white space) — verified as the very approval that was
// signed: a mutation can never change who approved, for whom or which run.
func TestAttackSignedApprovalMutations(t *testing.T) {
	t.Parallel()
	a := newApprovalRun(t, 1)
	if st, _ := reply(t, a.ask(context.Background(), apAlice, "approve", "ok")); st != 200 {
		t.Fatal("setup: alice's approval")
	}
	orig := []byte(a.answer.output)
	want := verifiedApproval(t, a, orig)
	if want == "" {
		t.Fatal("the signed answer does not verify")
	}
	v := &VerifyApproval{MAC: kmsmac.New(a.kms, apKeyARN)}
	mutants := 0
	for i := range orig {
		for _, m := range [][]byte{
			slices.Concat(orig[:i], []byte{orig[i] ^ 0x20}, orig[i+1:]), // case, and ' ' <-> NUL
			slices.Concat(orig[:i], []byte{orig[i] + 1}, orig[i+1:]),
			slices.Concat(orig[:i], orig[i+1:]),
			slices.Concat(orig[:i+1], orig[i:]),
		} {
			mutants++
			in := a.in("")
			in.Data.Answer = m
			got, err := v.Run(context.Background(), in)
			if err != nil {
				if _, ok := errors.AsType[*rotation.ApprovalForged](err); !ok {
					t.Errorf("mutant at %d: %v, want ApprovalForged", i, err)
				}
				continue
			}
			if b, _ := json.Marshal(got); string(b) != want {
				t.Errorf("mutant at %d %q verified as another approval: %s", i, m, b)
			}
		}
	}
	t.Logf("%d mutants", mutants)
}

func verifiedApproval(t *testing.T, a *approvalRun, answer []byte) string {
	t.Helper()
	inv := a.verify(context.Background(), string(answer))
	if inv.err != nil {
		return ""
	}
	return string(inv.out)
}

// The auditor's question: who let this key be made? The issue asks the
// final alert to name the verified approvals; a run that went through
// VerifyApproval says who approved (verified principal, time, comment) in
// its success alert and in any failure alert after it — from $.approval,
// which only VerifyApproval sets, never from the raw answer.
func TestAttackFinalAlertNamesTheVerifiedApprovers(t *testing.T) {
	t.Parallel()
	const ceo = "arn:aws:iam::111122223333:user/ceo"
	a := newApprovalRun(t, 2)
	for _, who := range []string{apAlice, apBob} {
		if st, _ := reply(t, a.ask(context.Background(), who, "approve", "CHG-7\u202e")); st != 200 {
			t.Fatalf("%s's approval: %d", who, st)
		}
	}
	v := a.verify(context.Background(), a.answer.output)
	var approval rotation.Approval
	if v.err != nil || json.Unmarshal(v.out, &approval) != nil {
		t.Fatalf("VerifyApproval: %v", v.err)
	}
	for _, kind := range []string{"success", "failure"} {
		in := a.in(kind)
		in.Data.Approval = &approval
		in.Data.Answer = json.RawMessage(`{"approvedBy":"` + ceo + `"}`) // what a raw answer would have claimed
		if kind == "failure" {
			in.Data.Failure = map[string]rotation.StateError{"CreateKey": {Error: "Internal", Cause: "boom"}}
		}
		topic := &fakeTopic{}
		if _, err := (&Notify{Topic: topic, Records: a.records}).Run(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		_, js, _ := strings.Cut(topic.body, JSONMarker)
		var al Alert
		if err := json.Unmarshal([]byte(js), &al); err != nil {
			t.Fatal(err)
		}
		if len(al.ApprovedBy) != 2 || al.ApprovedBy[0] != apAlice || al.ApprovedBy[1] != apBob {
			t.Errorf("%s alert's approvedBy = %v, want alice's and bob's verified ARNs", kind, al.ApprovedBy)
		}
		if !strings.Contains(topic.body, "Approved: "+apAlice) || !strings.Contains(topic.body, "CHG-7") {
			t.Errorf("%s alert does not name the verified approvers:\n%s", kind, topic.body)
		}
		if strings.Contains(topic.body, "ceo") || strings.ContainsRune(topic.body, '\u202e') {
			t.Errorf("%s alert repeats a raw claim or a bidi control:\n%s", kind, topic.body)
		}
	}
}

// Two approvers and a rejector race (minApprovals 2, alice has approved):
// bob's approval and carol's rejection land between the
// other's read and write, in both orders. Whatever the order, the token
// gets one answer, and the record agrees with it: approved by two with no
// rejection, or rejected with fewer than two approvals.
func TestAttackApproversAndARejectorRace(t *testing.T) {
	t.Parallel()
	const carol = "arn:aws:sts::111122223333:assumed-role/security-audit/carol"
	for _, first := range []string{"approve", "reject"} {
		t.Run(first+" lands in between", func(t *testing.T) {
			t.Parallel()
			a := newApprovalRun(t, 2)
			if st, _ := reply(t, a.ask(context.Background(), apAlice, "approve", "")); st != 200 {
				t.Fatal("alice's approval")
			}
			other := *a.ep
			who, decision, late, lateDecision := apBob, "approve", carol, "reject"
			if first == "reject" {
				who, decision, late, lateDecision = carol, "reject", apBob, "approve"
			}
			a.ep.Records = &racingRecords{answerRecords: a.records, interleave: func() {
				b, _ := json.Marshal(AnswerBody{Execution: execA, Decision: decision})
				req := events.LambdaFunctionURLRequest{Body: string(b)}
				req.RequestContext.HTTP.Method = http.MethodPost
				req.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{UserARN: who}}
				if st, r := reply(t, invokeLambda(context.Background(), "answerapproval", other.HandleURL, req)); st != 200 {
					t.Errorf("%s in between: %d %+v", who, st, r)
				}
			}}
			st, r := reply(t, a.ask(context.Background(), late, lateDecision, ""))
			req, _, err := a.records.PendingApproval(context.Background(), ckUser, execA)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case a.answer.output != "":
				if req.Rejected != nil || len(req.Approvals) != 2 {
					t.Errorf("approved, but the record says %+v", req)
				}
				if v := a.verify(context.Background(), a.answer.output); v.err != nil {
					t.Errorf("the approval does not verify: %v", v.err)
				}
			case a.answer.err == "ApprovalRejected":
				if req.Rejected == nil || req.Rejected.By != carol || len(req.Approvals) >= 2 {
					t.Errorf("rejected, but the record says %+v", req)
				}
			default:
				t.Errorf("the token got no answer: %+v", a.answer)
			}
			t.Logf("%s late: %d %s %q; token %+v", late, st, r.Outcome, r.Message, a.answer)
		})
	}
}

// Whoever may write the run's record (secretsmanager:PutSecretValue on
// keyrotator/users/*: PowerUserAccess, or an application deployer with
// secretsmanager:* — more people than hold lambda:InvokeFunction on the
// endpoint) writes answers into it that answerapproval never recorded:
// "alice approved", or a rejection by the CEO. One listed approver's POST
// must not turn an injected approval into a signed one (minApprovals 2
// met by one person), nor an injected rejection into a "verified" one.
func TestAttackAnswersWrittenIntoTheRecordAreNotTrusted(t *testing.T) {
	t.Parallel()
	const ceo = "arn:aws:iam::111122223333:user/ceo"
	for _, c := range []struct {
		name   string
		inject func(*rotation.ApprovalRequest, time.Time)
	}{
		{"an approval", func(r *rotation.ApprovalRequest, at time.Time) {
			r.Approvals = append(r.Approvals, rotation.ApprovalEntry{By: apAlice, At: at, Comment: "never said this"})
		}},
		{"a rejection", func(r *rotation.ApprovalRequest, at time.Time) { r.Rejected = &rotation.ApprovalEntry{By: ceo, At: at} }},
		{"a second approval beside a real one", func(r *rotation.ApprovalRequest, at time.Time) {
			r.Approvals = append(r.Approvals, rotation.ApprovalEntry{By: "arn:aws:sts::111122223333:assumed-role/security-x/eve", At: at})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := newApprovalRun(t, 2)
			if c.name == "a second approval beside a real one" {
				if st, _ := reply(t, a.ask(context.Background(), apAlice, "approve", "")); st != 200 {
					t.Fatal("alice's real approval")
				}
			}
			req, _, err := a.records.PendingApproval(context.Background(), ckUser, execA)
			if err != nil {
				t.Fatal(err)
			}
			c.inject(&req, a.e.w.now)
			// The record as someone with PutSecretValue writes it: a new
			// version staged AWSPENDING, as answerapproval's own are.
			if _, err := a.records.PutAnswer(context.Background(), ckUser, execA, req); err != nil {
				t.Fatalf("the injected write: %v", err)
			}
			st, r := reply(t, a.ask(context.Background(), apBob, "approve", ""))
			if a.answer.output != "" {
				v := a.verify(context.Background(), a.answer.output)
				t.Fatalf("bob's one approval made the token answered (%d %+v); VerifyApproval: %v %s", st, r, v.err, v.out)
			}
			if st != 409 || !strings.Contains(r.Message, "answerapproval did not record") {
				t.Errorf("bob's answer to a tampered record: %d %+v, want 409 saying the record holds answers answerapproval did not record", st, r)
			}
			// The failure alert (a raw SendTaskFailure ends the run) does
			// not call the injected rejection verified.
			text, res := approveFailureAlert(t, a, "ApprovalRejected", "x")
			if strings.Contains(text+res.Cause, "ceo") || strings.Contains(text, "rejection is verified") {
				t.Errorf("the alert trusts the record's unsealed answers:\n%s", text)
			}
		})
	}
}

// minApprovals 2 by one identity under two spellings: two sessions of one
// role, a role's session and its ARN, one user in two cases. Even signed
// (a document answerapproval would never make), VerifyApproval counts one.
// And a comment's bidi and zero-width characters never reach the record.
func TestAttackOneIdentityTwiceIsOneApprover(t *testing.T) {
	t.Parallel()
	a := newApprovalRun(t, 2)
	mac := kmsmac.New(a.kms, apKeyARN)
	for _, pair := range [][2]string{
		{"arn:aws:sts::111122223333:assumed-role/security-oncall/bob", "arn:aws:sts::111122223333:assumed-role/security-oncall/bob-2"},
		{"arn:aws:sts::111122223333:assumed-role/security-oncall/bob", "arn:aws:iam::111122223333:role/ops/security-oncall"},
		{"arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/ALICE"},
	} {
		doc := rotation.ApprovalDoc{Purpose: rotation.ApprovalPurpose, Execution: execA, RunStartedAt: a.data.Plan.StartedAt, RequestedBy: apRequester,
			Approvals: []rotation.ApprovalEntry{{By: pair[0], At: a.e.w.now}, {By: pair[1], At: a.e.w.now}}, At: a.e.w.now}
		b, _ := json.Marshal(doc)
		m, err := mac.Sign(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(rotation.SignedApproval{Doc: doc, MAC: m})
		inv := a.verify(context.Background(), string(out))
		if _, ok := errors.AsType[*rotation.ApprovalForged](inv.err); !ok && !strings.Contains(fmt.Sprint(inv.err), "not among") {
			t.Errorf("%s and %s counted as two: %v %s", pair[0], pair[1], inv.err, inv.out)
		}
	}
	// Through the endpoint: bob's second session is bob.
	if st, _ := reply(t, a.ask(context.Background(), apBob, "approve", "a\u202egnp.exe\u200b")); st != 200 {
		t.Fatal("bob's approval")
	}
	if st, r := reply(t, a.ask(context.Background(), strings.Replace(apBob, "bob@example.com", "bob-again", 1), "approve", "")); st != 200 || r.Outcome != "recorded" || a.answer.output != "" {
		t.Errorf("bob's second session: %d %+v; the token %+v", st, r, a.answer)
	}
	req, _, _ := a.records.PendingApproval(context.Background(), ckUser, execA)
	if len(req.Approvals) != 1 || strings.ContainsAny(req.Approvals[0].Comment, "\u202e\u200b") {
		t.Errorf("the record: %+v", req.Approvals)
	}
}

// answerapproval answers only the token the run's record names: a task
// token the history shows (the last approval TaskScheduled) that is not
// the one notify kept the digest of — another attempt's, or a payload
// that only looks like an approval's — is never answered.
func TestAttackAnswerOnlyTheRecordsToken(t *testing.T) {
	t.Parallel()
	for _, recorded := range []string{"another-attempts-token", "", apToken + " "} {
		a := newApprovalRun(t, 1)
		req, _, err := a.records.PendingApproval(context.Background(), ckUser, execA)
		if err != nil {
			t.Fatal(err)
		}
		req.TokenSHA256 = rotation.TokenDigest(recorded)
		if _, err := a.records.PutApprovalRequest(context.Background(), ckUser, execA, req); err != nil {
			t.Fatal(err)
		}
		st, r := reply(t, a.ask(context.Background(), apAlice, "approve", ""))
		if a.answer != (sfnAnswer{}) || st != 409 {
			t.Errorf("record names %q's digest: %d %+v, and the history's token got %+v", recorded, st, r, a.answer)
		}
	}
}
