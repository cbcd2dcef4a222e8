package trail

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

type fakeAPI struct {
	pages [][]types.Event
	asked []*cloudtrail.LookupEventsInput
}

func (f *fakeAPI) LookupEvents(_ context.Context, in *cloudtrail.LookupEventsInput, _ ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error) {
	f.asked = append(f.asked, in)
	i := len(f.asked) - 1
	out := &cloudtrail.LookupEventsOutput{Events: f.pages[i]}
	if i+1 < len(f.pages) {
		out.NextToken = aws.String("next")
	}
	return out, nil
}

func event(raw string) types.Event {
	return types.Event{EventName: aws.String("CreateAccessKey"), CloudTrailEvent: aws.String(raw)}
}

func TestKeyMaker(t *testing.T) {
	t.Parallel()
	const role = "arn:aws:sts::111122223333:assumed-role/createkey-role/createkey"
	mine := event(`{"userIdentity":{"arn":"` + role + `"},"responseElements":{"accessKey":{"accessKeyId":"AKIAMINE","userName":"app","status":"Active"}}}`)
	person := event(`{"userIdentity":{"arn":"arn:aws:iam::111122223333:user/alice"},"responseElements":{"accessKey":{"accessKeyId":"AKIAPERSON","userName":"app"}}}`)
	refused := event(`{"userIdentity":{"arn":"arn:aws:iam::111122223333:user/mallory"},"errorCode":"LimitExceeded","responseElements":null}`)
	otherUser := event(`{"userIdentity":{"arn":"arn:aws:iam::111122223333:user/eve"},"responseElements":{"accessKey":{"accessKeyId":"AKIAMINE","userName":"other"}}}`)
	garbage := event(`not json`)
	for _, tt := range []struct {
		name      string
		pages     [][]types.Event
		id        string
		wantMaker string
		wantFound bool
	}{
		{"own key", [][]types.Event{{refused, person, mine}}, "AKIAMINE", role, true},
		{"a person's", [][]types.Event{{mine, person}}, "AKIAPERSON", "arn:aws:iam::111122223333:user/alice", true},
		{"on a later page", [][]types.Event{{garbage, refused}, {person}, {mine}}, "AKIAMINE", role, true},
		{"not delivered yet", [][]types.Event{{person, refused}}, "AKIAMINE", "", false},
		{"same id for another user is not it", [][]types.Event{{otherUser}}, "AKIAMINE", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeAPI{pages: tt.pages}
			created := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
			maker, found, err := New(api).KeyMaker(context.Background(), "app", tt.id, created)
			if err != nil || maker != tt.wantMaker || found != tt.wantFound {
				t.Fatalf("KeyMaker = %q %v %v, want %q %v", maker, found, err, tt.wantMaker, tt.wantFound)
			}
			in := api.asked[0]
			if len(in.LookupAttributes) != 1 || in.LookupAttributes[0].AttributeKey != types.LookupAttributeKeyEventName ||
				!aws.ToTime(in.StartTime).Before(created) || !aws.ToTime(in.EndTime).After(created) {
				t.Errorf("asked %+v", in)
			}
		})
	}
}

func TestIAMEventsRegion(t *testing.T) {
	t.Parallel()
	for region, want := range map[string]string{"ap-northeast-1": "us-east-1", "us-east-1": "us-east-1", "cn-northwest-1": "cn-north-1", "us-gov-east-1": "us-gov-west-1"} {
		if got := ForIAMEvents(aws.Config{Region: region}).api.(*cloudtrail.Client).Options().Region; got != want {
			t.Errorf("%s: IAM's events are read in %s, want %s", region, got, want)
		}
	}
}
