// Package cloudtrail is the sandbox's CloudTrail event history: it observes
// every authenticated call and keeps a management event for each one whose
// service does not count it as a data event, in the call's region, and
// answers LookupEvents as CloudTrail does (one lookup attribute, newest
// first, 90 days; the server holds it to 2 requests a second per account and region). Like CloudTrail's event
// history it keeps 90 days: an event older than that by the sandbox clock is
// dropped, and counted (Expired).
//
// LookupEvents calls are not themselves recorded (CloudTrail records them):
// a lookup then never changes what the next page of the same lookup holds,
// and the throttle tests see only their own calls.
package cloudtrail

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Retention is how far back the event history reaches; older events are dropped.
const Retention = 90 * 24 * time.Hour

// Rate is how many LookupEvents calls a second CloudTrail answers per
// account and region: the server enforces it (sandbox.CloudTrailLookupEvents,
// one of sandbox.DefaultRateLimits), before the call reaches this service.
const Rate = 2

// Service is the CloudTrail service.
type Service struct {
	srv *sandbox.Server

	mu      sync.Mutex
	seq     int64
	events  []Event
	expired int64 // events dropped for being older than Retention
	// keepAll keeps every event whatever its age (KeepAll): a benchmark's
	// world whose clock runs years ahead in minutes.
	keepAll bool
}

// Event is one management event as the sandbox keeps it.
type Event struct {
	Seq    int64  `json:"seq"`
	Region string `json:"region"`
	// Account is the account whose event history holds the event: ""
	// for the server's own, the member account's id for the others.
	Account         string                  `json:"account,omitempty"`
	EventID         string                  `json:"eventId"`
	EventName       string                  `json:"eventName"`
	EventSource     string                  `json:"eventSource"`
	EventTime       time.Time               `json:"eventTime"`
	AccessKeyID     string                  `json:"accessKeyId,omitempty"`
	Username        string                  `json:"username,omitempty"`
	ReadOnly        bool                    `json:"readOnly"`
	ErrorCode       string                  `json:"errorCode,omitempty"`
	Resources       []sandbox.EventResource `json:"resources,omitempty"`
	CloudTrailEvent string                  `json:"cloudTrailEvent"`
}

// New returns an empty event history bound to srv (its clock and account).
func New(srv *sandbox.Server) *Service {
	return &Service{srv: srv}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{
		Name: "cloudtrail", Protocol: sandbox.JSON11, TargetPrefix: "CloudTrail_20131101",
		EventSource: "cloudtrail.amazonaws.com",
	}
}

type userIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	UserName    string `json:"userName,omitempty"`
}

type record struct {
	EventVersion       string         `json:"eventVersion"`
	UserIdentity       userIdentity   `json:"userIdentity"`
	EventTime          string         `json:"eventTime"`
	EventSource        string         `json:"eventSource"`
	EventName          string         `json:"eventName"`
	AWSRegion          string         `json:"awsRegion"`
	SourceIPAddress    string         `json:"sourceIPAddress"`
	UserAgent          string         `json:"userAgent"`
	ErrorCode          string         `json:"errorCode,omitempty"`
	RequestParameters  map[string]any `json:"requestParameters"`
	ResponseElements   any            `json:"responseElements"`
	RequestID          string         `json:"requestID"`
	EventID            string         `json:"eventID"`
	ReadOnly           bool           `json:"readOnly"`
	Resources          []resourceJSON `json:"resources,omitempty"`
	EventType          string         `json:"eventType"`
	ManagementEvent    bool           `json:"managementEvent"`
	RecipientAccountID string         `json:"recipientAccountId"`
	EventCategory      string         `json:"eventCategory"`
}

type resourceJSON struct {
	Type string `json:"type"`
	ARN  string `json:"ARN"`
}

