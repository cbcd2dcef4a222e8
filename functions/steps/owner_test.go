package steps

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/audit"
)

type fakeOwners struct {
	tag string // the keyrotator:owner value; "" none
	err error
}

func (f fakeOwners) Owner(_ context.Context, _ string) (audit.Owner, bool, error) {
	if f.err != nil || f.tag == "" {
		return audit.Owner{}, false, f.err
	}
	o, err := audit.ParseOwner(f.tag)
	return o, err == nil, err
}

// An alert goes to the owner's topic too when the user's keyrotator:owner
// tag names a topic the config allows; otherwise the alert says why not.
// Approval requests never do.
func TestAlertsGoToTheOwnersTopic(t *testing.T) {
	t.Parallel()
	const allowed = "arn:aws:sns:ap-northeast-1:111122223333:team-a"
	for _, tc := range []struct {
		name, kind string
		owners     fakeOwners
		sent       bool
		note       string
	}{
		{name: "allowed topic", kind: "success", owners: fakeOwners{tag: allowed}, sent: true},
		{name: "allowed topic, a failure", kind: "failure", owners: fakeOwners{tag: allowed}, sent: true},
		{name: "not in ownerTopics", kind: "success", owners: fakeOwners{tag: "arn:aws:sns:ap-northeast-1:111122223333:other"}, note: "is not in the config's ownerTopics"},
		{name: "an e-mail address", kind: "warning", owners: fakeOwners{tag: "team-a@example.com"}, note: "subscribing it to a topic is the owner's own step"},
		{name: "no tag", kind: "success"},
		{name: "tags not read", kind: "success", owners: fakeOwners{err: errors.New("AccessDenied")}, note: "owner not read: AccessDenied"},
		{name: "approval stays on the alert topic", kind: "approval", owners: fakeOwners{tag: allowed}},
	} {
		alerts, owner := &fakeTopic{}, &fakeTopic{}
		n := &Notify{Topic: alerts, Records: &fakeApprovals{}, Owners: tc.owners, OwnerTopics: map[string]Publisher{allowed: owner}}
		var in NotifyInput
		in.Kind, in.Now, in.Token = tc.kind, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), "tok"
		data := `{"input":{"user":"mailer"},"execution":"arn:aws:states:ap-northeast-1:111122223333:execution:keyrotator:x",` +
			`"plan":{"user":"mailer","record":"keyrotator/users/mailer","oldKeyId":"AKIAOLD","targets":[]},"failure":{"CreateKey":{"Error":"Internal","Cause":"x"}}}`
		if err := json.Unmarshal([]byte(data), &in.Data); err != nil {
			t.Fatal(err)
		}
		res, err := n.Run(context.Background(), in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if sent := owner.body != ""; sent != tc.sent || sent && (owner.body != alerts.body || res.OwnerMessageID == "" || !strings.Contains(alerts.body, "Owner: "+allowed)) {
			t.Errorf("%s: sent to the owner %v (%+v), want %v", tc.name, sent, res, tc.sent)
		}
		if !strings.Contains(res.OwnerNote, tc.note) || (tc.note == "") != (res.OwnerNote == "") || tc.note != "" && !strings.Contains(alerts.body, tc.note) {
			t.Errorf("%s: note %q, want one saying %q, in the alert too", tc.name, res.OwnerNote, tc.note)
		}
	}
}
