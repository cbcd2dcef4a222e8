package rotation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// RequestPurpose is the purpose of a request doc: what requestrun signs and
// Validate verifies. Every signed message names its purpose, so a MAC made
// for one (a request) is never taken for another (an approval,
// "keyrotator/approval/v1").
const RequestPurpose = "keyrotator/request/v1"

// RequestField is the key of the signed request in the execution input.
const RequestField = "request"

// Request is what requestrun signs with the stack's KMS HMAC key
// (kms:GenerateMac) and puts into the execution input as "request", and
// what Validate verifies (kms:VerifyMac) before a run that needs approval
// may go on. Its fields are in a fixed order: the message MACed is
// encoding/json of this struct (Message), the same bytes on both sides.
type Request struct {
	Purpose string `json:"purpose"` // RequestPurpose
	// Execution is the execution's name: the MAC binds the request to
	// that one run (Step Functions refuses a name reused within 90 days).
	Execution string `json:"execution"`
	// RequestedBy is who asked, as AWS authenticated them: the function
	// URL caller's userArn (requestContext.authorizer.iam), or
	// "schedule <name>" for EventBridge Scheduler's direct invoke.
	RequestedBy string `json:"requestedBy"`
	// InputSHA256 is InputDigest of the execution input.
	InputSHA256 string    `json:"inputSha256"`
	At          time.Time `json:"at"`
}

// SignedRequest is a Request with its MAC (base64, as KMS returns it): the
// input's "request" field.
type SignedRequest struct {
	Request
	MAC string `json:"mac"`
}

// Message is the bytes the MAC is over: the canonical JSON of r.
func (r Request) Message() []byte {
	b, err := json.Marshal(r)
	if err != nil { // strings and a time: never
		panic(fmt.Sprintf("rotation: marshal a request: %v", err))
	}
	return b
}

// ScheduleRequester is the requester a schedule's run is signed as.
func ScheduleRequester(schedule string) string { return "schedule " + schedule }

// InputDigest is the hex SHA-256 of the canonical JSON of an execution
// input without its "request" field: the input decoded, every integral
// number spelt as an integer (7.0 → 7), and encoded again by encoding/json
// (object keys sorted, Go's string escaping). Step Functions hands the
// input on re-encoded ($$.Execution.Input into the state's JSON), so the
// digest is over the value, not over the bytes StartExecution was given:
// the same on requestrun's side and Validate's.
func InputDigest(raw []byte) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", &InvalidInput{Reason: "the input is not a JSON object: " + PlainJSONError(err)}
	}
	delete(m, RequestField)
	stripped, err := json.Marshal(m)
	if err != nil {
		return "", &InvalidInput{Reason: PlainJSONError(err)}
	}
	canon, err := integralNumbers(stripped)
	if err != nil {
		return "", &InvalidInput{Reason: PlainJSONError(err)}
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// WithRequest is the input raw with its "request" field set to req (any
// request it had replaced), every other member as it was.
func WithRequest(raw []byte, req SignedRequest) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &InvalidInput{Reason: "the input is not a JSON object: " + PlainJSONError(err)}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the request: %w", err)
	}
	m[RequestField] = b
	return json.Marshal(m)
}

// WithoutRequest is raw without its "request" field.
func WithoutRequest(raw []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &InvalidInput{Reason: "the input is not a JSON object: " + PlainJSONError(err)}
	}
	delete(m, RequestField)
	return json.Marshal(m)
}

// ParseSignedRequest decodes the input's "request" field strictly: every
// field of a SignedRequest and nothing else. ok is false when the input has
// none.
func ParseSignedRequest(raw []byte) (req SignedRequest, ok bool, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return req, false, &InvalidInput{Reason: "the input is not a JSON object: " + PlainJSONError(err)}
	}
	r, ok := m[RequestField]
	if !ok || bytes.Equal(bytes.TrimSpace(r), []byte("null")) {
		return req, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, true, &RequestForged{Reason: "the request is not a request document: " + PlainJSONError(err)}
	}
	return req, true, nil
}

// executionName is what Step Functions takes as an execution's name: 1 to
// 80 characters, none of whitespace, brackets, wildcards or
// " # % \ ^ | ~ ` $ & , ; : / or control characters; keyrotator takes the
// ones its own names use (the CLI's <user>-<time>-<hex>).
// https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html#StepFunctions-StartExecution-request-name
var executionName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`) })

// CheckExecutionName says whether name may name a keyrotator execution.
func CheckExecutionName(name string) error {
	if !executionName().MatchString(name) {
		return &InvalidInput{Field: "name", Reason: "an execution name is 1 to 80 of A-Za-z0-9 - _"}
	}
	return nil
}

// ExecutionNameOf is an execution ARN's name: its last part
// (arn:aws:states:<region>:<account>:execution:<machine>:<name>; a name has
// no colon).
func ExecutionNameOf(arn string) string { return arn[strings.LastIndex(arn, ":")+1:] }

// NewExecutionName is a fresh execution name for user of the stack's own
// account at a time: NewAccountExecutionName with no account.
func NewExecutionName(user string, at time.Time, rnd io.Reader) string {
	return NewAccountExecutionName("", user, at, rnd)
}

// NewAccountExecutionName is a fresh execution name for user of account
// ("" for the stack's own) at a time: <user>-<yyyymmddThhmmssZ>-<8 hex>,
// and <account>-<user>-… for a member account's user (issue 15: user names
// are unique only within an account), within Step Functions' rules (at
// most 80 of A-Za-z0-9-_): other characters of an IAM user name (+=,.@)
// become "-", a long user part is cut to fit (the account never is: 13 of
// the 80). The random suffix keeps two requests in one second apart.
func NewAccountExecutionName(account, user string, at time.Time, rnd io.Reader) string {
	var b [4]byte
	_, _ = io.ReadFull(rnd, b[:]) // crypto/rand never fails
	stamp := "-" + at.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	lead := ""
	if IsAccountID(account) {
		lead = account + "-"
	}
	u := strings.Trim(notNameChar().ReplaceAllString(user, "-"), "-")
	if u == "" {
		u = "user"
	}
	if max := 80 - len(lead) - len(stamp); len(u) > max {
		u = strings.TrimRight(u[:max], "-")
	}
	return lead + u + stamp
}

var notNameChar = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^A-Za-z0-9_-]+`) })
