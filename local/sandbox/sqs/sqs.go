// Package sqs is the sandbox's SQS: standard queues with their attributes
// and queue policies, and SendMessage, ReceiveMessage, DeleteMessage and
// GetQueueAttributes over AWS JSON 1.0 (X-Amz-Target AmazonSQS.*), the
// protocol aws-sdk-go-v2's SQS client speaks (it left the Query protocol in
// 2023). Messages are kept for the queue's MessageRetentionPeriod and hidden
// for its VisibilityTimeout, both on the sandbox clock. ReceiveMessage does
// not long-poll: it answers at once. Queues are made by CloudFormation
// (AWS::SQS::Queue, AWS::SQS::QueuePolicy: provision.go) or CreateQueue.
package sqs

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Defaults SQS applies.
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
const (
	DefaultRetention  = 4 * 24 * time.Hour // MessageRetentionPeriod 345600
	DefaultVisibility = 30 * time.Second   // VisibilityTimeout 30
	MaxMessageBytes   = 256 * 1024
)

// Service is the SQS service.
type Service struct {
	srv *sandbox.Server
	mu  sync.Mutex
	st  state
}

type state struct {
	Queues map[string]*Queue `json:"queues"` // by ARN
}

// Queue is a standard queue.
type Queue struct {
	Name       string            `json:"name"`
	URL        string            `json:"url"`
	ARN        string            `json:"arn"`
	Region     string            `json:"region"`
	Attributes map[string]string `json:"attributes"` // as set: MessageRetentionPeriod, Policy, SqsManagedSseEnabled…
	Created    time.Time         `json:"created"`
	Messages   []*Message        `json:"messages,omitempty"`
}

// Message is a message in a queue. Body is what the sender sent; the
// sandbox's senders (the scheduler's dead letters) carry no secret values.
type Message struct {
	ID            string             `json:"id"`
	Body          string             `json:"body"`
	Attributes    map[string]MsgAttr `json:"attributes,omitempty"`
	Sent          time.Time          `json:"sent"`
	VisibleAt     time.Time          `json:"visibleAt"`
	ReceiveCount  int                `json:"receiveCount"`
	ReceiptHandle string             `json:"receiptHandle,omitempty"` // the last receive's
}

// MsgAttr is a message attribute as the JSON protocol carries it.
type MsgAttr struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue,omitempty"`
}

// New returns an SQS without queues.
func New(srv *sandbox.Server) *Service {
	return &Service{srv: srv, st: state{Queues: map[string]*Queue{}}}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "sqs", Protocol: sandbox.JSON10, TargetPrefix: "AmazonSQS", EventSource: "sqs.amazonaws.com",
		// CloudTrail logs SendMessage, ReceiveMessage and DeleteMessage as data events only.
		DataEvents: []string{"SendMessage", "ReceiveMessage", "DeleteMessage"}}
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
	if st.Queues == nil {
		st.Queues = map[string]*Queue{}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	return nil
}

// QueueURL is the URL SQS gives a queue (the SDK sends it in the body; the
// sandbox's endpoint is the client's).
func QueueURL(region, account, name string) string {
	return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", region, account, name)
}

// CreateQueue makes a standard queue with attributes (idempotent for the
// same attributes, as SQS's CreateQueue is).
func (s *Service) CreateQueue(region, name string, attrs map[string]string) (Queue, error) {
	if name == "" || len(name) > 80 || strings.ContainsFunc(name, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != '_'
	}) {
		return Queue{}, sandbox.Errorf(400, "InvalidParameterValue", "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	if strings.HasSuffix(name, ".fifo") || attrs["FifoQueue"] == "true" {
		return Queue{}, sandbox.Errorf(400, "InvalidParameterValue", "the sandbox's SQS has standard queues only")
	}
	for k, v := range attrs {
		if err := checkAttr(k, v); err != nil {
			return Queue{}, err
		}
	}
	arn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, s.srv.Account(), name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.st.Queues[arn]; ok {
		for k, v := range attrs {
			if q.Attributes[k] != v {
				return Queue{}, sandbox.Errorf(400, "QueueAlreadyExists", "A queue already exists with the same name and a different value for attribute %s", k)
			}
		}
		return q.view(), nil
	}
	q := &Queue{Name: name, URL: QueueURL(region, s.srv.Account(), name), ARN: arn, Region: region,
		Attributes: map[string]string{}, Created: s.srv.Clock().Now()}
	for k, v := range attrs {
		q.Attributes[k] = v
	}
	s.st.Queues[arn] = q
	s.srv.MarkDirty()
	return q.view(), nil
}

func (q *Queue) view() Queue {
	cp := *q
	cp.Attributes = map[string]string{}
	for k, v := range q.Attributes {
		cp.Attributes[k] = v
	}
	cp.Messages = nil
	return cp
}

// checkAttr refuses attributes SQS would.
func checkAttr(k, v string) error {
	bad := func() error {
		return sandbox.Errorf(400, "InvalidAttributeValue", "Invalid value for the parameter %s.", k)
	}
	switch k {
	case "MessageRetentionPeriod": // 60 s to 14 days
		n, err := strconv.Atoi(v)
		if err != nil || n < 60 || n > 1209600 {
			return bad()
		}
	case "VisibilityTimeout": // 0 to 12 hours
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 43200 {
			return bad()
		}
	case "DelaySeconds", "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize", "KmsDataKeyReusePeriodSeconds":
		if _, err := strconv.Atoi(v); err != nil {
			return bad()
		}
	case "SqsManagedSseEnabled", "FifoQueue", "ContentBasedDeduplication":
		if v != "true" && v != "false" {
			return bad()
		}
	case "Policy", "RedrivePolicy", "RedriveAllowPolicy":
		if v != "" && !json.Valid([]byte(v)) {
			return bad()
		}
	case "KmsMasterKeyId":
	default:
		return sandbox.Errorf(400, "InvalidAttributeName", "Unknown Attribute %s.", k)
	}
	return nil
}

