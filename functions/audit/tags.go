package audit

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// The user tags keyrotator reads.
const (
	// TagExempt exempts a user's keys from the audit's deadline rule until
	// a date: "<until yyyy-mm-dd> <reason>".
	TagExempt = "keyrotator:exempt"
	// TagOwner names who owns a user's keys: an SNS topic ARN the owner
	// subscribes to, or an e-mail address (shown only).
	TagOwner = "keyrotator:owner"
)

// MaxTagValueLen is IAM's limit on a tag value, in characters.
const MaxTagValueLen = 256

// tagValue is what IAM accepts as a tag value: letters, digits, spaces
// (Unicode's L, N and Z) and _.:/=+-@, at most 256 characters
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html).
var tagValue = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`) })

// CheckTagValue says why IAM would refuse v as a tag value, or nil.
func CheckTagValue(v string) error {
	if !utf8.ValidString(v) {
		return errors.New("not UTF-8")
	}
	if n := utf8.RuneCountInString(v); n > MaxTagValueLen {
		return fmt.Errorf("is %d characters: IAM takes at most %d", n, MaxTagValueLen)
	}
	if !tagValue().MatchString(v) {
		return errors.New("has a character IAM does not accept in a tag value (letters, digits, spaces and _.:/=+-@ only)")
	}
	return nil
}

// Exemption is a parsed keyrotator:exempt tag.
type Exemption struct {
	// Until is the last day of the exemption (UTC, inclusive): it ends at
	// the following midnight UTC.
	Until  time.Time
	Reason string
}

// Ends is the instant the exemption stops counting.
func (e Exemption) Ends() time.Time { return e.Until.AddDate(0, 0, 1) }

// ActiveAt says whether the exemption counts at now.
func (e Exemption) ActiveAt(now time.Time) bool { return now.Before(e.Ends()) }

// ParseExempt reads "<until yyyy-mm-dd> <reason>": a date, one or more
// spaces, and a reason that is not empty. Every refusal says what is wrong
// without repeating the value.
func ParseExempt(v string) (Exemption, error) {
	if err := CheckTagValue(v); err != nil {
		return Exemption{}, err
	}
	date, reason, _ := strings.Cut(strings.TrimSpace(v), " ")
	until, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return Exemption{}, errors.New(`want "<until yyyy-mm-dd> <reason>": the first word is not a date yyyy-mm-dd`)
	}
	reason = strings.Join(strings.Fields(reason), " ")
	if reason == "" {
		return Exemption{}, errors.New(`want "<until yyyy-mm-dd> <reason>": no reason after the date`)
	}
	return Exemption{Until: until, Reason: reason}, nil
}

// Owner is a parsed keyrotator:owner tag: one of TopicARN or Email.
type Owner struct {
	TopicARN string
	Email    string
}

// String is the owner as the tag says it.
func (o Owner) String() string {
	if o.TopicARN != "" {
		return o.TopicARN
	}
	return o.Email
}

// snsTopicName is a standard or FIFO topic's name
// (https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html).
var snsTopicName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$|^[A-Za-z0-9_-]{1,251}\.fifo$`)
})

var account12 = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })

// ParseOwner reads an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)
// or a bare e-mail address (user@example.com, no display name).
func ParseOwner(v string) (Owner, error) {
	if err := CheckTagValue(v); err != nil {
		return Owner{}, err
	}
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "arn:") {
		a, err := arn.Parse(v)
		switch {
		case err != nil:
			return Owner{}, errors.New("not an ARN")
		case a.Service != "sns":
			return Owner{}, fmt.Errorf("an ARN of %s, not of an SNS topic", a.Service)
		case a.Region == "" || !account12().MatchString(a.AccountID) || !snsTopicName().MatchString(a.Resource):
			return Owner{}, errors.New("not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)")
		}
		return Owner{TopicARN: v}, nil
	}
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Name != "" || addr.Address != v || !strings.Contains(v[strings.LastIndex(v, "@"):], ".") {
		return Owner{}, errors.New("neither an SNS topic ARN nor an e-mail address")
	}
	return Owner{Email: v}, nil
}

// tagLister is what reading a user's tags needs.
type tagLister interface {
	ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, opt ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
}

// Owners reads users' keyrotator:owner tags (Notify: the rotation's owner
// topic).
type Owners struct{ API tagLister }

// Owner is the user's keyrotator:owner tag: ok false when the user has
// none; an error when it cannot be read or does not parse.
func (o Owners) Owner(ctx context.Context, user string) (owner Owner, ok bool, err error) {
	p := iam.NewListUserTagsPaginator(o.API, &iam.ListUserTagsInput{UserName: aws.String(user)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return Owner{}, false, fmt.Errorf("tags of %s: %w", user, err)
		}
		for _, t := range out.Tags {
			if aws.ToString(t.Key) == TagOwner {
				owner, err := ParseOwner(aws.ToString(t.Value))
				if err != nil {
					return Owner{}, false, fmt.Errorf("%s of %s: %w", TagOwner, user, err)
				}
				return owner, true, nil
			}
		}
	}
	return Owner{}, false, nil
}
