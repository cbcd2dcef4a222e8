package cloudtrail_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ses"
	sestypes "github.com/aws/aws-sdk-go-v2/service/ses/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox"
	ctsvc "github.com/keyrotator/keyrotator/local/sandbox/cloudtrail"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// patient is a CloudTrail client that rides out the 2 requests/second limit.
func patient(cfg aws.Config) *cloudtrail.Client {
	return cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 20
			so.MaxBackoff = 600 * time.Millisecond
		})
	})
}

func lookup(t *testing.T, c *cloudtrail.Client, key types.LookupAttributeKey, value string) []types.Event {
	t.Helper()
	var events []types.Event
	in := &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{{AttributeKey: key, AttributeValue: aws.String(value)}}}
	p := cloudtrail.NewLookupEventsPaginator(c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("LookupEvents %s=%s: %v", key, value, err)
		}
		events = append(events, out.Events...)
	}
	return events
}

func names(events []types.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, aws.ToString(e.EventName))
	}
	return out
}

// A user's key is found by AccessKeyId lookup for its management calls, but
// not for an SES send, which IAM's last-used nevertheless shows.
func TestLookupByAccessKey(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{IAMLag: fullsandbox.NoIAMLag}) // reads last-used at once: not about IAM's reporting lag
	ctx := context.Background()
	key := sb.User(t, "app", 1)[0]
	app := sb.ConfigAs(t, key.AccessKeyID, key.SecretAccessKey, "")

	if _, err := sts.NewFromConfig(app).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	appIAM := iam.NewFromConfig(app, func(o *iam.Options) { o.RetryMaxAttempts = 1 })
	if _, err := appIAM.ListAccessKeys(ctx, &iam.ListAccessKeysInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := appIAM.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("ghost")}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("failed call: %v", err)
	}
	if _, err := ses.NewFromConfig(app).SendEmail(ctx, &ses.SendEmailInput{
		Source:      aws.String("noreply@example.com"),
		Destination: &sestypes.Destination{ToAddresses: []string{"ops@example.com"}},
		Message: &sestypes.Message{Subject: &sestypes.Content{Data: aws.String("hi")},
			Body: &sestypes.Body{Text: &sestypes.Content{Data: aws.String("body")}}},
	}); err != nil {
		t.Fatalf("SendEmail: %v", err)
	}

	ct := patient(sb.Config(t))
	events := lookup(t, ct, types.LookupAttributeKeyAccessKeyId, key.AccessKeyID)
	if got := names(events); !slices.Equal(got, []string{"ListAccessKeys", "ListAccessKeys", "GetCallerIdentity"}) {
		t.Fatalf("events for the user's key, newest first: %v", got)
	}
	// The failed call carries its error code; the user is named.
	var rec struct {
		EventVersion string `json:"eventVersion"`
		UserIdentity struct {
			Type, PrincipalID, ARN, AccountID, AccessKeyID, UserName string
		} `json:"userIdentity"`
		EventSource        string         `json:"eventSource"`
		EventName          string         `json:"eventName"`
		AWSRegion          string         `json:"awsRegion"`
		SourceIPAddress    string         `json:"sourceIPAddress"`
		UserAgent          string         `json:"userAgent"`
		ErrorCode          string         `json:"errorCode"`
		RequestParameters  map[string]any `json:"requestParameters"`
		EventID            string         `json:"eventID"`
		ReadOnly           bool           `json:"readOnly"`
		EventType          string         `json:"eventType"`
		ManagementEvent    bool           `json:"managementEvent"`
		RecipientAccountID string         `json:"recipientAccountId"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(events[0].CloudTrailEvent)), &rec); err != nil {
		t.Fatalf("CloudTrailEvent: %v", err)
	}
	if rec.ErrorCode != "NoSuchEntity" || rec.EventSource != "iam.amazonaws.com" || rec.AWSRegion != "us-east-1" ||
		rec.UserIdentity.Type != "IAMUser" || rec.UserIdentity.UserName != "app" || rec.UserIdentity.AccessKeyID != key.AccessKeyID ||
		rec.UserIdentity.ARN != "arn:aws:iam::111122223333:user/app" || rec.UserIdentity.AccountID != "111122223333" ||
		rec.SourceIPAddress != "127.0.0.1" || rec.UserAgent == "" || !rec.ReadOnly || rec.EventType != "AwsApiCall" ||
		!rec.ManagementEvent || rec.RecipientAccountID != "111122223333" || rec.EventID != aws.ToString(events[0].EventId) {
		t.Fatalf("CloudTrailEvent: %+v", rec)
	}
	if aws.ToString(events[0].Username) != "app" || aws.ToString(events[0].ReadOnly) != "true" || aws.ToString(events[0].EventSource) != "iam.amazonaws.com" {
		t.Fatalf("event: %+v", events[0])
	}
	// The SES send is a data event: absent from the history, present in last-used.
	if got := lookup(t, ct, types.LookupAttributeKeyEventSource, "ses.amazonaws.com"); len(got) != 0 {
		t.Fatalf("SES events in the history: %v", names(got))
	}
	lu, err := iam.NewFromConfig(sb.Config(t)).GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(key.AccessKeyID)})
	if err != nil || aws.ToString(lu.AccessKeyLastUsed.ServiceName) != "ses" {
		t.Fatalf("last used: %v %+v", err, lu)
	}
	// The other lookup attributes.
	tests := []struct {
		key   types.LookupAttributeKey
		value string
		want  int
	}{
		{types.LookupAttributeKeyUsername, "app", 3},
		{types.LookupAttributeKeyEventName, "GetCallerIdentity", 1},
		{types.LookupAttributeKeyEventId, aws.ToString(events[1].EventId), 1},
		{types.LookupAttributeKeyReadOnly, "false", 0},
		{types.LookupAttributeKeyEventSource, "sts.amazonaws.com", 1},
		{types.LookupAttributeKeyResourceType, "AWS::IAM::User", 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.key), func(t *testing.T) {
			if got := lookup(t, ct, tt.key, tt.value); len(got) != tt.want {
				t.Fatalf("%s=%s: %v, want %d events", tt.key, tt.value, names(got), tt.want)
			}
		})
	}
	// Resource lookups: a secret's ARN, by name and type.
	sec, err := secretsmanager.NewFromConfig(sb.Config(t)).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app"), SecretString: aws.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, ct, types.LookupAttributeKeyResourceName, aws.ToString(sec.ARN)); len(got) != 1 || aws.ToString(got[0].EventName) != "CreateSecret" ||
		aws.ToString(got[0].ReadOnly) != "false" || len(got[0].Resources) != 1 || aws.ToString(got[0].Resources[0].ResourceType) != "AWS::SecretsManager::Secret" {
		t.Fatalf("by resource name: %+v", got)
	}
	if got := lookup(t, ct, types.LookupAttributeKeyResourceType, "AWS::SecretsManager::Secret"); len(got) != 1 {
		t.Fatalf("by resource type: %v", names(got))
	}
}

func TestLookupValidation(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	c := patient(sb.Config(t))
	now := time.Now()
	for range 3 {
		if _, err := sts.NewFromConfig(sb.Config(t)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1)})
	if err != nil || len(first.Events) != 1 || first.NextToken == nil {
		t.Fatalf("first page: %v %+v", err, first)
	}
	attr := func(k types.LookupAttributeKey, v string) types.LookupAttribute {
		return types.LookupAttribute{AttributeKey: k, AttributeValue: aws.String(v)}
	}
	tests := []struct {
		name string
		in   cloudtrail.LookupEventsInput
		code string
	}{
		{"two attributes", cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{attr("EventName", "A"), attr("Username", "B")}}, "InvalidLookupAttributesException"},
		{"unknown attribute", cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{attr("Colour", "A")}}, "InvalidLookupAttributesException"},
		{"empty value", cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{attr("EventName", "")}}, "InvalidLookupAttributesException"},
		{"start after end", cloudtrail.LookupEventsInput{StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Hour))}, "InvalidTimeRangeException"},
		{"MaxResults 0", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)}, "InvalidMaxResultsException"},
		{"MaxResults 51", cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)}, "InvalidMaxResultsException"},
		{"garbage token", cloudtrail.LookupEventsInput{NextToken: aws.String("not-a-token")}, "InvalidNextTokenException"},
		{"token of another lookup", cloudtrail.LookupEventsInput{NextToken: first.NextToken, LookupAttributes: []types.LookupAttribute{attr("EventName", "GetCallerIdentity")}}, "InvalidNextTokenException"},
		{"token with another time range", cloudtrail.LookupEventsInput{NextToken: first.NextToken, StartTime: aws.Time(now.Add(-time.Hour))}, "InvalidNextTokenException"},
		{"token with another page size", cloudtrail.LookupEventsInput{NextToken: first.NextToken, MaxResults: aws.Int32(2)}, ""},
		{"end before the events", cloudtrail.LookupEventsInput{EndTime: aws.Time(now.Add(-time.Minute))}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			out, err := c.LookupEvents(ctx, &in)
			if apiCode(err) != tt.code {
				t.Fatalf("got %v, want %q", err, tt.code)
			}
			if tt.name == "token with another page size" && len(out.Events) != 2 {
				t.Fatalf("second page: %d events", len(out.Events))
			}
			if tt.name == "end before the events" && len(out.Events) != 0 {
				t.Fatalf("events before they happened: %v", names(out.Events))
			}
		})
	}
}

func TestPagingNewestFirst(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	admin := iam.NewFromConfig(sb.Config(t))
	for range 60 {
		if _, err := admin.ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
			t.Fatal(err)
		}
	}
	c := patient(sb.Config(t))
	in := &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("ListUsers")}}}
	page1, err := c.LookupEvents(ctx, in)
	if err != nil || len(page1.Events) != 50 || page1.NextToken == nil {
		t.Fatalf("page 1: %v, %d events", err, len(page1.Events))
	}
	// Newer events do not shift the pages already begun.
	if _, err := admin.ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
		t.Fatal(err)
	}
	in.NextToken = page1.NextToken
	page2, err := c.LookupEvents(ctx, in)
	if err != nil || len(page2.Events) != 10 || page2.NextToken != nil {
		t.Fatalf("page 2: %v, %d events, token %v", err, len(page2.Events), page2.NextToken)
	}
	all := append(page1.Events, page2.Events...)
	seen := map[string]bool{}
	for i, e := range all {
		if seen[aws.ToString(e.EventId)] {
			t.Fatalf("event %s twice", aws.ToString(e.EventId))
		}
		seen[aws.ToString(e.EventId)] = true
		if i > 0 && e.EventTime.After(*all[i-1].EventTime) {
			t.Fatalf("event %d is newer than event %d", i, i-1)
		}
	}
	// Small pages reach every event too (61 now).
	if got := len(lookupAll(t, c, 7)); got != 61 {
		t.Fatalf("pages of 7: %d events", got)
	}
}

func lookupAll(t *testing.T, c *cloudtrail.Client, size int32) []types.Event {
	t.Helper()
	var out []types.Event
	p := cloudtrail.NewLookupEventsPaginator(c, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(size),
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("ListUsers")}}})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Events...)
	}
	return out
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	impatient := cloudtrail.NewFromConfig(sb.Config(t), func(o *cloudtrail.Options) { o.RetryMaxAttempts = 1 })
	var throttled error
	for range 4 {
		if _, err := impatient.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); err != nil {
			throttled = err
			break
		}
	}
	var re *smithyhttp.ResponseError
	if apiCode(throttled) != "ThrottlingException" || !errors.As(throttled, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
		t.Fatalf("4 quick lookups: %v, want ThrottlingException (400)", throttled)
	}
	// The limit is per region.
	west := cloudtrail.NewFromConfig(sb.Config(t), func(o *cloudtrail.Options) { o.RetryMaxAttempts = 1; o.Region = "us-west-2" })
	if _, err := west.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); err != nil {
		t.Fatalf("another region: %v", err)
	}
	time.Sleep(time.Second)
	if _, err := impatient.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}); err != nil {
		t.Fatalf("a second later: %v", err)
	}
}

func TestRegionsRetentionAndDataEvents(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{})
	ctx := context.Background()
	west := func(o *secretsmanager.Options) { o.Region = "us-west-2" }
	if _, err := secretsmanager.NewFromConfig(sb.Config(t), west).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("w")}); err != nil {
		t.Fatal(err)
	}
	// IAM is global: its events are in us-east-1 whatever the caller's region.
	if _, err := iam.NewFromConfig(sb.Config(t), func(o *iam.Options) { o.Region = "us-west-2" }).ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
		t.Fatal(err)
	}
	snsc := sns.NewFromConfig(sb.Config(t))
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	east := patient(sb.Config(t))
	westCfg := sb.Config(t)
	westCfg.Region = "us-west-2"
	westCT := patient(westCfg)
	all := func(c *cloudtrail.Client) []string {
		out, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return names(out.Events)
	}
	if got := all(east); !slices.Equal(got, []string{"CreateTopic", "ListUsers"}) {
		t.Fatalf("us-east-1 events: %v", got)
	}
	if got := all(westCT); !slices.Equal(got, []string{"CreateSecret"}) {
		t.Fatalf("us-west-2 events: %v", got)
	}
	// 90 days by the sandbox clock, then gone from the history.
	sb.Server.Clock().Advance(89 * 24 * time.Hour)
	if got := all(east); len(got) != 2 {
		t.Fatalf("after 89 days: %v", got)
	}
	sb.Server.Clock().Advance(2 * 24 * time.Hour)
	if got := all(east); len(got) != 0 {
		t.Fatalf("after 91 days: %v", got)
	}
	// Nor kept: 90 days is all CloudTrail's event history holds.
	var events []map[string]any
	sb.AdminCall(t, http.MethodGet, "/cloudtrail/events", nil, &events)
	svc, _ := sb.Server.Service("cloudtrail")
	if expired := svc.(*ctsvc.Service).Expired(); len(events) != 0 || expired != 3 {
		t.Fatalf("admin events after 91 days: %d, %d expired; want 0, 3", len(events), expired)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	opts := fullsandbox.Options{Options: sandbox.Options{StateFile: filepath.Join(t.TempDir(), "state.json")}}
	sb := sandboxtest.Start(t, opts)
	if _, err := sts.NewFromConfig(sb.Config(t)).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	saved(t, opts.StateFile, `GetCallerIdentity`)
	w2, err := fullsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := w2.Server.Service("cloudtrail")
	ev := svc.(*ctsvc.Service).Events()
	if len(ev) != 1 || ev[0].EventName != "GetCallerIdentity" {
		t.Fatalf("events after restart: %+v", ev)
	}
}

// saved waits for the sandbox's own save loop to write want into the state
// file (calling SaveState beside it would race on the temporary file).
func saved(t *testing.T, file, want string) {
	t.Helper()
	for range 100 {
		if b, err := os.ReadFile(file); err == nil && strings.Contains(string(b), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("state file never held %q", want)
}
