package soracom_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
	"github.com/keyrotator/keyrotator/local/sandbox/soracom"
)

func awsCredential(k sandboxtest.UserKey) soracom.CredentialInput {
	return soracom.CredentialInput{Type: "aws-credentials", Description: "funnel key",
		Credentials: map[string]any{"accessKeyId": k.AccessKeyID, "secretAccessKey": k.SecretAccessKey}}
}

func funnel(credRef any) map[string]map[string]any {
	return map[string]map[string]any{"SoracomFunnel": {"enabled": true, "credentialsId": credRef, "contentType": "json",
		"destination": map[string]any{"provider": "aws", "service": "aws-iot", "resourceUrl": "https://a1b2c3-ats.iot.ap-northeast-1.amazonaws.com/devices/#{imsi}"}}}
}

func funk(credRef any, arn string) map[string]map[string]any {
	return map[string]map[string]any{"SoracomFunk": {"enabled": true, "credentialsId": credRef, "contentType": "json",
		"destination": map[string]any{"provider": "aws", "service": "lambda", "resourceUrl": arn}}}
}

// eventually polls cond until it holds or 5 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastUsed is what IAM's GetAccessKeyLastUsed says of a key, through the SDK.
func lastUsed(t *testing.T, c *iam.Client, keyID string) *iamtypes.AccessKeyLastUsed {
	t.Helper()
	out, err := c.GetAccessKeyLastUsed(context.Background(), &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("GetAccessKeyLastUsed %s: %v", keyID, err)
	}
	return out.AccessKeyLastUsed
}

// A group uses the key its credential holds: IAM's last-used shows the
// IoT publish (Funnel) and the Lambda invoke (Funk), the credential's
// lastUsedDateTime moves, and after the credential is swapped in place the
// new key is the one in use.
func TestPushUsesTheKey(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{IAMLag: fullsandbox.NoIAMLag}) // about the use, not IAM's reporting lag
	keys := sb.User(t, "soracom-funnel", 2)
	funkKeys := sb.User(t, "soracom-funk", 1)
	iamc := iam.NewFromConfig(sb.Config(t))
	o, err := sb.Soracom.AddOperator(soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{admin}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.PutCredential("funnel-key", awsCredential(keys[0])); err != nil {
		t.Fatal(err)
	}
	if err := o.PutCredential("funk-key", awsCredential(funkKeys[0])); err != nil {
		t.Fatal(err)
	}
	funnelGroup, err := o.AddGroup(soracom.GroupConfig{Name: "funnel", Configuration: funnel("funnel-key")})
	if err != nil {
		t.Fatal(err)
	}
	funkGroup, err := o.AddGroup(soracom.GroupConfig{Name: "funk",
		Configuration: funk(map[string]any{"$credentialsId": "funk-key"}, "arn:aws:lambda:ap-northeast-1:111122223333:function:device-ingest")})
	if err != nil {
		t.Fatal(err)
	}

	eventually(t, "IAM sees the Funnel key used by iotdata in the destination's region", func() bool {
		lu := lastUsed(t, iamc, keys[0].AccessKeyID)
		return aws.ToString(lu.ServiceName) == "iot" && aws.ToString(lu.Region) == "ap-northeast-1"
	})
	eventually(t, "IAM sees the Funk key used by Lambda", func() bool {
		lu := lastUsed(t, iamc, funkKeys[0].AccessKeyID)
		return aws.ToString(lu.ServiceName) == "lambda" && aws.ToString(lu.Region) == "ap-northeast-1"
	})
	if lu := lastUsed(t, iamc, keys[1].AccessKeyID); lu.LastUsedDate != nil {
		t.Fatalf("the second key was never given to SORACOM, yet it was used: %+v", lu)
	}
	for _, c := range o.Credentials() {
		if c.LastUsed.IsZero() {
			t.Errorf("credential %s: lastUsed not set after a push", c.ID)
		}
	}
	g, _ := o.Group(funkGroup)
	if g.Push.Sent == 0 || g.Push.LastService != "lambda" || !strings.Contains(g.Push.LastNote, "device-ingest does not exist") {
		t.Errorf("funk group push: %+v (a missing function is delivered, with a note)", g.Push)
	}
	g, _ = o.Group(funnelGroup)
	if g.Push.Sent == 0 || g.Push.LastKeyID != keys[0].AccessKeyID || g.Push.LastCredentialID != "funnel-key" || g.Push.LastError != "" {
		t.Errorf("funnel group push: %+v", g.Push)
	}

	// Rotation: the credential is swapped in place; the group now uses the new key.
	if err := o.PutCredential("funnel-key", awsCredential(keys[1])); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new key in use", func() bool {
		return lastUsed(t, iamc, keys[1].AccessKeyID).LastUsedDate != nil
	})
	before := lastUsed(t, iamc, keys[0].AccessKeyID).LastUsedDate
	time.Sleep(100 * time.Millisecond)
	if after := lastUsed(t, iamc, keys[0].AccessKeyID).LastUsedDate; !after.Equal(*before) {
		t.Errorf("the old key is still in use after the swap: %v → %v", before, after)
	}
}

