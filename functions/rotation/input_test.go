package rotation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
)

const valid = `{"user":"auth0-ses-sender","targets":[
 {"type":"auth0","name":"prod-tenant","connection":"keyrotator/connections/auth0-prod","sesRegion":"ap-northeast-1"},
 {"type":"soracom","name":"funnel","connection":"keyrotator/connections/soracom","credentialPrefix":"aws-soracom-funnel"},
 {"type":"secret","name":"app","secretId":"app/aws-access-key"}],
 "waitDays":7,"graceDays":1,"minKeyAgeDays":80,"allowRemoveInactiveKey":false,"requireApproval":false,"dryRun":false}`

func TestParseInputValidWithDefaults(t *testing.T) {
	t.Parallel()
	in, err := inputschema.Parse([]byte(valid))
	if err != nil {
		t.Fatalf("ParseInput: %v", err)
	}
	if in.User != "auth0-ses-sender" || len(in.Targets) != 3 || in.VerifyAttempts != rotation.DefaultVerifyAttempts || in.Trigger != "manual" {
		t.Fatalf("got %+v", in)
	}
	if in.Targets[1].Strategy != "newCredential" || in.Targets[2].KeyIDField != "accessKeyId" {
		t.Fatalf("target defaults: %+v", in.Targets)
	}
	minimal, err := inputschema.Parse([]byte(`{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s"}],"minKeyAgeDays":0}`))
	if err != nil {
		t.Fatalf("minimal: %v", err)
	}
	if minimal.MinKeyAgeDays != 0 || minimal.WaitDays != rotation.DefaultWaitDays || minimal.GraceDays != rotation.DefaultGraceDays {
		t.Fatalf("an explicit 0 must stay 0 and absent fields take defaults: %+v", minimal)
	}
}

