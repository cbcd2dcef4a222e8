// Package sandbox is the core of the local AWS: one HTTP server that checks
// SigV4 like AWS, routes each request to the service its signature names,
// records every call, injects faults and keeps a clock tests can move. The
// services themselves live in packages beside this one.
package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ServiceInfo says how a service is reached and written.
type ServiceInfo struct {
	Name string // signing name in the credential scope: "iam", "secretsmanager", …
	// Namespace is the service as IAM's last-used data names it, when it
	// is not the signing name (AWS IoT's data plane signs as "iotdata";
	// its IAM namespace is "iot").
	Namespace    string
	Protocol     Protocol //
	TargetPrefix string   // JSON protocols: X-Amz-Target is "<TargetPrefix>.<Action>"
	XMLNamespace string   // Query protocol: the response namespace
	Global       bool     // IAM: events are recorded in us-east-1 whatever the scope says
	EventSource  string   // CloudTrail eventSource, e.g. "iam.amazonaws.com"
	// DataEvents are actions CloudTrail's event history never shows (SES
	// sends, Lambda Invoke, SNS Publish): LookupEvents cannot find them.
	DataEvents []string
	// ReadOnly lists the actions that change nothing, beyond the Get*,
	// List*, Describe* and Lookup* that are read-only by name.
	ReadOnly []string
}

// IAMName is the service as GetAccessKeyLastUsed reports it.
func (i ServiceInfo) IAMName() string {
	if i.Namespace != "" {
		return i.Namespace
	}
	return i.Name
}

func (i ServiceInfo) contentType() string {
	if i.Protocol == JSON10 {
		return "application/x-amz-json-1.0"
	}
	return "application/x-amz-json-1.1"
}

// IsReadOnly says whether action changes nothing.
func (i ServiceInfo) IsReadOnly(action string) bool {
	for _, p := range []string{"Get", "List", "Describe", "Lookup"} {
		if strings.HasPrefix(action, p) {
			return true
		}
	}
	for _, a := range i.ReadOnly {
		if a == action {
			return true
		}
	}
	return false
}

// IsDataEvent says whether CloudTrail's event history leaves action out.
func (i ServiceInfo) IsDataEvent(action string) bool {
	for _, a := range i.DataEvents {
		if a == action {
			return true
		}
	}
	return false
}

// Service is one AWS service of the sandbox.
type Service interface {
	Info() ServiceInfo
	// Handle runs one call. It returns the result to encode (a struct for
	// Query/JSON, *Raw for REST) or an *Error.
	Handle(ctx context.Context, c *Call) (any, error)
}

// Router is implemented by REST services, whose action is in the path.
type Router interface {
	Route(r *http.Request) (action, resource string, ok bool)
}

// Snapshotter is implemented by services whose state survives restarts (--state).
type Snapshotter interface {
	Snapshot() (json.RawMessage, error)
	Restore(json.RawMessage) error
}

// Administered is implemented by services with test endpoints, served under
// /_sandbox/<name>/.
type Administered interface {
	Admin() http.Handler
}

// ResourceNamer is a service that names the resources each call acts on,
// as the Service Authorization Reference's resource types for the action
// say (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html):
// the ARNs an IAM policy's Resource is matched against. "*" is an action
// that supports no resource-level permissions; nil is an action IAM does
// not authorize at all (sts:GetCallerIdentity).
type ResourceNamer interface {
	ResourceARNs(c *Call) []string
}

// Authorizer decides whether an authenticated call may run, as IAM does:
// nil to let it, or the service's AccessDenied error. The server asks it
// for every call with resources to authorize (ResourceNamer), from outside
// and from one service to another (Server.Internal).
type Authorizer interface {
	Authorize(ctx context.Context, c *Call, info ServiceInfo) *Error
}

// HostRouter is a service that answers requests by their Host rather than
// their signing name: Lambda's function URLs
// (<url-id>.lambda-url.<region>.on.aws), which the sandbox serves on its one
// endpoint when a client keeps the URL's host in the Host header.
type HostRouter interface {
	RoutesHost(host string) bool
}