// A key deactivated while a group still points at it makes the group's
// pushes fail visibly; a group pointing at a credential that does not exist
// fails too, without any AWS call.
func TestPushFailsVisibly(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	keys := sb.User(t, "soracom-missed", 1)
	o, err := sb.Soracom.AddOperator(soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{admin},
		Credentials: map[string]soracom.CredentialInput{"old": awsCredential(keys[0])},
		Groups: []soracom.GroupConfig{
			{ID: "group-a", Name: "missed", Configuration: funnel("old")},
			{ID: "group-b", Name: "dangling", Configuration: funnel("gone")},
			{ID: "group-c", Name: "disabled", Configuration: map[string]map[string]any{"SoracomFunnel": {"enabled": false, "credentialsId": "gone"}}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a push with the key", func() bool { g, _ := o.Group("group-a"); return g.Push.Sent > 0 })
	if _, err := iam.NewFromConfig(sb.Config(t)).UpdateAccessKey(context.Background(), &iam.UpdateAccessKeyInput{
		UserName: aws.String("soracom-missed"), AccessKeyId: aws.String(keys[0].AccessKeyID), Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the push refused", func() bool {
		g, _ := o.Group("group-a")
		return g.Push.Failed > 0 && strings.Contains(g.Push.LastError, "UnrecognizedClientException")
	})
	g, _ := o.Group("group-b")
	if g.Push.Failed == 0 || !strings.Contains(g.Push.LastError, "credentials gone do not exist") {
		t.Errorf("dangling group: %+v", g.Push)
	}
	if g, _ := o.Group("group-c"); g.Push.Sent+g.Push.Failed != 0 {
		t.Errorf("a disabled group pushed: %+v", g.Push)
	}
	if strings.Contains(fmt.Sprint(o.Groups()), keys[0].SecretAccessKey) {
		t.Error("a group view holds the secret")
	}
}

// One push a tick per credential, however many groups share it: every one
// of 50 groups records each push, and the sandbox saw as many publishes as
// one group recorded, not fifty times as many.
func TestPushOncePerCredential(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	keys := sb.User(t, "soracom-fleet", 1)
	cfg := soracom.OperatorConfig{SAMUsers: []soracom.SAMUser{admin}, Credentials: map[string]soracom.CredentialInput{"fleet": awsCredential(keys[0])}}
	for i := range 50 {
		ref := any("fleet")
		if i%2 == 1 {
			ref = map[string]any{"$credentialsId": "fleet"}
		}
		cfg.Groups = append(cfg.Groups, soracom.GroupConfig{ID: fmt.Sprintf("group-%02d", i), Name: fmt.Sprint("g", i), Configuration: funnel(ref)})
	}
	seq := sb.Server.Calls().Last()
	o, err := sb.Soracom.AddOperator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a few pushes", func() bool { g, _ := o.Group("group-49"); return g.Push.Sent >= 3 })
	sb.Soracom.Close() // stop the loop, so the counts hold still
	var publishes int
	for _, c := range sb.Calls(t, seq) {
		if c.Service == "iotdata" && c.Action == "Publish" {
			publishes++
			if c.AccessKeyID != keys[0].AccessKeyID || c.Status != http.StatusOK {
				t.Errorf("publish %+v", c)
			}
		}
	}
	groups := o.Groups()
	sent := groups[0].Push.Sent
	// A publish cut short by Close may have reached the sandbox unrecorded by the groups.
	if publishes != sent && publishes != sent+1 {
		t.Fatalf("%d publishes for %d pushes recorded by each group, want one publish a push", publishes, sent)
	}
	for _, g := range groups {
		if g.Push.Sent != sent || g.Push.Failed != 0 {
			t.Fatalf("group %s: sent %d failed %d, want the %d pushes every group shares", g.ID, g.Push.Sent, g.Push.Failed, sent)
		}
	}
	if publishes == 0 || len(groups) != 50 {
		t.Fatalf("%d publishes for %d groups", publishes, len(groups))
	}
}

// The admin API: operators made and read without secrets, failures queued.
func TestAdminAPI(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	var v soracom.OperatorView
	code := sb.AdminCall(t, http.MethodPost, "/soracom/operators", soracom.OperatorConfig{ID: "OP0000000042", SAMUsers: []soracom.SAMUser{admin},
		Credentials: map[string]soracom.CredentialInput{"c": {Type: "aws-credentials", Credentials: map[string]any{"accessKeyId": "AKIAADMIN00000000001", "secretAccessKey": "admin-secret-value"}}}}, &v)
	if code != http.StatusCreated || v.ID != "OP0000000042" || !strings.HasPrefix(v.Endpoint, "http://127.0.0.1:") || len(v.Credentials) != 1 || v.Credentials[0].AccessKeyID != "AKIAADMIN00000000001" {
		t.Fatalf("POST /operators: %d %+v", code, v)
	}
	var raw any
	sb.AdminCall(t, http.MethodGet, "/soracom/operators", nil, &raw)
	if s := fmt.Sprint(raw); strings.Contains(s, "admin-secret-value") || strings.Contains(s, admin.AuthKey) {
		t.Fatalf("GET /operators shows a secret: %s", s)
	}
	sb.AdminCall(t, http.MethodPatch, "/soracom/operators/OP0000000042", map[string]any{"fail": soracom.Failure{Operation: "listGroups", Status: 503}}, &v)
	if len(v.Failures) != 1 || v.Failures[0].Status != 503 {
		t.Fatalf("PATCH fail: %+v", v.Failures)
	}
	if code := sb.AdminCall(t, http.MethodPatch, "/soracom/operators/OP0000000042", map[string]any{"fail": soracom.Failure{Status: 200}}, &raw); code != http.StatusBadRequest {
		t.Errorf("PATCH with a success status as failure: %d", code)
	}
	o, _ := sb.Soracom.Operator("OP0000000042")
	sess := signIn(t, o, admin, 0)
	if r := sess.do("GET", "/groups", nil); r.status != 503 {
		t.Errorf("queued failure: %s", r)
	}
	var calls []soracom.APICall
	sb.AdminCall(t, http.MethodGet, "/soracom/operators/OP0000000042/calls", nil, &calls)
	if len(calls) != 2 || calls[1].Operation != "listGroups" || calls[1].Status != 503 {
		t.Errorf("calls: %+v", calls)
	}
	if code := sb.AdminCall(t, http.MethodGet, "/soracom/operators/OP9", nil, &raw); code != http.StatusNotFound {
		t.Errorf("unknown operator: %d", code)
	}
}
