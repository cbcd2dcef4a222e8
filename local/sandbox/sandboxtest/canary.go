package sandboxtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/keyrotator/keyrotator/local/leak"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudtrail"
	"github.com/keyrotator/keyrotator/local/sandbox/kms"
	"github.com/keyrotator/keyrotator/local/sandbox/secretsmanager"
	"github.com/keyrotator/keyrotator/local/sandbox/ses"
	"github.com/keyrotator/keyrotator/local/sandbox/sns"
	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
)

// The kinds of secret the sandbox holds, as the leak canary names them.
const (
	KindIAM            = "an IAM secret access key"
	KindSecretsManager = "a Secrets Manager value"
	KindAuth0          = "an Auth0 client secret"
	KindSoracom        = "a SORACOM AuthKey secret"
	KindKMS            = "a KMS HMAC key's material"
)

// Secrets is every secret the world holds: the secret of every access key
// IAM issued, every version of every Secrets Manager value (each string in
// a JSON value on its own too), every Auth0 client secret and every SORACOM
// AuthKey secret, and every KMS HMAC key's material.
func (s *Sandbox) Secrets() []leak.Secret {
	var out []leak.Secret
	add := func(kind string, vs []string) {
		for _, v := range vs {
			out = append(out, leak.Secret{Kind: kind, Value: v})
		}
	}
	add(KindIAM, s.IAM.Secrets())
	if sm, ok := service[*secretsmanager.Service](s, "secretsmanager"); ok {
		for _, v := range sm.Values() {
			leaves, structured := jsonLeaves(v)
			out = append(out, leak.Secret{Kind: KindSecretsManager, Value: v, Whole: structured})
			add(KindSecretsManager, leaves)
		}
	}
	if s.Auth0 != nil {
		add(KindAuth0, s.Auth0.Secrets())
	}
	if s.Soracom != nil {
		add(KindSoracom, s.Soracom.Secrets())
	}
	if k, ok := service[*kms.Service](s, "kms"); ok {
		add(KindKMS, k.Secrets())
	}
	return out
}

// secretField is a JSON field name that holds a secret ("secretAccessKey",
// "password", "authKey", "client_secret", "token"), not an id or a name.
var secretField = regexp.MustCompile(`(?i)(secret|passw|token|authkey|api_?key|private)`)

// jsonLeaves is, if v is a JSON object, each string in it under a field
// whose name says it is secret, and true. The other strings (an access key
// id, an execution ARN in a rotation record) are what outputs may name.
func jsonLeaves(v string) ([]string, bool) {
	var out []string
	var m map[string]any
	if json.Unmarshal([]byte(v), &m) != nil {
		return nil, false
	}
	var walk func(x any, secret bool)
	walk = func(x any, secret bool) {
		switch x := x.(type) {
		case map[string]any:
			for k, y := range x {
				walk(y, secret || (secretField.MatchString(k) && !strings.HasSuffix(strings.ToLower(k), "id")))
			}
		case []any:
			for _, y := range x {
				walk(y, secret)
			}
		case string:
			if secret {
				out = append(out, x)
			}
		}
	}
	walk(m, false)
	return out, true
}

// Emitted is every byte the sandbox let out: every execution's description
// (input, output, error, cause) and every event of its history, every
// Lambda's log lines, every SNS message, every SES mail, every CloudTrail
// event and the call log — by where it was found. The call log, SES and
// Lambda's logs keep only their newest records, CloudTrail 90 days of them:
// if any let one go, the error says which, since what is left is no longer
// every byte.
func (s *Sandbox) Emitted() (map[string][]byte, error) {
	out := map[string][]byte{}
	var evicted []error
	put := func(name string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte(err.Error())
		}
		out[name] = b
	}
	calls, err := s.Server.Calls().Since(0)
	if err != nil {
		evicted = append(evicted, err)
	}
	put("the call log", calls)
	if sf, ok := service[*stepfunctions.Service](s, "states"); ok {
		for _, e := range sf.Executions() {
			put("execution "+e.Name, e)
			if h, ok := sf.History(e.ARN); ok {
				put("history of "+e.Name, h)
			}
		}
	}
	for _, f := range s.Lambda.Functions() {
		if ls, ok := s.Lambda.Logs(f.Name); ok {
			put("logs of "+f.Name, ls)
		}
		if n := s.Lambda.LogsEvicted(f.Name); n > 0 {
			evicted = append(evicted, fmt.Errorf("the logs of %s evicted %d lines", f.Name, n))
		}
	}
	if n, ok := service[*sns.Service](s, "sns"); ok {
		put("SNS messages", n.Messages(""))
	}
	if m, ok := service[*ses.Service](s, "ses"); ok {
		mail, sent := m.Messages()
		put("SES mail", mail)
		if sent > len(mail) {
			evicted = append(evicted, fmt.Errorf("SES keeps the newest %d mails and has evicted %d", len(mail), sent-len(mail)))
		}
	}
	if c, ok := service[*cloudtrail.Service](s, "cloudtrail"); ok {
		put("CloudTrail events", c.Events())
		if n := c.Expired(); n > 0 {
			evicted = append(evicted, &CloudTrailExpiredError{Dropped: n})
		}
	}
	return out, errors.Join(evicted...)
}

// CloudTrailExpiredError is Emitted's error when CloudTrail has dropped
// events for being older than its 90 days (the sandbox clock moved past
// them): a test that checked them before they went can tell it apart
// (pipelinetest.Checkpoint).
type CloudTrailExpiredError struct{ Dropped int64 }

func (e *CloudTrailExpiredError) Error() string {
	return fmt.Sprintf("CloudTrail dropped %d events older than 90 days", e.Dropped)
}

// service is the sandbox's service name as its Go type.
func service[T any](s *Sandbox, name string) (T, bool) {
	var zero T
	svc, ok := s.Server.Service(name)
	if !ok {
		return zero, false
	}
	t, ok := svc.(T)
	return t, ok
}
