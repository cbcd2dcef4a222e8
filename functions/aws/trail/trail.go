// Package trail asks CloudTrail's event history whether an access key made
// management calls: supporting evidence for VerifyOldKeyUnused. It cannot
// see SES sends or IoT publishes (data events), so IAM last-used stays the
// primary signal.
package trail

import (
	"context"
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
	p := cloudtrail.NewLookupEventsPaginator(t.api, in)
	for page := 0; p.HasMorePages() && page < MaxPages; page++ {
		if err := t.pace(ctx); err != nil {
			return nil, err
		}
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, awserr.Classify("cloudtrail LookupEvents "+id, err)
		}
		for _, e := range out.Events {
			uses = append(uses, rotation.TrailUse{Time: aws.ToTime(e.EventTime).UTC(), Event: aws.ToString(e.EventName), Source: aws.ToString(e.EventSource)})
		}
	}
	return uses, nil
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
