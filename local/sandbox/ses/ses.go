// Package ses is the sandbox's SES (v1): SendEmail and SendRawEmail. Mail is
// not delivered, and SES keeps no sent mail for its caller; the sandbox
// keeps the newest Keep messages (who sent it, with which access key, to
// whom, its subject) for tests to read through the admin API, and counts
// every one it accepted, so a tenant mailing for hours stays the same size
// and a reader can tell when older mail was evicted. Sends are
// data events: CloudTrail's event history never shows them, while the key's
// IAM last-used does.
package ses

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// MaxRecipients is SES's limit on recipients of one message.
const MaxRecipients = 50

// Keep is how many messages the sandbox keeps for tests: a fault-matrix
// case's tenant sends about a thousand in its 20 s (one each 25 ms), the
// soak's three tenants 120 a second; about 3 MiB when full.
const Keep = 10_000

// Service is the SES service.
type Service struct {
	srv  *sandbox.Server
	mu   sync.Mutex
	mail *sandbox.Ring[Mail]
}

// Mail is one message SES accepted.
type Mail struct {
	ID          string    `json:"id"`
	Action      string    `json:"action"` // SendEmail | SendRawEmail
	From        string    `json:"from"`
	To          []string  `json:"to"` // every recipient: To, Cc and Bcc
	Subject     string    `json:"subject"`
	AccessKeyID string    `json:"accessKeyId"`
	Region      string    `json:"region"`
	Time        time.Time `json:"time"`
}

// New returns SES bound to srv (its clock).
func New(srv *sandbox.Server) *Service { return &Service{srv: srv, mail: sandbox.NewRing[Mail](Keep)} }

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{
		Name: "ses", Protocol: sandbox.Query, XMLNamespace: "http://ses.amazonaws.com/doc/2010-12-01/",
		EventSource: "ses.amazonaws.com", DataEvents: []string{"SendEmail", "SendRawEmail"},
	}
}

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "SendEmail":
		return s.sendEmail(c)
	case "SendRawEmail":
		return s.sendRawEmail(c)
	}
	return nil, sandbox.Errorf(400, "InvalidAction", "Could not find operation %s for version 2010-12-01", c.Action)
}

func rejected(format string, args ...any) error {
	return sandbox.Errorf(400, "MessageRejected", format, args...)
}

// checkAddresses refuses a send without sender or recipients, or with an address SES cannot parse.
func checkAddresses(from string, to []string) error {
	if from == "" {
		return rejected("Missing required header 'From'.")
	}
	if len(to) == 0 {
		return rejected("Missing required header 'To'.")
	}
	if len(to) > MaxRecipients {
		return sandbox.Errorf(400, "InvalidParameterValue", "Recipient count exceeds %d.", MaxRecipients)
	}
	for _, a := range append([]string{from}, to...) {
		addr, err := mail.ParseAddress(a)
		if err != nil || !strings.Contains(addr.Address, "@") {
			return sandbox.Errorf(400, "InvalidParameterValue", "Missing final '@domain'")
		}
	}
	return nil
}

func (s *Service) keep(c *sandbox.Call, m Mail) any {
	m.ID = fmt.Sprintf("%016x-%s-000000", c.Time.UnixNano()/1000, sandbox.NewUUID())
	m.Action, m.AccessKeyID, m.Region, m.Time = c.Action, c.AccessKeyID, c.Region, c.Time
	// Copies, not views of the request: a kept message must not pin the
	// form body or the Authorization header its fields were cut from.
	m.Action, m.From, m.Subject = strings.Clone(m.Action), strings.Clone(m.From), strings.Clone(m.Subject)
	m.AccessKeyID, m.Region = strings.Clone(m.AccessKeyID), strings.Clone(m.Region)
	for i, a := range m.To {
		m.To[i] = strings.Clone(a)
	}
	m.To = slices.Clip(m.To)
	s.mu.Lock()
	s.mail.Add(m)
	s.mu.Unlock()
	return struct {
		MessageID string `xml:"MessageId"`
	}{m.ID}
}

func (s *Service) sendEmail(c *sandbox.Call) (any, error) {
	p := c.Params
	var to []string
	for _, kind := range []string{"ToAddresses", "CcAddresses", "BccAddresses"} {
		to = append(to, sandbox.MemberValues(p, "Destination."+kind+".member")...)
	}
	if err := checkAddresses(p.Get("Source"), to); err != nil {
		return nil, err
	}
	subject, err := sandbox.Required(p, "Message.Subject.Data")
	if err != nil {
		return nil, err
	}
	if p.Get("Message.Body.Text.Data") == "" && p.Get("Message.Body.Html.Data") == "" {
		return nil, sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value null at 'message.body' failed to satisfy constraint: Member must not be null")
	}
	return s.keep(c, Mail{From: p.Get("Source"), To: to, Subject: subject}), nil
}

func (s *Service) sendRawEmail(c *sandbox.Call) (any, error) {
	data, err := sandbox.Required(c.Params, "RawMessage.Data")
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, sandbox.Errorf(400, "InvalidParameterValue", "RawMessage.Data is not valid base64.")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, rejected("Could not parse message: %v", err)
	}
	from := c.Params.Get("Source")
	if from == "" {
		from = msg.Header.Get("From")
	}
	to := sandbox.MemberValues(c.Params, "Destinations.member")
	if len(to) == 0 {
		for _, h := range []string{"To", "Cc", "Bcc"} {
			list, _ := msg.Header.AddressList(h)
			for _, a := range list {
				to = append(to, a.Address)
			}
		}
	}
	if err := checkAddresses(from, to); err != nil {
		return nil, err
	}
	subject := msg.Header.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = dec
	}
	return s.keep(c, Mail{From: from, To: to, Subject: subject}), nil
}

// Messages returns the messages kept (the newest Keep), oldest first, and
// how many SES accepted in all: more than it returns if it evicted some.
func (s *Service) Messages() ([]Mail, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mail.All(), s.mail.Len() + int(s.mail.Evicted())
}

type snapshot struct {
	Mail    []Mail `json:"mail"`
	Evicted int64  `json:"evicted,omitempty"`
}

// Snapshot implements sandbox.Snapshotter.
func (s *Service) Snapshot() (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(snapshot{Mail: s.mail.All(), Evicted: s.mail.Evicted()})
}

// Restore implements sandbox.Snapshotter; it also reads the list of mail
// that state files kept before SES kept only the newest.
func (s *Service) Restore(raw json.RawMessage) error {
	var st snapshot
	if err := json.Unmarshal(raw, &st); err != nil {
		if err := json.Unmarshal(raw, &st.Mail); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.mail.Restore(st.Mail, st.Evicted)
	s.mu.Unlock()
	return nil
}

// Admin implements sandbox.Administered:
//
//	GET /messages[?accessKeyId=ID] the kept mail, oldest first:
//	    {"sent": N, "evicted": M, "messages": [...]}; evicted > 0 says older
//	    mail is no longer there.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("accessKeyId")
		out := []Mail{}
		kept, sent := s.Messages()
		for _, x := range kept {
			if key == "" || x.AccessKeyID == key {
				out = append(out, x)
			}
		}
		sandbox.WriteJSON(w, http.StatusOK, map[string]any{"sent": sent, "evicted": sent - len(kept), "messages": out})
	})
	return m
}
