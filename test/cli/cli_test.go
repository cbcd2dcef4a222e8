package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/cli"
)

// The --json documents, as docs/cli.md describes them (the fields asserted on).

type startDoc struct {
	ExecutionARN    string `json:"executionArn"`
	Name            string `json:"name"`
	StateMachineARN string `json:"stateMachineArn"`
	Input           struct {
		User        string `json:"user"`
		RequestedBy string `json:"requestedBy"`
		DryRun      bool   `json:"dryRun"`
	} `json:"input"`
	Watch *watchDoc `json:"watch"`
}

type watchDoc struct {
	Execution string `json:"execution"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Result    string `json:"result"`
	Steps     []struct {
		State      string `json:"state"`
		Event      string `json:"event"`
		DurationMs int64  `json:"durationMs"`
		InMap      bool   `json:"inMap"`
	} `json:"steps"`
	Report struct {
		User        string `json:"user"`
		Status      string `json:"status"`
		Error       string `json:"error"`
		FailedState string `json:"failedState"`
		OldKeyID    string `json:"oldKeyId"`
		NewKeyID    string `json:"newKeyId"`
		Changes     []string
		KeysAfter   []struct {
			ID     string `json:"accessKeyId"`
			Status string `json:"status"`
		} `json:"keysAfter"`
		Receipts []struct {
			Target   string `json:"target"`
			NewKeyID string `json:"newKeyId"`
		} `json:"receipts"`
	} `json:"report"`
}

type statusDoc struct {
	StateMachineARN string `json:"stateMachineArn"`
	Users           []struct {
		User    string `json:"user"`
		IAMUser bool   `json:"iamUserExists"`
		Record  *struct {
			Name           string `json:"name"`
			PendingVersion string `json:"pendingVersion"`
		} `json:"record"`
		Keys []struct {
			ID       string `json:"accessKeyId"`
			Status   string `json:"status"`
			AgeDays  int    `json:"ageDays"`
			LastUsed *struct {
				Service string `json:"service"`
			} `json:"lastUsed"`
		} `json:"keys"`
		Targets []struct {
			Name      string `json:"name"`
			Type      string `json:"type"`
			KeyID     string `json:"keyId"`
			KeyStatus string `json:"keyStatus"`
		} `json:"targets"`
		TargetsFrom *struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		} `json:"targetsFrom"`
		InFlight *struct {
			Name             string `json:"name"`
			State            string `json:"state"`
			AwaitingApproval bool   `json:"awaitingApproval"`
		} `json:"inFlight"`
		Schedules []struct {
			Rotation string     `json:"rotation"`
			Next     *time.Time `json:"next"`
			Every    string     `json:"every"`
			Note     string     `json:"note"`
		} `json:"schedules"`
	} `json:"users"`
}

type errorDoc struct {
	Error struct {
		Code    int    `json:"code"`
		Kind    string `json:"kind"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"error"`
}

type decisionDoc struct {
	Execution string `json:"execution"`
	Decision  string `json:"decision"`
	By        string `json:"by"`
	Comment   string `json:"comment"`
}

const poll = "--poll=100ms" // cli.MinPoll

// Two starts for one user in the same second get two executions, not a
// raw ExecutionAlreadyExists (issue 11, finding 8).
func TestTwoStartsInOneSecond(t *testing.T) {
	t.Parallel()
	h := start(t)
	f := h.seed("app-user", 95)
	input := h.file(fmt.Sprintf(`{"user":%q,"targets":[{"type":"secret","name":"app","secretId":%q}],"waitDays":7,"graceDays":1}`, f.user, f.secretID))
	second := len("app-user-20260101T000000Z") // a name's prefix up to its second
	// Two starts can straddle a second's end (more often on a loaded
	// machine): then they prove nothing, and the pair is tried again.
	for range 5 {
		var a, b startDoc
		if r := h.runJSON(&a, "start", "--input", input); r.code != cli.ExitOK {
			t.Fatalf("first start: exit %d: %s", r.code, r.stderr)
		}
		if r := h.runJSON(&b, "start", "--input", input); r.code != cli.ExitOK {
			t.Fatalf("second start: exit %d: %s", r.code, r.stderr)
		}
		if a.Name[:second] != b.Name[:second] {
			continue
		}
		if a.Name == b.Name {
			t.Errorf("names %q and %q: want two names", a.Name, b.Name)
		}
		return
	}
	t.Fatal("no two starts in one second in 5 tries")
}

// start (file) → watch → status: the new key is what the target holds,
// the old one is gone; then start (flags) --wait rotates again.
func TestStartWatchStatus(t *testing.T) {
	t.Parallel()
	h := start(t)
	f := h.seed("app-user", 95)
	input := fmt.Sprintf(`{"user":%q,"targets":[{"type":"secret","name":"app","secretId":%q}],"waitDays":7,"graceDays":1,"reason":"IAM.3"}`, f.user, f.secretID)

	var st startDoc
	if r := h.runJSON(&st, "start", "--input", h.file(input)); r.code != cli.ExitOK {
		t.Fatalf("start: exit %d: %s", r.code, r.stderr)
	}
	if !strings.HasPrefix(st.Name, "app-user-") || len(st.Name) != len("app-user-20260101T000000Z-0123abcd") || st.StateMachineARN != h.dep.StateMachineARN {
		t.Errorf("start = %+v: want a name <user>-<yyyymmddThhmmssZ>-<random> in the keyrotator state machine", st)
	}
	if !strings.HasPrefix(st.Input.RequestedBy, "arn:aws:iam::") {
		t.Errorf("requestedBy = %q, want the caller's ARN", st.Input.RequestedBy)
	}

	// Watch for people: the states, Map iterations indented, the report.
	r := h.run("watch", st.Name, poll)
	if r.code != cli.ExitOK {
		t.Fatalf("watch: exit %d", r.code)
	}
	for _, want := range []string{"→ Validate\n", "✓ Validate ", "→   UpdateSecret\n", "✓ WaitForUse                 ok  7d\n",
		"    waiting 7 days, until ", "keys of app-user:\n  before: " + f.oldKey + " (Active)\n",
		"rotation succeeded: user=app-user old=" + f.oldKey + " (deleted) new="} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("watch output lacks %q", want)
		}
	}
	// And for scripts: the same run, ended, by ARN.
	var w watchDoc
	if r := h.runJSON(&w, "watch", st.ExecutionARN, poll); r.code != cli.ExitOK {
		t.Fatalf("watch --json: exit %d", r.code)
	}
	newKey := w.Report.NewKeyID
	if w.Status != "SUCCEEDED" || w.Report.OldKeyID != f.oldKey || newKey == "" || len(w.Report.KeysAfter) != 1 || w.Report.KeysAfter[0].ID != newKey ||
		len(w.Report.Receipts) != 1 || w.Report.Receipts[0].NewKeyID != newKey || !strings.HasPrefix(w.Result, "rotation succeeded") {
		t.Errorf("watch --json = %+v", w)
	}
	var sawIter, sawWait bool
	for _, s := range w.Steps {
		sawIter = sawIter || (s.State == "UpdateSecret" && s.InMap)
		// On the workflow's clock: 7 days, give or take the moment a Wait's exit lands.
		sawWait = sawWait || (s.State == "WaitForUse" && s.Event == "exited" && abs(s.DurationMs-7*24*3600*1000) < 60_000)
	}
	if !sawIter || !sawWait {
		t.Errorf("steps: UpdateSecret in a Map iteration %v, WaitForUse exited after 7 days %v", sawIter, sawWait)
	}

	// Status: one key, the new one, held by the target.
	var s statusDoc
	if r := h.runJSON(&s, "status", "--user", f.user); r.code != cli.ExitOK {
		t.Fatalf("status: exit %d", r.code)
	}
	if len(s.Users) != 1 {
		t.Fatalf("status users = %+v", s.Users)
	}
	u := s.Users[0]
	if !u.IAMUser || u.Record == nil || u.Record.Name != "keyrotator/users/app-user" || u.Record.PendingVersion != "" || u.InFlight != nil {
		t.Errorf("status user = %+v", u)
	}
	if len(u.Keys) != 1 || u.Keys[0].ID != newKey || u.Keys[0].Status != "Active" || u.Keys[0].AgeDays > 8 {
		t.Errorf("keys = %+v, want only %s, Active, days old", u.Keys, newKey)
	}
	if len(u.Targets) != 1 || u.Targets[0].Name != "app" || u.Targets[0].KeyID != newKey || u.Targets[0].KeyStatus != "Active" ||
		u.TargetsFrom == nil || u.TargetsFrom.Name != st.Name {
		t.Errorf("targets = %+v from %+v, want app holding %s from %s", u.Targets, u.TargetsFrom, newKey, st.Name)
	}
	r = h.run("status")
	for _, want := range []string{"app-user  (record keyrotator/users/app-user)", newKey + "  Active", "app     secret  " + newKey + " (Active)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, f.oldKey+"  ") {
		t.Errorf("status still lists the old key %s", f.oldKey)
	}

	// Start from flags, and follow it.
	r = h.run("start", "--user", f.user, "--target", "type=secret,name=app,secretId="+f.secretID, "--wait-days", "2", "--wait", poll)
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "rotation succeeded: user=app-user old="+newKey+" (deleted)") || !strings.Contains(r.stdout, "waiting 2 days") {
		t.Errorf("start --wait: exit %d", r.code)
	}
	if ks := h.keys(f.user); len(ks) != 1 || ks[newKey] != "" {
		t.Errorf("after the second rotation IAM has %v", ks)
	}
}

// A dry run's plan, from start --dry-run --wait.
func TestDryRun(t *testing.T) {
	t.Parallel()
	h := start(t)
	f := h.seed("dry-user", 95)
	var st startDoc
	r := h.runJSON(&st, "start", "--user", f.user, "--target", "type=secret,name=app,secretId="+f.secretID, "--dry-run", "--wait", poll)
	if r.code != cli.ExitOK || !st.Input.DryRun || st.Watch == nil || st.Watch.Status != "SUCCEEDED" || len(st.Watch.Report.Changes) == 0 {
		t.Fatalf("start --dry-run --wait --json: exit %d, %+v", r.code, st)
	}
	r = h.run("watch", st.Name)
	if !strings.Contains(r.stdout, "dry run of dry-user: ") || !strings.Contains(r.stdout, "  1. ") || !strings.Contains(r.stdout, "dry run succeeded: user=dry-user") {
		t.Errorf("dry run report missing")
	}
	if ks := h.keys(f.user); len(ks) != 1 || ks[f.oldKey] != "Active" {
		t.Errorf("a dry run changed the keys: %v", ks)
	}

	// Issuance, in the same sandbox: start --issue says issue in its dry
	// run, its report and status (docs/cli.md, --issue).
	h.sb.User(t, "first-key", 0)
	target := "type=secret,name=app,secretId=app/first-key"
	r = h.run("start", "--user", "first-key", "--target", target, "--issue", "--dry-run", "--wait", poll)
	for _, want := range []string{"an issue: a first key for first-key", "dry run of an issue to first-key: ", "  1. issue a new access key for IAM user first-key", "dry run of an issue succeeded: user=first-key"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("start --issue --dry-run: exit %d, output lacks %q", r.code, want)
		}
	}
	if ks := h.keys("first-key"); len(ks) != 0 {
		t.Errorf("a dry run of an issue made a key: %v", ks)
	}
	r = h.run("start", "--user", "first-key", "--target", target, "--issue", "--wait", poll)
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "before: no active key (an issue)") || !strings.Contains(r.stdout, "issue succeeded: user=first-key new=") ||
		strings.Contains(r.stdout, "WaitForUse") {
		t.Errorf("start --issue --wait: exit %d:\n%s", r.code, r.stdout)
	}
	if r = h.run("status", "--user", "first-key"); !strings.Contains(r.stdout, "(an issue: a first key, nothing retired) SUCCEEDED") {
		t.Errorf("status after an issue:\n%s", r.stdout)
	}
}

// Bad input files are refused with the field named, exit 2, and nothing
// started.
func TestBadInputRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	f := h.seed("bad-user", 95)
	target := fmt.Sprintf(`{"type":"secret","name":"app","secretId":%q}`, f.secretID)
	tests := []struct {
		name, body, field, words string
	}{
		{"unknown field", `{"user":"bad-user","targets":[` + target + `],"waitDayz":7}`, "waitDayz", "is not a known field"},
		{"bad type", `{"user":"bad-user","targets":[` + target + `],"waitDays":"7"}`, "waitDays", "integer"},
		{"auth0 target missing sesRegion", `{"user":"bad-user","targets":[{"type":"auth0","name":"prod","connection":"keyrotator/connections/auth0"}]}`, "targets[0].sesRegion", "is required"},
		{"soracom target missing connection", `{"user":"bad-user","targets":[{"type":"soracom","name":"f","credentialPrefix":"f"}]}`, "targets[0].connection", "is required"},
		{"malformed JSON", `{"user":"bad-user","targets":[` + target, "", "not valid JSON"},
		{"the app's own record as a target", `{"user":"bad-user","targets":[{"type":"secret","name":"app","secretId":"keyrotator/users/bad-user"}]}`, "targets[0].secretId", ""},
	}
	before := h.executions()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e errorDoc
			r := h.runJSON(&e, "start", "--input", h.file(tt.body))
			if r.code != cli.ExitUsage || e.Error.Code != cli.ExitUsage || e.Error.Kind != "invalid input" || e.Error.Field != tt.field ||
				!strings.Contains(e.Error.Message, tt.words) || !strings.Contains(e.Error.Message, tt.field) {
				t.Errorf("exit %d, error %+v: want exit 2 naming %q (%q)", r.code, e.Error, tt.field, tt.words)
			}
			r = h.run("start", "--input", h.file(tt.body))
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tt.field) || r.stdout != "" {
				t.Errorf("human: exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
	if after := h.executions(); after != before {
		t.Errorf("refused input started executions: %d → %d", before, after)
	}
}

// watch of a failed run exits 3 and says what failed.
func TestWatchFailedRun(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.seed("someone", 95) // a user and a secret exist; the run names a user that does not
	r := h.run("start", "--user", "nobody-here", "--target", "type=secret,name=app,secretId=app/someone", "--wait", poll)
	if r.code != cli.ExitRunFailed || !strings.Contains(r.stdout, "rotation failed: FAILED at Validate: UserNotFound") {
		t.Errorf("start --wait of a failing run: exit %d, want %d and the failure named", r.code, cli.ExitRunFailed)
	}
	var w watchDoc
	name := strings.Fields(r.stdout)[1]
	if r := h.runJSON(&w, "watch", name); r.code != cli.ExitRunFailed || w.Status != "FAILED" || w.Report.FailedState != "Validate" || w.Report.Error != "UserNotFound" {
		t.Errorf("watch --json: exit %d, %+v", r.code, w)
	}
	if r := h.run("watch", "no-such-execution"); r.code != cli.ExitUsage {
		t.Errorf("watch of an unknown execution: exit %d, want %d", r.code, cli.ExitUsage)
	}
}

// awaitApproval waits until status says name waits for approval.
func (h *H) awaitApproval(user, name string) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var s statusDoc
		h.runJSON(&s, "status", "--user", user)
		if len(s.Users) == 1 && s.Users[0].InFlight != nil && s.Users[0].InFlight.AwaitingApproval {
			if got := s.Users[0].InFlight; got.Name != name || got.State != "Approve" {
				h.t.Fatalf("in flight = %+v, want %s in Approve", got, name)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("%s never waited for approval", name)
}

// reject ends the run ApprovalRejected with IAM untouched; approve lets it
// finish; nothing pending is exit 4. start asks through the request
// endpoint (signed as the admin, the requester); the approver, another
// identity, answers through the approval endpoint (issue 14).
func TestApproveAndReject(t *testing.T) {
	t.Parallel()
	h := start(t)
	approver := h.sb.User(t, "cli-approver", 1)[0]
	approverARN := "arn:aws:iam::" + h.sb.Server.Account() + ":user/cli-approver"

	t.Run("reject", func(t *testing.T) {
		f := h.seed("rejected-user", 95)
		var st startDoc
		h.runJSON(&st, "start", "--user", f.user, "--target", "type=secret,name=app,secretId="+f.secretID, "--require-approval", "--approver", approverARN, "--approval-timeout-hours", "720", "--reason", "quarterly")
		h.awaitApproval(f.user, st.Name)
		if r := h.run("approve", st.Name); r.code != cli.ExitRefused || !strings.Contains(r.stderr, "refused") {
			t.Errorf("the requester approving their own run: exit %d, stderr %q; want refused (exit %d)", r.code, r.stderr, cli.ExitRefused)
		}
		var d decisionDoc
		if r := h.runAs(approver, "reject", st.Name, "--comment", "not during the freeze", "--json"); r.code != cli.ExitOK || json.Unmarshal([]byte(r.stdout), &d) != nil || d.Decision != "rejected" || d.By != approverARN || d.Comment != "not during the freeze" {
			t.Fatalf("reject: exit %d, %+v", r.code, d)
		}
		var w watchDoc
		if r := h.runJSON(&w, "watch", st.Name, poll); r.code != cli.ExitRunFailed || w.Status != "FAILED" || w.Report.Error != "ApprovalRejected" {
			t.Errorf("rejected run: exit %d, %+v", r.code, w.Report)
		}
		if ks := h.keys(f.user); len(ks) != 1 || ks[f.oldKey] != "Active" {
			t.Errorf("after a rejection IAM has %v, want exactly the old key %s", ks, f.oldKey)
		}
		if r := h.runAs(approver, "approve", st.Name); r.code != cli.ExitNotPending || !strings.Contains(r.stderr, "nothing to approve") {
			t.Errorf("approve after the end: exit %d, want %d", r.code, cli.ExitNotPending)
		}
	})

	t.Run("approve", func(t *testing.T) {
		f := h.seed("approved-user", 95)
		var st startDoc
		h.runJSON(&st, "start", "--user", f.user, "--target", "type=secret,name=app,secretId="+f.secretID, "--require-approval", "--approver", approverARN, "--approval-timeout-hours", "720")
		h.awaitApproval(f.user, st.Name)
		if r := h.runAs(approver, "approve", st.Name, "--comment", "CHG-1"); r.code != cli.ExitOK || !strings.Contains(r.stdout, "approved "+st.Name) {
			t.Fatalf("approve: exit %d", r.code)
		}
		r := h.run("watch", st.Name, poll)
		if r.code != cli.ExitOK || !strings.Contains(r.stdout, approverARN) || !strings.Contains(r.stdout, "rotation succeeded: user=approved-user old="+f.oldKey+" (deleted)") {
			t.Errorf("approved run: exit %d", r.code)
		}
		var e errorDoc
		if r := h.runJSON(&e, "reject", st.Name); r.code != cli.ExitNotPending || e.Error.Code != cli.ExitNotPending {
			t.Errorf("reject after approval: exit %d, %+v", r.code, e)
		}
	})

	t.Run("nothing pending", func(t *testing.T) {
		f := h.seed("plain-user", 95)
		var st startDoc
		h.runJSON(&st, "start", "--user", f.user, "--target", "type=secret,name=app,secretId="+f.secretID, "--wait", poll)
		if r := h.runAs(approver, "approve", st.Name); r.code != cli.ExitNotPending || !strings.Contains(r.stderr, "nothing to approve or reject on "+st.Name) {
			t.Errorf("approve of a run that never asked: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// status of a user nobody knows is a usage error naming --user; status
// reads schedules from the config and says when the next run is.
func TestStatusUsersAndSchedules(t *testing.T) {
	t.Parallel()
	h := start(t)
	var e errorDoc
	if r := h.runJSON(&e, "status", "--user", "nobody-at-all"); r.code != cli.ExitUsage || e.Error.Field != "--user" || !strings.Contains(e.Error.Message, "not found") {
		t.Errorf("status --user unknown: exit %d, %+v", r.code, e)
	}

	f := h.seed("sched-user", 30)
	config := filepath.Join(t.TempDir(), "rotations.json")
	body := fmt.Sprintf(`{"rotations":[
	  {"name":"monthly","schedule":"cron(0 3 1 * ? *)","timeZone":"America/New_York","input":{"user":%[1]q,"targets":[{"type":"secret","name":"app","secretId":%[2]q}]}},
	  {"name":"weekly","schedule":"rate(7 days)","timeZone":"UTC","input":{"user":%[1]q,"targets":[{"type":"secret","name":"app","secretId":%[2]q}]}},
	  {"name":"odd","schedule":"cron(0 0 ? * 6L *)","timeZone":"UTC","input":{"user":%[1]q,"targets":[]}},
	  {"name":"never-ran","schedule":"rate(1 day)","timeZone":"UTC","input":{"user":"not-yet-rotated","targets":[{"type":"secret","name":"x","secretId":"x"}]}}]}`, f.user, f.secretID)
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var s statusDoc
	if r := h.runJSON(&s, "status", "--config", config); r.code != cli.ExitOK {
		t.Fatalf("status: exit %d", r.code)
	}
	users := map[string]int{}
	for i, u := range s.Users {
		users[u.User] = i
	}
	i, ok := users[f.user]
	if _, other := users["not-yet-rotated"]; !ok || !other {
		t.Fatalf("status users = %v: want the config's users, rotated or not", users)
	}
	u := s.Users[i]
	if u.Record != nil || len(u.Keys) != 1 || u.Keys[0].ID != f.oldKey || u.Keys[0].AgeDays != 30 || len(u.Targets) != 1 || u.Targets[0].KeyStatus != "unknown" {
		t.Errorf("never-rotated user = %+v", u)
	}
	if len(u.Schedules) != 3 {
		t.Fatalf("schedules = %+v", u.Schedules)
	}
	monthly, weekly, odd := u.Schedules[0], u.Schedules[1], u.Schedules[2]
	ny, _ := time.LoadLocation("America/New_York")
	if n := monthly.Next; n == nil || n.In(ny).Day() != 1 || n.In(ny).Hour() != 3 || n.Minute() != 0 {
		t.Errorf("monthly next = %v, want the 1st at 03:00 New York time", n)
	} else if _, off := n.Zone(); off != func() int { _, o := n.In(ny).Zone(); return o }() {
		t.Errorf("monthly next = %v: not written in the schedule's time zone", n)
	}
	if weekly.Next != nil || weekly.Every != "every 7 days" || !strings.Contains(weekly.Note, "no scheduled run seen yet") {
		t.Errorf("weekly = %+v", weekly)
	}
	if odd.Next != nil || !strings.Contains(odd.Note, "unsupported") {
		t.Errorf("odd = %+v, want unsupported said, not guessed", odd)
	}
	r := h.run("status", "--user", f.user, "--config", config)
	if !strings.Contains(r.stdout, "next scheduled run: ") || !strings.Contains(r.stdout, "— monthly: cron(0 3 1 * ? *) America/New_York") {
		t.Errorf("status for people lacks the next run")
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