// ErrorShaper is a service that writes some calls' errors in a shape of its
// own rather than its protocol's (a function URL answers a refused call
// 403 {"Message":"Forbidden"}): ok false leaves the protocol's shape.
type ErrorShaper interface {
	ShapeError(c *Call, e *Error) (raw *Raw, ok bool)
}

// Closer is implemented by services that own processes or goroutines.
type Closer interface {
	Close() error
}

// Principal is who signed a request.
type Principal struct {
	Account  string `json:"account"`
	ARN      string `json:"arn"`
	UserID   string `json:"userId"`   // AIDA… for users, AROA…:session for roles
	UserName string `json:"userName"` // IAM user name, or role session name
	Type     string `json:"type"`     // IAMUser | AssumedRole
}

// Credential is an access key the sandbox issued.
type Credential struct {
	AccessKeyID  string
	Secret       string
	SessionToken string // set for temporary (ASIA…) credentials
	// Expires ends temporary credentials (sandbox clock); zero: never.
	Expires   time.Time
	Active    bool
	Principal Principal
}

// Credentials resolves access keys; the IAM service implements it.
type Credentials interface {
	Credential(accessKeyID string) (Credential, bool)
	// MarkUsed records an accepted request made with the key (IAM last-used).
	MarkUsed(accessKeyID, service, region string, at time.Time)
}

// Call is one request as a service sees it.
type Call struct {
	Service     string
	Action      string
	Resource    string // REST: what the path names (a function, an execution)
	Region      string
	AccessKeyID string
	Principal   Principal
	RequestID   string
	Time        time.Time // sandbox clock
	HTTP        *http.Request
	Body        []byte
	Params      url.Values // Query protocol: the form
	// ResourceARNs are the resources IAM authorizes the call on
	// (ResourceNamer), set before the service runs it.
	ResourceARNs []string
	Fault        *Fault // a matched rule the service must act on itself (Crash)

	eventResources []EventResource
	requestParams  map[string]any
	responseElems  map[string]any
	effect         *effect // set when a Fault.After dropped the answer of an action that ran
	shaper         ErrorShaper
	byHost         bool // routed by HostRouter: the signing name must still be the service's
	rateLimited    bool // answered by a rate limit (RateLimit), before the service
}

// effect is what an action did whose answer a Fault.After replaced.
type effect struct {
	res any
	err *Error
}

// EventResource names a resource a call touched, for CloudTrail.
type EventResource struct {
	Type string `json:"ResourceType"`
	Name string `json:"ResourceName"`
}

// Touch records resources for the CloudTrail event of this call.
func (c *Call) Touch(typ, name string) {
	c.eventResources = append(c.eventResources, EventResource{Type: typ, Name: name})
}

// RequestParameters sets the CloudTrail requestParameters of this call. Pass
// only identifiers: never a secret value (I1 holds for the sandbox too).
func (c *Call) RequestParameters(p map[string]any) { c.requestParams = p }

// ResponseElements sets the CloudTrail responseElements of this call, as
// the service's CloudTrail documentation shows them: identifiers only,
// never a secret (IAM's CreateAccessKey names the key, not its secret).
func (c *Call) ResponseElements(p map[string]any) { c.responseElems = p }

// DecodeJSON reads a JSON-protocol request body into v, refusing bad JSON the way AWS does.
func (c *Call) DecodeJSON(v any) error {
	if len(c.Body) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.Body, v); err != nil {
		return Errorf(400, "SerializationException", "could not parse request body: %v", err)
	}
	return nil
}

// Event is what the server tells observers (CloudTrail) about an accepted call.
type Event struct {
	Call      *Call
	Info      ServiceInfo
	Status    int
	ErrorCode string
	Resources []EventResource
	Params    map[string]any
	// ResponseElements are what the service declared for CloudTrail (nil: null).
	ResponseElements map[string]any
	Response         any
}

// Observer is told of every accepted call once it is answered.
type Observer interface {
	Observe(e Event)
}
