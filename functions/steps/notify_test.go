package steps

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// I4: a failure alert says which user, which state, what error, what
// changed and what to do, with a link to the runbook section.
func TestFailureAlert(t *testing.T) {
	t.Parallel()
	plan := `"plan":{"user":"mailer","record":"keyrotator/users/mailer","oldKeyId":"AKIAOLD","targets":[{"type":"secret","name":"app","secretId":"app/k"}]}`
	key := `"key":{"keyId":"AKIANEW","versionId":"v1"}`
	tests := []struct {
		name, data, errName string
		says                []string
	}{
		{"input never parsed", `{"input":{"user":42},"failure":{"Validate":{"Error":"InvalidInput","Cause":"{\"errorMessage\":\"invalid input: user: got number, want string\"}"}}}`,
			"InvalidInput", []string{"Validate", "user: got number", "nothing: no key was created", "#invalidinput"}},
		{"two keys", `{"input":{"user":"mailer"},"failure":{"Validate":{"Error":"KeyLimitReached","Cause":"two keys"}}}`,
			"KeyLimitReached", []string{"IAM user mailer", "allowRemoveInactiveKey", "#keylimitreached"}},
		{"a target failed", `{"input":{"user":"mailer"},` + plan + `,` + key + `,"failure":{"Distribute":{"Error":"TargetFailed","Cause":"secret app/k does not exist"}}}`,
			"TargetFailed", []string{"Distribute", "new key AKIANEW exists", "target app: not confirmed", "AKIAOLD is still active", "#targetfailed"}},
		{"still in use", `{"input":{"user":"mailer"},` + plan + `,` + key + `,"receipts":[{"target":"app","newKeyId":"AKIANEW"}],"promote":{"at":"2026-11-01T00:00:00Z"},"failure":{"VerifyOldKeyUnused":{"Error":"OldKeyStillInUse","Cause":"old key AKIAOLD was last used by ses"}}}`,
			"OldKeyStillInUse", []string{"target app holds the new key AKIANEW", "AWSCURRENT since", "last used by ses", "#oldkeystillinuse"}},
		{"a crash", `{"input":{"user":"mailer"},"failure":{"CreateKey":{"Error":"Runtime.ExitError","Cause":"exit status 2"}}}`,
			"Runtime.ExitError", []string{"CreateKey", "#retryable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in NotifyInput
			in.Kind, in.Now = "failure", time.Now()
			if err := json.Unmarshal([]byte(tt.data), &in.Data); err != nil {
				t.Fatal(err)
			}
			topic := &fakeTopic{}
			res, err := (&Notify{Topic: topic}).Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Error != tt.errName || res.MessageID == "" || res.Cause == "" {
				t.Errorf("result %+v", res)
			}
			for _, s := range tt.says {
				if !strings.Contains(topic.body, s) {
					t.Errorf("the alert does not say %q:\n%s", s, topic.body)
				}
			}
			if !strings.Contains(topic.subject, tt.errName) {
				t.Errorf("subject %q does not name the error", topic.subject)
			}
		})
	}
}

func TestSuccessAndWarning(t *testing.T) {
	t.Parallel()
	var in NotifyInput
	data := `{"input":{"user":"mailer"},"plan":{"user":"mailer","record":"keyrotator/users/mailer","oldKeyId":"AKIAOLD","targets":[{"type":"secret","name":"app"}]},"key":{"keyId":"AKIANEW"},
	 "receipts":[{"target":"app","type":"secret","previousKeyId":"AKIAOLD","newKeyId":"AKIANEW"}],
	 "verify":{"attempt":1,"attemptsLeft":2,"evidence":"old key AKIAOLD was last used by ses","freshness":"checked"}}`
	if err := json.Unmarshal([]byte(data), &in.Data); err != nil {
		t.Fatal(err)
	}
	for kind, says := range map[string][]string{
		"success": {"old key AKIAOLD deleted", "new key AKIANEW active", "target app holds the new key AKIANEW", "#rotated"},
		"warning": {"still looks in use", "last used by ses", "2 more check(s)", "#still-in-use"},
	} {
		in.Kind = kind
		topic := &fakeTopic{}
		res, err := (&Notify{Topic: topic}).Run(context.Background(), in)
		if err != nil || res.Error != "" {
			t.Fatalf("%s: %v %+v", kind, err, res)
		}
		for _, s := range says {
			if !strings.Contains(topic.body, s) {
				t.Errorf("%s notice does not say %q:\n%s", kind, s, topic.body)
			}
		}
	}
}

func TestSubjectWithinSNSLimits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("u", 64)
	for _, tt := range []struct{ user, what, want string }{
		{"mailer", "Distribute failed: TargetFailed", "keyrotator mailer: Distribute failed: TargetFailed"},
		{long, "VerifyOldKeyUnused failed: OldKeyStillInUse", "keyrotator " + long[:40] + "...: VerifyOldKeyUnused failed: OldKeyStillInUse"},
	} {
		got := subject(tt.user, tt.what)
		if got != tt.want || len(got) >= 100 {
			t.Errorf("subject(%d chars, %q) = %q (%d chars), want %q", len(tt.user), tt.what, got, len(got), tt.want)
		}
	}
}
