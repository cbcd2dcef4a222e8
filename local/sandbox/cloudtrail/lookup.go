package cloudtrail

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	if c.Action == "LookupEvents" {
		return s.lookupEvents(c)
	}
	return nil, sandbox.Errorf(400, "UnknownOperationException", "Operation %s is not supported by the sandbox's CloudTrail", c.Action)
}

// MaxResults is LookupEvents' page size limit (and default).
const MaxResults = 50

type lookupAttribute struct {
	AttributeKey   string
	AttributeValue string
}

type lookupInput struct {
	LookupAttributes []lookupAttribute
	StartTime        *sandbox.EpochTime
	EndTime          *sandbox.EpochTime
	EventCategory    string
	MaxResults       *int
	NextToken        string
}

type eventJSON struct {
	EventID         string                  `json:"EventId"`
	EventName       string                  `json:"EventName"`
	ReadOnly        string                  `json:"ReadOnly"`
	AccessKeyID     string                  `json:"AccessKeyId,omitempty"`
	EventTime       sandbox.EpochTime       `json:"EventTime"`
	EventSource     string                  `json:"EventSource"`
	Username        string                  `json:"Username,omitempty"`
	Resources       []sandbox.EventResource `json:"Resources"`
	CloudTrailEvent string                  `json:"CloudTrailEvent"`
}

// cursor is what a NextToken carries: the lookup it belongs to and the last
// event returned.
type cursor struct {
	Hash string `json:"h"`
	Time int64  `json:"t"`
	Seq  int64  `json:"s"`
}

func (s *Service) lookupEvents(c *sandbox.Call) (any, error) {
	var in lookupInput
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	limit := MaxResults
	if in.MaxResults != nil {
		limit = *in.MaxResults
		if limit < 1 || limit > MaxResults {
			return nil, sandbox.Errorf(400, "InvalidMaxResultsException", "Value %d for MaxResults is not valid. MaxResults must be between 1 and %d.", limit, MaxResults)
		}
	}
	match, err := matcher(in.LookupAttributes)
	if err != nil {
		return nil, err
	}
	now := c.Time
	oldest := now.Add(-Retention)
	start, end := oldest, now
	if in.StartTime != nil {
		start = time.Time(*in.StartTime)
	}
	if in.EndTime != nil {
		end = time.Time(*in.EndTime)
	}
	if start.After(end) {
		return nil, sandbox.Errorf(400, "InvalidTimeRangeException", "Start time must be before end time.")
	}
	if start.Before(oldest) {
		start = oldest
	}
	switch in.EventCategory {
	case "", "insight":
	default:
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'eventCategory' failed to satisfy constraint: Member must satisfy enum value set: [insight]", in.EventCategory)
	}
	hash := lookupHash(in)
	var after *cursor
	if in.NextToken != "" {
		cur, ok := decodeToken(in.NextToken)
		if !ok || cur.Hash != hash {
			return nil, sandbox.Errorf(400, "InvalidNextTokenException", "Invalid NextToken")
		}
		after = &cur
	}

	account := s.key(c.Principal.Account)
	var found []Event
	if in.EventCategory == "" { // the sandbox has no Insights events
		s.mu.Lock()
		for _, e := range s.events {
			if e.Region == c.Region && e.Account == account && !e.EventTime.Before(start) && !e.EventTime.After(end) && match(e) {
				found = append(found, e)
			}
		}
		s.mu.Unlock()
	}
	// Newest first; equal times by recording order, newest first.
	slices.SortFunc(found, func(a, b Event) int {
		if c := b.EventTime.Compare(a.EventTime); c != 0 {
			return c
		}
		return int(b.Seq - a.Seq)
	})
	if after != nil {
		i, _ := slices.BinarySearchFunc(found, *after, func(e Event, cur cursor) int {
			if c := time.Unix(0, cur.Time).Compare(e.EventTime); c != 0 {
				return c
			}
			return int(cur.Seq - e.Seq)
		})
		if i < len(found) && found[i].Seq == after.Seq {
			i++
		}
		found = found[i:]
	}
	out := struct {
		Events    []eventJSON `json:"Events"`
		NextToken string      `json:"NextToken,omitempty"`
	}{Events: []eventJSON{}}
	for i, e := range found {
		if i == limit {
			last := found[i-1]
			out.NextToken = encodeToken(cursor{Hash: hash, Time: last.EventTime.UnixNano(), Seq: last.Seq})
			break
		}
		res := e.Resources
		if res == nil {
			res = []sandbox.EventResource{}
		}
		out.Events = append(out.Events, eventJSON{
			EventID: e.EventID, EventName: e.EventName, ReadOnly: strconv.FormatBool(e.ReadOnly), AccessKeyID: e.AccessKeyID,
			EventTime: sandbox.EpochTime(e.EventTime), EventSource: e.EventSource, Username: e.Username,
			Resources: res, CloudTrailEvent: e.CloudTrailEvent,
		})
	}
	return out, nil
}

// matcher turns the lookup attributes (none or exactly one) into a filter.
func matcher(attrs []lookupAttribute) (func(Event) bool, error) {
	if len(attrs) == 0 {
		return func(Event) bool { return true }, nil
	}
	if len(attrs) > 1 {
		return nil, sandbox.Errorf(400, "InvalidLookupAttributesException", "You can only specify one lookup attribute.")
	}
	v := attrs[0].AttributeValue
	if v == "" {
		return nil, sandbox.Errorf(400, "InvalidLookupAttributesException", "The value of the lookup attribute %s can't be empty.", attrs[0].AttributeKey)
	}
	resource := func(get func(sandbox.EventResource) string) func(Event) bool {
		return func(e Event) bool {
			return slices.ContainsFunc(e.Resources, func(r sandbox.EventResource) bool { return get(r) == v })
		}
	}
	switch attrs[0].AttributeKey {
	case "EventId":
		return func(e Event) bool { return e.EventID == v }, nil
	case "EventName":
		return func(e Event) bool { return e.EventName == v }, nil
	case "ReadOnly":
		return func(e Event) bool { return strconv.FormatBool(e.ReadOnly) == v }, nil
	case "Username":
		return func(e Event) bool { return e.Username == v }, nil
	case "EventSource":
		return func(e Event) bool { return e.EventSource == v }, nil
	case "AccessKeyId":
		return func(e Event) bool { return e.AccessKeyID == v }, nil
	case "ResourceType":
		return resource(func(r sandbox.EventResource) string { return r.Type }), nil
	case "ResourceName":
		return resource(func(r sandbox.EventResource) string { return r.Name }), nil
	}
	return nil, sandbox.Errorf(400, "InvalidLookupAttributesException", "%s is not a valid lookup attribute key.", attrs[0].AttributeKey)
}

// lookupHash ties a NextToken to the parameters it was issued for (all but MaxResults).
func lookupHash(in lookupInput) string {
	b, _ := json.Marshal(struct {
		A     []lookupAttribute
		S, E  *float64
		Categ string
	}{in.LookupAttributes, epochPtr(in.StartTime), epochPtr(in.EndTime), in.EventCategory})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func epochPtr(t *sandbox.EpochTime) *float64 {
	if t == nil {
		return nil
	}
	f := float64(time.Time(*t).UnixMilli())
	return &f
}

func encodeToken(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(tok string) (cursor, bool) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Hash == "" {
		return cursor{}, false
	}
	return c, true
}
