// Package sns is the sandbox's SNS: topics, subscriptions (kept, not
// delivered) and Publish, whose messages are kept for tests to read through
// the admin API. Publish works from its form alone, so Step Functions can
// call it in-process with Server.Internal.
package sns

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// MaxMessageBytes is SNS's limit on a message with its attributes: 256 KiB.
const MaxMessageBytes = 256 * 1024

// Service is the SNS service.
type Service struct {
	srv *sandbox.Server
	mu  sync.Mutex
	st  state
}

type state struct {
	Topics   map[string]*Topic `json:"topics"` // by ARN
	Messages []Message         `json:"messages"`
}

// Topic is an SNS topic and its subscriptions.
type Topic struct {
	ARN           string            `json:"arn"`
	Name          string            `json:"name"`
	Region        string            `json:"region"`
	Attributes    map[string]string `json:"attributes,omitempty"` // as set by the caller
	Tags          map[string]string `json:"tags,omitempty"`
	Subscriptions []*Subscription   `json:"subscriptions,omitempty"`
	Created       time.Time         `json:"created"`
	Sequence      int64             `json:"sequence,omitempty"` // FIFO sequence numbers so far
}

// Subscription is a topic's subscriber. Email and HTTP(S) subscriptions stay
// pending confirmation until confirmed (ConfirmSubscription, the admin API).
type Subscription struct {
	ARN      string `json:"arn"`
	Protocol string `json:"protocol"`
	Endpoint string `json:"endpoint"`
	Pending  bool   `json:"pending"`
	Owner    string `json:"owner"`
}

// Message is a published message as tests read it.
type Message struct {
	ID             string               `json:"id"`
	Topic          string               `json:"topic"`
	Subject        string               `json:"subject,omitempty"`
	Message        string               `json:"message"`
	Attributes     map[string]Attribute `json:"attributes,omitempty"`
	MessageGroupID string               `json:"messageGroupId,omitempty"`
	Time           time.Time            `json:"time"`
}

// Attribute is a message attribute.
type Attribute struct {
	DataType    string `json:"dataType"`
	StringValue string `json:"stringValue,omitempty"`
	BinaryValue string `json:"binaryValue,omitempty"` // base64, as it travels
}

// New returns an empty SNS bound to srv (its clock and account).
func New(srv *sandbox.Server) *Service {
	return &Service{srv: srv, st: state{Topics: map[string]*Topic{}}}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{
		Name: "sns", Protocol: sandbox.Query, XMLNamespace: "http://sns.amazonaws.com/doc/2010-03-31/",
		EventSource: "sns.amazonaws.com", DataEvents: []string{"Publish"},
	}
}

// Messages returns the messages published to topic ("" for all), oldest first.
func (s *Service) Messages(topic string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Message{}
	for _, m := range s.st.Messages {
		if topic == "" || m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// Snapshot implements sandbox.Snapshotter.
func (s *Service) Snapshot() (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.st)
}

// Restore implements sandbox.Snapshotter.
func (s *Service) Restore(raw json.RawMessage) error {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	if st.Topics == nil {
		st.Topics = map[string]*Topic{}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	return nil
}

// Admin implements sandbox.Administered:
//
//	GET /messages[?topic=ARN] lists published messages, oldest first;
//	GET /topics lists topics with their subscriptions;
//	POST /subscriptions/confirm?arn=… confirms a pending subscription, as its
//	recipient following SNS's confirmation link would.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /subscriptions/confirm", func(w http.ResponseWriter, r *http.Request) {
		if !s.ConfirmSubscription(r.URL.Query().Get("arn")) {
			sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such subscription"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Messages(r.URL.Query().Get("topic")))
	})
	m.HandleFunc("GET /topics", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		out := []Topic{}
		for _, t := range s.sortedTopics("") {
			cp := *t
			cp.Subscriptions = slices.Clone(t.Subscriptions)
			out = append(out, cp)
		}
		s.mu.Unlock()
		sandbox.WriteJSON(w, http.StatusOK, out)
	})
	return m
}

// sortedTopics lists a region's topics ("" for all) by ARN. Callers hold s.mu.
func (s *Service) sortedTopics(region string) []*Topic {
	var ts []*Topic
	for _, t := range s.st.Topics {
		if region == "" || t.Region == region {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].ARN < ts[j].ARN })
	return ts
}

func invalid(what string) error {
	return sandbox.Errorf(400, "InvalidParameter", "Invalid parameter: %s", what)
}

func topicNotFound() error {
	return sandbox.Errorf(404, "NotFound", "Topic does not exist")
}

// topic finds a topic by ARN. Callers hold s.mu.
func (s *Service) topic(arn string) (*Topic, error) {
	if arn == "" {
		return nil, invalid("TopicArn")
	}
	t, ok := s.st.Topics[arn]
	if !ok {
		return nil, topicNotFound()
	}
	return t, nil
}

// settable are the topic attributes a caller may set.
var settable = []string{
	"DisplayName", "Policy", "DeliveryPolicy", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication",
	"SignatureVersion", "TracingConfig", "ArchivePolicy", "FifoThroughputScope", "DataProtectionPolicy",
}

func validName(name string, fifo bool) error {
	base := strings.TrimSuffix(name, ".fifo")
	if base == "" || len(name) > 256 || strings.ContainsFunc(base, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != '_'
	}) {
		return invalid("Topic Name")
	}
	if fifo != strings.HasSuffix(name, ".fifo") {
		return invalid("Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.")
	}
	return nil
}

func (s *Service) topicARN(region, name string) string {
	return fmt.Sprintf("arn:aws:sns:%s:%s:%s", region, s.srv.Account(), name)
}
