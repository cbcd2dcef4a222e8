package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/local/leak"
)

// The unconfirmed cut-over, step by step over in-memory fakes: an Auth0
// tenant that shows which key it holds (its receipt is confirmed) and one
// that withholds it, as Auth0 documents its answer (the receipt is
// unconfirmed, and only IAM's last use of the new key by ses confirms it).
// For each, the checks VerifyOldKeyUnused makes as the days pass (what IAM
// shows of the new key at each), whether the old key is retired, and what
// the alerts say. None of it may carry the new key's secret (I1).

// fakeTenant is an Auth0 tenant as the auth0 target sees it: a PATCH moves
// it to the new key; withhold hides the key from the read-back, so the
// receipt is unconfirmed.
type fakeTenant struct {
	withhold bool
	holds    string
}

func (f *fakeTenant) Plan(context.Context, rotation.Target, string, string) (rotation.Receipt, error) {
	panic("not used")
}

func (f *fakeTenant) Update(_ context.Context, tg rotation.Target, _, oldKeyID string, key rotation.Credential) (rotation.Receipt, error) {
	r := rotation.Receipt{Target: tg.Name, Type: rotation.TargetAuth0, Where: "tenant.example.com", NewKeyID: key.AccessKeyID, Changed: true}
	if !f.withhold {
		r.PreviousKeyID = f.holds
	}
	f.holds = key.AccessKeyID
	if f.withhold {
		r.Unconfirmed = &rotation.Unconfirmed{UsedBy: "ses", Reason: "Auth0 does not show which key the provider holds"}
	}
	return r, nil
}

// keyRecord hands out the new key; the record's other calls are not made.
type keyRecord struct {
	recordStore
	key rotation.Credential
}

func (k keyRecord) Key(context.Context, string, string) (rotation.Credential, error) {
	return k.key, nil
}

const unconfirmedSecret = "NEWKEY-secret-access-key-canary-0123456789"