// I7: bad input is refused before any change, with a message naming the field.
func TestParseInputRefusesNamingTheField(t *testing.T) {
	t.Parallel()
	sec := `{"type":"secret","name":"app","secretId":"app/key"}`
	tests := []struct {
		name, input, field, says string
	}{
		{"invalid JSON", `{"user":`, "", "not valid JSON"},
		{"not an object", `[1,2]`, "", "object"},
		{"empty", ``, "", "not valid JSON"},
		{"missing user", `{"targets":[` + sec + `]}`, "user", "required"},
		{"missing targets", `{"user":"u"}`, "targets", "required"},
		{"user not a string", `{"user":42,"targets":[` + sec + `]}`, "user", "string"},
		{"user too long", `{"user":"` + strings.Repeat("u", 65) + `","targets":[` + sec + `]}`, "user", "match"},
		{"user with a slash", `{"user":"a/b","targets":[` + sec + `]}`, "user", "match"},
		{"empty user", `{"user":"","targets":[` + sec + `]}`, "user", "match"},
		{"no targets", `{"user":"u","targets":[]}`, "targets", "minItems"},
		{"targets not an array", `{"user":"u","targets":{}}`, "targets", "array"},
		{"unknown target type", `{"user":"u","targets":[{"type":"s3","name":"x"}]}`, "targets[0].type", "auth0"},
		{"target without type", `{"user":"u","targets":[{"name":"x","secretId":"s"}]}`, "targets[0].type", "required"},
		{"target without name", `{"user":"u","targets":[{"type":"secret","secretId":"s"}]}`, "targets[0].name", "required"},
		{"target name too long", `{"user":"u","targets":[{"type":"secret","name":"` + strings.Repeat("n", 65) + `","secretId":"s"}]}`, "targets[0].name", "match"},
		{"secret without secretId", `{"user":"u","targets":[{"type":"secret","name":"a"}]}`, "targets[0].secretId", "required"},
		{"userPath without a leading slash", `{"user":"u","userPath":"service/","targets":[` + sec + `]}`, "userPath", "match"},
		{"userPath without a trailing slash", `{"user":"u","userPath":"/service","targets":[` + sec + `]}`, "userPath", "match"},
		{"userPath empty", `{"user":"u","userPath":"","targets":[` + sec + `]}`, "userPath", "minLength"},
		{"userPath with a space", `{"user":"u","userPath":"/a b/","targets":[` + sec + `]}`, "userPath", "match"},
		{"kmsKeyId a bare key id", `{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s","kmsKeyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}]}`, "targets[0].kmsKeyId", "match"},
		{"kmsKeyId an alias name", `{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s","kmsKeyId":"alias/app"}]}`, "targets[0].kmsKeyId", "match"},
		{"kmsKeyId on an auth0 target", `{"user":"u","targets":[{"type":"auth0","name":"a","connection":"keyrotator/connections/a","sesRegion":"us-east-1","kmsKeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}]}`, "targets[0].kmsKeyId", "known field"},
		{"secret in keyrotator's own space", `{"user":"u","targets":[{"type":"secret","name":"a","secretId":"keyrotator/users/u"}]}`, "targets[0].secretId", ""},
		{"auth0 without connection", `{"user":"u","targets":[{"type":"auth0","name":"t","sesRegion":"us-east-1"}]}`, "targets[1-9]*.connection|targets[0].connection", "required"},
		{"auth0 bad region", `{"user":"u","targets":[{"type":"auth0","name":"t","connection":"keyrotator/connections/a","sesRegion":"tokyo"}]}`, "targets[0].sesRegion", "match"},
		{"auth0 connection outside keyrotator/", `{"user":"u","targets":[{"type":"auth0","name":"t","connection":"other/a","sesRegion":"us-east-1"}]}`, "targets[0].connection", "match"},
		{"field of another target kind", `{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s","sesRegion":"us-east-1"}]}`, "targets[0].sesRegion", "not a known field"},
		{"soracom unknown strategy", `{"user":"u","targets":[{"type":"soracom","name":"f","connection":"keyrotator/connections/s","strategy":"yolo"}]}`, "targets[0].strategy", "newCredential"},
		{"duplicate target names", `{"user":"u","targets":[` + sec + `,` + sec + `]}`, "targets[1].name", "unique"},
		{"negative waitDays", `{"user":"u","targets":[` + sec + `],"waitDays":-1}`, "waitDays", "minimum"},
		{"zero waitDays: IAM last-used lags by hours", `{"user":"u","targets":[` + sec + `],"waitDays":0}`, "waitDays", "minimum"},
		{"waitDays not an integer", `{"user":"u","targets":[` + sec + `],"waitDays":1.5}`, "waitDays", "integer"},
		{"waitDays as a string", `{"user":"u","targets":[` + sec + `],"waitDays":"7"}`, "waitDays", "integer"},
		{"waitDays too long", `{"user":"u","targets":[` + sec + `],"waitDays":365}`, "waitDays", "maximum"},
		{"negative graceDays", `{"user":"u","targets":[` + sec + `],"graceDays":-2}`, "graceDays", "minimum"},
		{"graceDays 0: deleted before IAM reports a late use", `{"user":"u","targets":[` + sec + `],"graceDays":0}`, "graceDays", "minimum"},
		{"minKeyAgeDays too large", `{"user":"u","targets":[` + sec + `],"minKeyAgeDays":1000}`, "minKeyAgeDays", "maximum"},
		{"verifyAttempts zero", `{"user":"u","targets":[` + sec + `],"verifyAttempts":0}`, "verifyAttempts", "minimum"},
		{"dryRun not a boolean", `{"user":"u","targets":[` + sec + `],"dryRun":"yes"}`, "dryRun", "boolean"},
		{"unknown top-level field", `{"user":"u","targets":[` + sec + `],"wait":7}`, "wait", "not a known field"},
		{"unknown trigger", `{"user":"u","targets":[` + sec + `],"trigger":"cron"}`, "trigger", "manual"},
		{"too many targets", `{"user":"u","targets":[` + strings.TrimSuffix(strings.Repeat(sec+",", 21), ",") + `]}`, "targets", "maxItems"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inputschema.Parse([]byte(tt.input))
			var inv *rotation.InvalidInput
			if !errors.As(err, &inv) {
				t.Fatalf("got %v, want *InvalidInput", err)
			}
			wantField := tt.field
			if i := strings.IndexByte(wantField, '|'); i >= 0 {
				wantField = wantField[i+1:]
			}
			if inv.Field != wantField {
				t.Errorf("field: got %q, want %q (%v)", inv.Field, wantField, err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("message %q does not say %q", err.Error(), tt.says)
			}
			if len(tt.input) > 12 && strings.Contains(err.Error(), tt.input) {
				t.Errorf("message echoes the input: %q", err.Error())
			}
		})
	}
}