// SetPolicy stores a queue policy (AWS::SQS::QueuePolicy) on the queue at url.
func (s *Service) SetPolicy(url, policy string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.byURL(url)
	if err != nil {
		return err
	}
	q.Attributes["Policy"] = policy
	s.srv.MarkDirty()
	return nil
}

// QueuePolicy is the policy of the queue named by ARN or URL, for an IAM
// evaluator applying it as the queue's resource policy.
func (s *Service) QueuePolicy(arnOrURL string) (string, bool) {
	q, ok := s.Queue(arnOrURL)
	if !ok {
		return "", false
	}
	return q.Attributes["Policy"], true
}

// Queue finds a queue by ARN or URL.
func (s *Service) Queue(arnOrURL string) (Queue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.st.Queues[arnOrURL]; ok {
		return q.view(), true
	}
	q, err := s.byURL(arnOrURL)
	if err != nil {
		return Queue{}, false
	}
	return q.view(), true
}

// Queues lists every queue, by ARN.
func (s *Service) Queues() []Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Queue{}
	for _, q := range s.st.Queues {
		out = append(out, q.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ARN < out[j].ARN })
	return out
}

func errNoQueue() error {
	return sandbox.Errorf(400, "QueueDoesNotExist", "The specified queue does not exist.")
}

// byURL finds a queue by its URL; callers hold s.mu. The region is the
// one the URL's host names (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME),
// or the sandbox's when the host is another (a client handed the sandbox's
// endpoint).
func (s *Service) byURL(u string) (*Queue, error) {
	if u == "" {
		return nil, sandbox.Errorf(400, "MissingParameter", "The request must contain the parameter QueueUrl.")
	}
	host, path := "", u
	if _, rest, ok := strings.Cut(u, "://"); ok {
		host, path, _ = strings.Cut(rest, "/")
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) != 2 || parts[0] != s.srv.Account() {
		return nil, errNoQueue()
	}
	region := s.srv.Region()
	if r, ok := strings.CutPrefix(host, "sqs."); ok {
		if r, ok = strings.CutSuffix(r, ".amazonaws.com"); ok {
			region = r
		}
	}
	q, ok := s.st.Queues[fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, parts[0], parts[1])]
	if !ok {
		return nil, errNoQueue()
	}
	return q, nil
}

// retention is the queue's MessageRetentionPeriod.
func (q *Queue) retention() time.Duration {
	if n, err := strconv.Atoi(q.Attributes["MessageRetentionPeriod"]); err == nil {
		return time.Duration(n) * time.Second
	}
	return DefaultRetention
}

func (q *Queue) visibility() time.Duration {
	if n, err := strconv.Atoi(q.Attributes["VisibilityTimeout"]); err == nil {
		return time.Duration(n) * time.Second
	}
	return DefaultVisibility
}

// expire drops messages older than the retention period; callers hold s.mu.
func (q *Queue) expire(now time.Time) {
	keep := q.Messages[:0]
	for _, m := range q.Messages {
		if now.Sub(m.Sent) < q.retention() {
			keep = append(keep, m)
		}
	}
	q.Messages = keep
}

// counts are the visible and in-flight messages at now; callers hold s.mu.
func (q *Queue) counts(now time.Time) (visible, inFlight, delayed int) {
	q.expire(now)
	for _, m := range q.Messages {
		switch {
		case m.ReceiveCount == 0 && m.VisibleAt.After(now):
			delayed++
		case m.VisibleAt.After(now):
			inFlight++
		default:
			visible++
		}
	}
	return visible, inFlight, delayed
}

// Visible is the queue's ApproximateNumberOfMessagesVisible now (the
// CloudWatch metric of that name), by region and name.
func (s *Service) Visible(region, name string) (int, bool) {
	arn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, s.srv.Account(), name)
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.st.Queues[arn]
	if !ok {
		return 0, false
	}
	v, _, _ := q.counts(s.srv.Clock().Now())
	return v, true
}

// Messages lists the messages a queue holds now (tests read dead letters here).
func (s *Service) Messages(arnOrURL string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.st.Queues[arnOrURL]
	if !ok {
		var err error
		if q, err = s.byURL(arnOrURL); err != nil {
			return nil
		}
	}
	q.expire(s.srv.Clock().Now())
	out := []Message{}
	for _, m := range q.Messages {
		out = append(out, *m)
	}
	return out
}

func md5Hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

var _ sandbox.Snapshotter = (*Service)(nil)

// Admin implements sandbox.Administered:
//
//	GET /queues lists queues with their attributes;
//	GET /messages?queue=ARN|URL lists the messages a queue holds now.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /queues", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Queues())
	})
	m.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		msgs := s.Messages(r.URL.Query().Get("queue"))
		if msgs == nil {
			sandbox.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "no such queue"})
			return
		}
		sandbox.WriteJSON(w, http.StatusOK, msgs)
	})
	return m
}

var _ sandbox.Administered = (*Service)(nil)