func TestUnconfirmedCutOver(t *testing.T) {
	t.Parallel()
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	week := 7 * day
	sesUse := func(when time.Time) rotation.KeyUse {
		return rotation.KeyUse{KeyID: "AKIANEW", LastUsed: at(when), Service: "ses", Region: "ap-northeast-1"}
	}
	stsUse := func(when time.Time) rotation.KeyUse {
		return rotation.KeyUse{KeyID: "AKIANEW", LastUsed: at(when), Service: "sts", Region: "us-east-1"}
	}
	oldSES := func(when time.Time) *rotation.KeyUse {
		return &rotation.KeyUse{KeyID: "AKIAOLD", LastUsed: at(when), Service: "ses", Region: "ap-northeast-1"}
	}
	type check struct {
		newKey rotation.KeyUse
		old    *rotation.KeyUse // nil: last used before the cut-over
		now    time.Duration    // after the cut-over; 0: a week per check
	}
	tests := []struct {
		name     string
		withhold bool
		checks   []check
		retired  bool   // the last check found the old key unused and DeactivateOldKey switched it off
		says     string // the last check's evidence
		warns    string // a warning alert after a check that found it not unused says
	}{
		{name: "shown: confirmed by the read-back", checks: []check{{newKey: stsUse(cut.Add(-time.Hour))}},
			retired: true, says: "no use of old key"},
		{name: "withheld: the tenant mails with the new key", withhold: true, checks: []check{{newKey: sesUse(cut.Add(time.Hour))}},
			retired: true, says: "prod's cut-over confirmed: IAM showed the new key AKIANEW used by ses"},
		{name: "withheld: another consumer hides ses, then ses shows", withhold: true,
			checks:  []check{{newKey: stsUse(cut.Add(6 * day))}, {newKey: sesUse(cut.Add(13 * day))}},
			retired: true, says: "confirmed", warns: "cut-over not confirmed yet"},
		{name: "withheld: ses seen once is remembered", withhold: true,
			checks:  []check{{newKey: sesUse(cut.Add(time.Hour)), now: 2 * time.Hour}, {newKey: stsUse(cut.Add(6 * day))}},
			retired: true, says: "confirmed: IAM showed the new key AKIANEW used by ses at 2026-11-01T01:00:00Z", warns: "old key still in use"},
		{name: "withheld: never confirmed", withhold: true,
			checks:  []check{{newKey: stsUse(cut.Add(-time.Hour))}, {newKey: stsUse(cut.Add(-time.Hour))}, {newKey: stsUse(cut.Add(-time.Hour))}},
			retired: false, says: "not retiring old key AKIAOLD yet", warns: "cut-over not confirmed yet"},
		{name: "withheld: confirmed, but the old key is used too", withhold: true,
			checks:  []check{{newKey: sesUse(cut.Add(2 * day)), old: oldSES(cut.Add(3 * day))}, {newKey: sesUse(cut.Add(9 * day)), old: oldSES(cut.Add(10 * day))}, {newKey: sesUse(cut.Add(16 * day)), old: oldSES(cut.Add(17 * day))}},
			retired: false, says: "old key AKIAOLD was last used", warns: "old key still in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var printed []byte
			keep := func(v any) { b, _ := json.Marshal(v); printed = append(printed, b...) }
			target := rotation.Target{Type: rotation.TargetAuth0, Name: "prod", Connection: "keyrotator/connections/prod", SESRegion: "ap-northeast-1"}
			d := rotation.ExecutionData{Execution: "arn:aws:states:ap-northeast-1:1:execution:keyrotator:run",
				Plan: &rotation.Plan{User: "mailer", Record: "keyrotator/users/mailer", OldKeyID: "AKIAOLD", VerifyAttempts: len(tt.checks), Targets: []rotation.Target{target}},
				Key:  &rotation.NewKey{KeyID: "AKIANEW", VersionID: "v-new"}}

			// Distribute: UpdateAuth0's item.
			tenant := &fakeTenant{withhold: tt.withhold, holds: "AKIAOLD"}
			item := d
			item.Target = &target
			r, err := (&UpdateTarget{Records: keyRecord{key: rotation.NewCredential("AKIANEW", unconfirmedSecret)}, Target: tenant}).Run(ctx, rotation.TaskInput{Now: cut, Data: item})
			keep(r)
			if err != nil || (r.Unconfirmed != nil) != tt.withhold {
				t.Fatalf("UpdateAuth0: %v %+v", err, r)
			}
			d.Receipts = []rotation.Receipt{r}
			d.Promote = &rotation.Cutover{At: cut}
			d.Verify = &rotation.Verification{}

			keys := &fakeKeys{keys: []iamkeys.Key{{ID: "AKIAOLD", Status: "Active"}, {ID: "AKIANEW", Status: "Active"}}, lastUsed: map[string]rotation.KeyUse{}}
			verify := &VerifyOldKeyUnused{Keys: keys, Trail: fakeTrail{}}
			var err2 error
			for i, c := range tt.checks {
				now := cut.Add(time.Duration(i+1) * week)
				if c.now != 0 {
					now = cut.Add(c.now)
				}
				keys.lastUsed["AKIANEW"] = c.newKey
				delete(keys.lastUsed, "AKIAOLD")
				if c.old != nil {
					keys.lastUsed["AKIAOLD"] = *c.old
				}
				var v rotation.Verification
				v, err2 = verify.Run(ctx, rotation.TaskInput{Now: now, Data: d})
				keep(v)
				d.Verify = &v
				if err2 == nil && !v.Unused { // AlertStillInUse, then the Wait
					topic := &fakeTopic{}
					if _, err := (&Notify{Topic: topic}).Run(ctx, NotifyInput{Kind: "warning", Now: now, Data: d}); err != nil {
						t.Fatal(err)
					}
					keep(topic)
					if tt.warns == "" || !strings.Contains(topic.subject+topic.body, tt.warns) {
						t.Errorf("check %d: the warning does not say %q:\n%s\n%s", i+1, tt.warns, topic.subject, topic.body)
					}
					if waiting := pending(v.Confirmations); len(waiting) > 0 && !strings.Contains(topic.body, "Send Test Email") {
						t.Errorf("check %d: an unconfirmed tenant's warning says how to confirm it:\n%s", i+1, topic.body)
					}
				}
			}
			last := *d.Verify
			if !strings.Contains(last.Evidence, tt.says) {
				t.Errorf("the last check's evidence %q does not say %q", last.Evidence, tt.says)
			}
			if tt.withhold != (len(last.Confirmations) == 1) {
				t.Errorf("confirmations %+v", last.Confirmations)
			}

			// OldKeyUnused? → DeactivateOldKey, or the run fails OldKeyStillInUse.
			var still *rotation.OldKeyStillInUse
			switch {
			case tt.retired && (err2 != nil || !last.Unused):
				t.Fatalf("the last check: %v %+v, want the old key unused", err2, last)
			case !tt.retired && (!errors.As(err2, &still) || last.Unused):
				t.Fatalf("the last check: %v unused=%v, want OldKeyStillInUse", err2, last.Unused)
			}
			kc, err := (&DeactivateOldKey{Keys: keys}).Run(ctx, rotation.TaskInput{Now: cut.Add(30 * day), Data: d})
			keep(kc)
			if tt.retired != (err == nil && kc.Changed) {
				t.Errorf("DeactivateOldKey: %v %+v, want retired=%v", err, kc, tt.retired)
			}
			if !tt.retired && keys.keys[0].Status != "Active" {
				t.Errorf("the old key was switched off: %+v", keys.keys)
			}

			// The last alert: success, or the failure.
			topic := &fakeTopic{}
			in := NotifyInput{Kind: "success", Now: cut.Add(30 * day), Data: d}
			if !tt.retired {
				in.Kind = "failure"
				in.Data.Failure = map[string]rotation.StateError{"VerifyOldKeyUnused": {Error: "OldKeyStillInUse", Cause: fmt.Sprintf(`{"errorMessage":%q}`, err2.Error())}}
			}
			if _, err := (&Notify{Topic: topic}).Run(ctx, in); err != nil {
				t.Fatal(err)
			}
			keep(topic)
			if len(pending(last.Confirmations)) > 0 && !strings.Contains(topic.body, "not confirmed") {
				t.Errorf("the failure alert does not say the cut-over was never confirmed:\n%s", topic.body)
			}
			if tt.withhold && tt.retired && !strings.Contains(topic.body, "cut-over confirmed") {
				t.Errorf("the success alert does not say how the cut-over was confirmed:\n%s", topic.body)
			}
			leak.Check(t, []leak.Secret{{Kind: "the new key's secret", Value: unconfirmedSecret}}, map[string][]byte{"receipts, verifications, key changes and alerts": printed})
		})
	}
}

