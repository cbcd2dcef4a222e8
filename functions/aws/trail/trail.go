// Package trail asks CloudTrail's event history whether an access key made
// management calls: supporting evidence for VerifyOldKeyUnused. It cannot
// see SES sends or IoT publishes (data events), so IAM last-used stays the
// primary signal.
package trail

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

type api interface {
	LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, opt ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

var _ api = (*cloudtrail.Client)(nil)

// MaxPages bounds one lookup: 5 pages of 50 events is plenty of evidence.
const MaxPages = 5

// Trail looks up events.
type Trail struct {
	api  api
	mu   sync.Mutex
	last time.Time // LookupEvents allows 2 requests a second per region
}

// New wraps a CloudTrail client.
func New(c api) *Trail { return &Trail{api: c} }

// UsesSince lists the management events made with key id between from and to, newest first.
func (t *Trail) UsesSince(ctx context.Context, id string, from, to time.Time) ([]rotation.TrailUse, error) {
	in := &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyAccessKeyId, AttributeValue: aws.String(id)}},
		StartTime:        aws.Time(from), EndTime: aws.Time(to), MaxResults: aws.Int32(50),
	}
	var uses []rotation.TrailUse
	err := t.lookup(ctx, in, "cloudtrail LookupEvents "+id, func(e types.Event) bool {
		uses = append(uses, rotation.TrailUse{Time: aws.ToTime(e.EventTime).UTC(), Event: aws.ToString(e.EventName), Source: aws.ToString(e.EventSource)})
		return false
	})
	if err != nil {
		return nil, err
	}
	return uses, nil
}

// lookup pages through the events in asks for, at most MaxPages, paced
// under CloudTrail's rate, until visit says it has what it wanted.
func (t *Trail) lookup(ctx context.Context, in *cloudtrail.LookupEventsInput, what string, visit func(types.Event) (done bool)) error {
	p := cloudtrail.NewLookupEventsPaginator(t.api, in)
	for page := 0; p.HasMorePages() && page < MaxPages; page++ {
		if err := t.pace(ctx); err != nil {
			return err
		}
		out, err := p.NextPage(ctx)
		if err != nil {
			return awserr.Classify(what, err)
		}
		for _, e := range out.Events {
			if visit(e) {
				return nil
			}
		}
	}
	return nil
}

// pace keeps this client under CloudTrail's 2 lookups a second.
func (t *Trail) pace(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait := time.Until(t.last.Add(550 * time.Millisecond)); wait > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	t.last = time.Now()
	return nil
}

// IAMEventsRegion is where CloudTrail's event history keeps IAM's events:
// IAM is a global service, and its events are delivered to US East (N.
// Virginia) in the aws partition ("Global service events",
// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-concepts.html#cloudtrail-concepts-global-service-events).
func IAMEventsRegion(partition string) string {
	switch partition {
	case "aws-cn":
		return "cn-north-1"
	case "aws-us-gov":
		return "us-gov-west-1"
	}
	return "us-east-1"
}

// createAccessKeyEvent is the part of a CreateAccessKey event's record that
// says who made which key. CloudTrail records the key's id in
// responseElements.accessKey, never its secret.
type createAccessKeyEvent struct {
	UserIdentity struct {
		ARN string `json:"arn"`
	} `json:"userIdentity"`
	ErrorCode        string `json:"errorCode"`
	ResponseElements *struct {
		AccessKey struct {
			AccessKeyID string `json:"accessKeyId"`
			UserName    string `json:"userName"`
		} `json:"accessKey"`
	} `json:"responseElements"`
}

// KeyMaker is who made access key id of user, made at created: the ARN of
// the identity in the CreateAccessKey event whose response names the key.
// found is false while the event history does not show it (CloudTrail
// delivers an event within about 5 minutes on average, not guaranteed).
// The client must be in the region IAMEventsRegion names.
func (t *Trail) KeyMaker(ctx context.Context, user, id string, created time.Time) (maker string, found bool, err error) {
	in := &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateAccessKey")}},
		// IAM's CreateDate and the event's time are one call's two clocks.
		StartTime: aws.Time(created.Add(-10 * time.Minute)), EndTime: aws.Time(created.Add(10 * time.Minute)), MaxResults: aws.Int32(50),
	}
	err = t.lookup(ctx, in, "cloudtrail LookupEvents CreateAccessKey "+id, func(e types.Event) bool {
		var ev createAccessKeyEvent
		if json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &ev) != nil || ev.ErrorCode != "" || ev.ResponseElements == nil {
			return false
		}
		if k := ev.ResponseElements.AccessKey; k.AccessKeyID == id && (k.UserName == "" || k.UserName == user) {
			maker, found = ev.UserIdentity.ARN, true
		}
		return found
	})
	if err != nil {
		return "", false, err
	}
	return maker, found, nil
}

// ForIAMEvents is a Trail over the event history that holds IAM's events
// (IAMEventsRegion of cfg's partition), with cfg's credentials and endpoint.
func ForIAMEvents(cfg aws.Config) *Trail {
	partition := "aws"
	switch {
	case strings.HasPrefix(cfg.Region, "cn-"):
		partition = "aws-cn"
	case strings.HasPrefix(cfg.Region, "us-gov-"):
		partition = "aws-us-gov"
	}
	return New(cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) { o.Region = IAMEventsRegion(partition) }))
}
