// Package iotdata is the sandbox's AWS IoT data plane, only as far as
// SORACOM Funnel needs it: Publish (POST /topics/{topic}), signed with the
// signing name "iotdata" like the real endpoint. Messages are not delivered
// anywhere; the last ones are kept for tests. Publish is a data event:
// CloudTrail's event history never shows it, while the key's IAM last-used
// does — which is why keyrotator trusts last-used over CloudTrail.
package iotdata

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// SigningName is what a client puts in the SigV4 credential scope; the
// sandbox finds the service by it and records it as the key's last-used service.
const SigningName = "iotdata"

// keep is how many messages are kept: enough for any test, bounded for a long demo.
const keep = 1000

// Service is the IoT data plane.
type Service struct {
	srv  *sandbox.Server
	mu   sync.Mutex
	msgs *sandbox.Ring[Message]
}

// Message is one publish the service accepted. The payload is device data,
// not a secret, so it is kept (cut to a few hundred bytes).
type Message struct {
	Topic       string    `json:"topic"`
	QoS         int       `json:"qos"`
	AccessKeyID string    `json:"accessKeyId"`
	Region      string    `json:"region"`
	Time        time.Time `json:"time"`
	Bytes       int       `json:"bytes"`
	Payload     string    `json:"payload,omitempty"`
}

// New returns the IoT data plane for srv (its clock).
func New(srv *sandbox.Server) *Service {
	return &Service{srv: srv, msgs: sandbox.NewRing[Message](keep)}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{
		Name: SigningName, Namespace: "iot", Protocol: sandbox.RESTJSON, EventSource: "iotdata.amazonaws.com",
		DataEvents: []string{"Publish"},
	}
}

// Route implements sandbox.Router: POST /topics/{topic}, the topic
// percent-encoded as one segment (it may hold slashes).
func (s *Service) Route(r *http.Request) (action, resource string, ok bool) {
	rest, found := strings.CutPrefix(r.URL.EscapedPath(), "/topics/")
	if !found || rest == "" || r.Method != http.MethodPost {
		return "", "", false
	}
	topic, err := url.PathUnescape(rest)
	if err != nil {
		return "", "", false
	}
	return "Publish", topic, true
}

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	if c.Action != "Publish" {
		return nil, sandbox.Errorf(400, "UnknownOperationException", "Unknown operation %s", c.Action)
	}
	return s.publish(c)
}

func (s *Service) publish(c *sandbox.Call) (any, error) {
	topic := c.Resource
	if strings.ContainsAny(topic, "#+") || strings.HasPrefix(topic, "$") {
		// A publish names one topic: wildcards and reserved topics are refused.
		return nil, sandbox.Errorf(400, "InvalidRequestException", "Invalid topic name: %s", topic)
	}
	qos := 0
	if q := c.HTTP.URL.Query().Get("qos"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 || n > 1 {
			return nil, sandbox.Errorf(400, "InvalidRequestException", "qos must be 0 or 1")
		}
		qos = n
	}
	// Copies, not views of the request: a kept message must not pin the
	// URL or the Authorization header its fields were cut from.
	m := Message{Topic: strings.Clone(topic), QoS: qos, AccessKeyID: strings.Clone(c.AccessKeyID), Region: strings.Clone(c.Region), Time: c.Time, Bytes: len(c.Body)}
	m.Payload = string(c.Body[:min(len(c.Body), 256)])
	c.RequestParameters(map[string]any{"topic": topic, "qos": qos})
	s.mu.Lock()
	s.msgs.Add(m)
	s.mu.Unlock()
	// The HTTPS publish endpoint answers with a small JSON acknowledgement.
	b, err := json.Marshal(map[string]string{"message": "OK", "traceId": sandbox.NewUUID()})
	if err != nil {
		return nil, err
	}
	return &sandbox.Raw{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

// Messages returns the kept messages, oldest first, and how many were
// published in all.
func (s *Service) Messages() ([]Message, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs.All(), s.msgs.Len() + int(s.msgs.Evicted())
}

// Admin implements sandbox.Administered, under /_sandbox/iotdata/:
//
//	GET /messages   {"count": N, "messages": [the last ones]}
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		msgs, n := s.Messages()
		sandbox.WriteJSON(w, http.StatusOK, map[string]any{"count": n, "messages": msgs})
	})
	return m
}