// DeactivateOldKey itself refuses a run whose cut-over was never confirmed,
// whatever the verification's unused says (I2 held twice).
func TestDeactivateRefusesAnUnconfirmedCutOver(t *testing.T) {
	t.Parallel()
	keys := &fakeKeys{keys: []iamkeys.Key{{ID: "AKIAOLD", Status: "Active"}, {ID: "AKIANEW", Status: "Active"}}}
	d := rotation.ExecutionData{Plan: &rotation.Plan{User: "mailer", OldKeyID: "AKIAOLD"}, Key: &rotation.NewKey{KeyID: "AKIANEW"},
		Receipts: []rotation.Receipt{{Target: "prod", Type: "auth0", NewKeyID: "AKIANEW", Unconfirmed: &rotation.Unconfirmed{UsedBy: "ses", Reason: "not shown"}}},
		Verify:   &rotation.Verification{Unused: true}}
	var still *rotation.OldKeyStillInUse
	if _, err := (&DeactivateOldKey{Keys: keys}).Run(context.Background(), rotation.TaskInput{Data: d}); !errors.As(err, &still) || !strings.Contains(still.Evidence, "prod") {
		t.Fatalf("unconfirmed: %v", err)
	}
	d.Verify.Confirmations = []rotation.Confirmation{{Target: "prod", UsedBy: "ses", Confirmed: true, At: at(time.Now())}}
	if kc, err := (&DeactivateOldKey{Keys: keys}).Run(context.Background(), rotation.TaskInput{Data: d}); err != nil || !kc.Changed {
		t.Fatalf("confirmed: %v %+v", err, kc)
	}
}