// A key given twice is refused naming it and its path, not silently
// resolved to the last one (issue 11, finding 8); nesting is bounded
// without recursion, so a 5,000-deep array is a refusal, not a crash.
func TestParseInputRefusesDuplicateKeysAndDeepNesting(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	deepObj := `{"user":"a","targets":[{"name":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000) + `}]}`
	cases := []struct {
		name, raw, field, reason string
	}{
		{"root", `{"user":"a","user":"b","targets":[]}`, "user", "twice"},
		{"target", `{"user":"a","targets":[{"type":"secret","name":"x","name":"y","secretId":"app/k"}]}`, "targets[0].name", "twice"},
		{"second target", `{"user":"a","targets":[{"type":"secret","name":"x","secretId":"a/k"},{"type":"secret","secretId":"b/k","name":"y","secretId":"c/k"}]}`, "targets[1].secretId", "twice"},
		{"deep array", deep, "", "deeper than"},
		{"deep object", deepObj, "targets[0].name" + strings.Repeat(".a", rotation.MaxDepth-3), "deeper than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := inputschema.Parse([]byte(c.raw))
			var ii *rotation.InvalidInput
			if !errors.As(err, &ii) {
				t.Fatalf("ParseInput = %v, want *InvalidInput", err)
			}
			if ii.Field != c.field && (c.field != "" || !strings.HasPrefix(ii.Field, "[")) {
				t.Errorf("Field = %q, want %q (%v)", ii.Field, c.field, ii)
			}
			if !strings.Contains(ii.Reason, c.reason) || len(ii.Error()) > 300 {
				t.Errorf("Reason = %q, want it to say %q, briefly", ii.Reason, c.reason)
			}
		})
	}
	// Keys repeated in different objects are not duplicates.
	if _, err := inputschema.Parse([]byte(`{"user":"a","targets":[{"type":"secret","name":"x","secretId":"a/k"},{"type":"secret","name":"y","secretId":"b/k"}]}`)); err != nil {
		t.Errorf("the same keys in two targets: %v", err)
	}
}

// A misspelt field is reported as the unknown field it is, naming it and
// the field it was probably meant to be, not as the missing field it
// left out (issue 11, finding 8).
func TestParseInputReportsUnknownFieldFirst(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, raw, field, suggest string }{
		{"secretID", `{"user":"a","targets":[{"type":"secret","name":"x","secretID":"app/k"}]}`, "targets[0].secretID", "secretId"},
		{"usr", `{"usr":"a","targets":[{"type":"secret","name":"x","secretId":"app/k"}]}`, "usr", "user"},
		{"far", `{"user":"a","targets":[{"type":"secret","name":"x","secretId":"app/k","colour":"red"}]}`, "targets[0].colour", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := inputschema.Parse([]byte(c.raw))
			var ii *rotation.InvalidInput
			if !errors.As(err, &ii) || ii.Field != c.field || !strings.Contains(ii.Reason, "not a known field") {
				t.Fatalf("ParseInput = %v, want %s reported as not a known field", err, c.field)
			}
			if c.suggest != "" && !strings.Contains(ii.Reason, `"`+c.suggest+`"`) {
				t.Errorf("Reason = %q, want it to suggest %q", ii.Reason, c.suggest)
			}
		})
	}
}

// 7.0 is an integer to JSON Schema, and the state machine's JSON may
// re-encode 7.0 as 7 on its way to Validate: ParseInput, the one parser the
// CLI and Validate share, takes an integral number in any spelling, so both
// run the same input (issue 11, finding 8); 7.5 stays refused.
func TestParseInputIntegralNumbers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		wait string
		want int
	}{{"7", 7}, {"7.0", 7}, {"7e0", 7}, {"0.7e1", 7}, {"7.5", 0}, {"1e400", 0}} {
		raw := `{"user":"a","targets":[{"type":"secret","name":"x","secretId":"app/k"}],"waitDays":` + c.wait + `}`
		in, err := inputschema.Parse([]byte(raw))
		if c.want == 0 {
			var ii *rotation.InvalidInput
			if !errors.As(err, &ii) || ii.Field != "waitDays" {
				t.Errorf("waitDays %s: %v, want refused naming waitDays", c.wait, err)
			}
			continue
		}
		if err != nil || in.WaitDays != c.want {
			t.Errorf("waitDays %s: %d, %v, want %d", c.wait, in.WaitDays, err, c.want)
		}
	}
}

// A user with an IAM path and a secret with its own KMS key: the CDK app
// grants on user<path><name> and on that key; the functions use the name.
func TestParseInputUserPathAndKMSKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input, path, kmsKey string
	}{
		{"no path", `{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s"}]}`, "/", ""},
		{"root path", `{"user":"u","userPath":"/","targets":[{"type":"secret","name":"a","secretId":"s"}]}`, "/", ""},
		{"nested path", `{"user":"u","userPath":"/service/app/","targets":[{"type":"secret","name":"a","secretId":"s"}]}`, "/service/app/", ""},
		{"key ARN", `{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s","kmsKeyId":"arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}]}`, "/", "arn:aws:kms:ap-northeast-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"alias ARN", `{"user":"u","targets":[{"type":"secret","name":"a","secretId":"s","kmsKeyId":"arn:aws-cn:kms:cn-north-1:111122223333:alias/app/secrets"}]}`, "/", "arn:aws-cn:kms:cn-north-1:111122223333:alias/app/secrets"},
		{"connection under another stack prefix", `{"user":"u","targets":[{"type":"auth0","name":"a","connection":"kr2/connections/a","sesRegion":"us-east-1"}]}`, "/", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, err := inputschema.Parse([]byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if in.User != "u" || in.Path() != tc.path {
				t.Errorf("user %q path %q, want u and %q", in.User, in.Path(), tc.path)
			}
			if got := in.Targets[0].KMSKeyID; got != tc.kmsKey {
				t.Errorf("kmsKeyId %q, want %q", got, tc.kmsKey)
			}
		})
	}
}
