package sqs

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

const queueType = "AWS::SQS::Queue"

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "CreateQueue":
		var req struct {
			QueueName  string            `json:"QueueName"`
			Attributes map[string]string `json:"Attributes"`
		}
		if err := c.DecodeJSON(&req); err != nil {
			return nil, err
		}
		q, err := s.CreateQueue(c.Region, req.QueueName, req.Attributes)
		if err != nil {
			return nil, err
		}
		c.Touch(queueType, q.ARN)
		return map[string]string{"QueueUrl": q.URL}, nil
	case "GetQueueUrl":
		var req struct {
			QueueName string `json:"QueueName"`
		}
		if err := c.DecodeJSON(&req); err != nil {
			return nil, err
		}
		q, ok := s.Queue(QueueURL(c.Region, s.srv.Account(), req.QueueName))
		if !ok {
			return nil, errNoQueue()
		}
		return map[string]string{"QueueUrl": q.URL}, nil
	case "SendMessage":
		return s.sendMessage(c)
	case "ReceiveMessage":
		return s.receiveMessage(c)
	case "DeleteMessage":
		return s.deleteMessage(c)
	case "GetQueueAttributes":
		return s.getQueueAttributes(c)
	}
	return nil, sandbox.Errorf(400, "UnsupportedOperation", "The sandbox's SQS does not answer %s.", c.Action)
}

func (s *Service) sendMessage(c *sandbox.Call) (any, error) {
	var req struct {
		QueueURL          string             `json:"QueueUrl"`
		MessageBody       string             `json:"MessageBody"`
		DelaySeconds      int                `json:"DelaySeconds"`
		MessageAttributes map[string]MsgAttr `json:"MessageAttributes"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	if req.MessageBody == "" {
		return nil, sandbox.Errorf(400, "MissingParameter", "The request must contain the parameter MessageBody.")
	}
	if len(req.MessageBody) > MaxMessageBytes {
		return nil, sandbox.Errorf(400, "InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.")
	}
	if req.DelaySeconds < 0 || req.DelaySeconds > 900 {
		return nil, sandbox.Errorf(400, "InvalidParameterValue", "Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.", req.DelaySeconds)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.byURL(req.QueueURL)
	if err != nil {
		return nil, err
	}
	c.Touch(queueType, q.ARN)
	c.RequestParameters(map[string]any{"queueUrl": q.URL})
	m := &Message{ID: sandbox.NewUUID(), Body: req.MessageBody, Attributes: req.MessageAttributes, Sent: c.Time,
		VisibleAt: c.Time.Add(time.Duration(req.DelaySeconds) * time.Second)}
	q.Messages = append(q.Messages, m)
	s.srv.MarkDirty()
	return map[string]string{"MessageId": m.ID, "MD5OfMessageBody": md5Hex(m.Body)}, nil
}

func (s *Service) receiveMessage(c *sandbox.Call) (any, error) {
	var req struct {
		QueueURL                    string   `json:"QueueUrl"`
		MaxNumberOfMessages         int      `json:"MaxNumberOfMessages"`
		VisibilityTimeout           *int     `json:"VisibilityTimeout"`
		MessageAttributeNames       []string `json:"MessageAttributeNames"`
		AttributeNames              []string `json:"AttributeNames"`
		MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	if req.MaxNumberOfMessages == 0 {
		req.MaxNumberOfMessages = 1
	}
	if req.MaxNumberOfMessages < 1 || req.MaxNumberOfMessages > 10 {
		return nil, sandbox.Errorf(400, "InvalidParameterValue", "Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", req.MaxNumberOfMessages)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.byURL(req.QueueURL)
	if err != nil {
		return nil, err
	}
	c.Touch(queueType, q.ARN)
	c.RequestParameters(map[string]any{"queueUrl": q.URL})
	vis := q.visibility()
	if req.VisibilityTimeout != nil {
		vis = time.Duration(*req.VisibilityTimeout) * time.Second
	}
	q.expire(c.Time)
	wantSys := slices.Contains(req.AttributeNames, "All") || slices.Contains(req.MessageSystemAttributeNames, "All")
	out := []map[string]any{}
	for _, m := range q.Messages {
		if len(out) == req.MaxNumberOfMessages {
			break
		}
		if m.VisibleAt.After(c.Time) {
			continue
		}
		m.ReceiveCount++
		m.VisibleAt = c.Time.Add(vis)
		m.ReceiptHandle = sandbox.NewID("", 24) + m.ID
		msg := map[string]any{"MessageId": m.ID, "ReceiptHandle": m.ReceiptHandle, "MD5OfBody": md5Hex(m.Body), "Body": m.Body}
		if wantSys {
			msg["Attributes"] = map[string]string{
				"ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount),
				"SentTimestamp":           strconv.FormatInt(m.Sent.UnixMilli(), 10),
			}
		}
		if len(req.MessageAttributeNames) > 0 && len(m.Attributes) > 0 {
			msg["MessageAttributes"] = m.Attributes
		}
		out = append(out, msg)
	}
	s.srv.MarkDirty()
	return map[string]any{"Messages": out}, nil
}

func (s *Service) deleteMessage(c *sandbox.Call) (any, error) {
	var req struct {
		QueueURL      string `json:"QueueUrl"`
		ReceiptHandle string `json:"ReceiptHandle"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.byURL(req.QueueURL)
	if err != nil {
		return nil, err
	}
	c.Touch(queueType, q.ARN)
	for i, m := range q.Messages {
		if m.ReceiptHandle != "" && m.ReceiptHandle == req.ReceiptHandle {
			q.Messages = slices.Delete(q.Messages, i, i+1)
			s.srv.MarkDirty()
			return nil, nil
		}
	}
	// A handle of a message already deleted is no error; one SQS never
	// issued is.
	return nil, sandbox.Errorf(400, "ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", req.ReceiptHandle)
}

func (s *Service) getQueueAttributes(c *sandbox.Call) (any, error) {
	var req struct {
		QueueURL       string   `json:"QueueUrl"`
		AttributeNames []string `json:"AttributeNames"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.byURL(req.QueueURL)
	if err != nil {
		return nil, err
	}
	c.Touch(queueType, q.ARN)
	visible, inFlight, delayed := q.counts(c.Time)
	all := map[string]string{
		"QueueArn": q.ARN, "ApproximateNumberOfMessages": strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inFlight), "ApproximateNumberOfMessagesDelayed": strconv.Itoa(delayed),
		"CreatedTimestamp": strconv.FormatInt(q.Created.Unix(), 10), "LastModifiedTimestamp": strconv.FormatInt(q.Created.Unix(), 10),
		"MessageRetentionPeriod": strconv.Itoa(int(q.retention() / time.Second)), "VisibilityTimeout": strconv.Itoa(int(q.visibility() / time.Second)),
		"DelaySeconds": "0", "MaximumMessageSize": strconv.Itoa(MaxMessageBytes), "ReceiveMessageWaitTimeSeconds": "0",
	}
	maps.Copy(all, q.Attributes)
	if _, ok := q.Attributes["MessageRetentionPeriod"]; ok {
		all["MessageRetentionPeriod"] = q.Attributes["MessageRetentionPeriod"]
	}
	out := map[string]string{}
	for _, n := range req.AttributeNames {
		if n == "All" {
			out = all
			break
		}
		v, ok := all[n]
		if !ok {
			return nil, sandbox.Errorf(400, "InvalidAttributeName", "Unknown Attribute %s.", n)
		}
		out[n] = v
	}
	return map[string]any{"Attributes": out}, nil
}