// Observe implements sandbox.Observer: it records a management event for
// the call. Only identifiers reach the event: requestParameters are what the
// service chose to declare, never the request body or the response.
func (s *Service) Observe(e sandbox.Event) {
	c := e.Call
	if e.Info.IsDataEvent(c.Action) || (e.Info.Name == "cloudtrail" && c.Action == "LookupEvents") {
		return
	}
	p := c.Principal
	username := p.UserName
	id := userIdentity{Type: p.Type, PrincipalID: p.UserID, ARN: p.ARN, AccountID: p.Account, AccessKeyID: c.AccessKeyID}
	if p.Type == "IAMUser" {
		id.UserName = p.UserName
	}
	source := e.Info.EventSource
	if source == "" {
		source = e.Info.Name + ".amazonaws.com"
	}
	ua := ""
	if c.HTTP != nil {
		ua = c.HTTP.UserAgent()
	}
	eventID := sandbox.NewUUID()
	readOnly := e.Info.IsReadOnly(c.Action)
	rec := record{
		EventVersion: "1.09", UserIdentity: id, EventTime: c.Time.UTC().Format("2006-01-02T15:04:05Z"),
		EventSource: source, EventName: c.Action, AWSRegion: c.Region, SourceIPAddress: "127.0.0.1", UserAgent: ua,
		ErrorCode: e.ErrorCode, RequestParameters: e.Params, RequestID: c.RequestID, EventID: eventID, ReadOnly: readOnly,
		EventType: "AwsApiCall", ManagementEvent: true, EventCategory: "Management",
	}
	if e.ResponseElements != nil && e.ErrorCode == "" {
		rec.ResponseElements = e.ResponseElements
	}
	for _, r := range e.Resources {
		rec.Resources = append(rec.Resources, resourceJSON{Type: r.Type, ARN: r.Name})
	}
	// The event is the caller's account's; an AssumeRole of another
	// account's role is that account's event too, as CloudTrail records
	// it in both
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/cloudtrail-integration.html#cloudtrail-integration_examples-sts-api).
	accounts := []string{p.Account}
	if e.Info.Name == "sts" && c.Action == "AssumeRole" && e.ErrorCode == "" {
		if parts := strings.SplitN(c.Params.Get("RoleArn"), ":", 6); len(parts) == 6 && parts[4] != p.Account {
			accounts = append(accounts, parts[4])
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	for i, account := range accounts {
		if account == "" {
			account = s.srv.Account()
		}
		rec.RecipientAccountID = account
		if i > 0 {
			eventID = sandbox.NewUUID()
			rec.EventID = eventID
		}
		b, err := json.Marshal(rec)
		if err != nil {
			s.srv.Logger().Error("cloudtrail: encode event", "event", c.Action, "err", err)
			return
		}
		s.seq++
		s.events = append(s.events, Event{
			Seq: s.seq, Region: c.Region, Account: s.key(account), EventID: eventID, EventName: c.Action, EventSource: source, EventTime: c.Time.UTC(),
			AccessKeyID: c.AccessKeyID, Username: username, ReadOnly: readOnly, ErrorCode: e.ErrorCode,
			Resources: slices.Clone(e.Resources), CloudTrailEvent: string(b),
		})
	}
	s.srv.MarkDirty()
}

// key is how Event.Account names account: "" for the server's own.
func (s *Service) key(account string) string {
	if account == s.srv.Account() {
		return ""
	}
	return account
}

// EventsIn returns account's events of the last 90 days, oldest first.
func (s *Service) EventsIn(account string) []Event {
	k := s.key(account)
	var out []Event
	for _, e := range s.Events() {
		if e.Account == k {
			out = append(out, e)
		}
	}
	return out
}

// expire drops the events older than Retention by the sandbox clock: the
// oldest first, as recorded, so one recorded out of time order leaves when
// it reaches the front. Callers hold s.mu.
func (s *Service) expire() {
	if s.keepAll {
		return
	}
	oldest := s.srv.Clock().Now().Add(-Retention)
	i := 0
	for i < len(s.events) && s.events[i].EventTime.Before(oldest) {
		i++
	}
	if i > 0 {
		clear(s.events[:i]) // let their strings go before append reallocates
		s.events = s.events[i:]
		s.expired += int64(i)
	}
}

// Events returns the events of the last 90 days, oldest first (tests, the demo report).
func (s *Service) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	return slices.Clone(s.events)
}

// KeepAll makes the event history keep every event, however old, unlike
// CloudTrail's 90 days: for a world whose sandbox clock its rotations'
// shortened Waits move years ahead in minutes (test/e2e BenchmarkFleet),
// where the leak canary (which searches every event) would otherwise find
// events gone. LookupEvents still answers the last 90 days only.
func (s *Service) KeepAll() {
	s.mu.Lock()
	s.keepAll = true
	s.mu.Unlock()
}

// Expired is how many events were dropped for being older than Retention.
func (s *Service) Expired() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	return s.expired
}

type snapshot struct {
	Seq     int64   `json:"seq"`
	Events  []Event `json:"events"`
	Expired int64   `json:"expired,omitempty"`
}

// Snapshot implements sandbox.Snapshotter.
func (s *Service) Snapshot() (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(snapshot{Seq: s.seq, Events: s.events, Expired: s.expired})
}

// Restore implements sandbox.Snapshotter.
func (s *Service) Restore(raw json.RawMessage) error {
	var st snapshot
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	s.mu.Lock()
	s.seq, s.events, s.expired = st.Seq, st.Events, st.Expired
	s.mu.Unlock()
	return nil
}

// Admin implements sandbox.Administered:
//
//	GET /events[?region=R][&account=A] lists the events of the last 90 days, oldest first
//	(every account's unless account is given).
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		region := r.URL.Query().Get("region")
		account, byAccount := r.URL.Query().Get("account"), r.URL.Query().Has("account")
		out := []Event{}
		for _, e := range s.Events() {
			if (region == "" || e.Region == region) && (!byAccount || e.Account == s.key(account)) {
				out = append(out, e)
			}
		}
		sandbox.WriteJSON(w, http.StatusOK, out)
	})
	return m
}

var (
	_ sandbox.Observer     = (*Service)(nil)
	_ sandbox.Snapshotter  = (*Service)(nil)
	_ sandbox.Administered = (*Service)(nil)
)
