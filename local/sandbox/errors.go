package sandbox

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// Protocol is an AWS wire protocol: it decides how requests are routed and
// how results and errors are written.
type Protocol int

// The protocols the sandbox speaks.
const (
	Query    Protocol = iota // form-encoded Action=…; XML responses (IAM, STS, SNS, SES)
	JSON10                   // X-Amz-Target, application/x-amz-json-1.0 (Step Functions)
	JSON11                   // X-Amz-Target, application/x-amz-json-1.1 (Secrets Manager, CloudTrail)
	RESTJSON                 // path-routed JSON (Lambda)
)

// Error is an AWS error as a service returns it; the server writes it in the
// shape of the service's protocol.
type Error struct {
	Status  int
	Code    string
	Message string
	Sender  bool // Query protocol <Type>: Sender (client fault) or Receiver
	// Fields are the error shape's members beyond its message, written
	// into a JSON body beside it (Lambda's TooManyRequestsException has
	// Reason).
	Fields map[string]string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds a client-side (4xx) AWS error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Sender: status < 500}
}

// Common errors every service shares.
func errInternal(msg string) *Error {
	return &Error{Status: 500, Code: "InternalFailure", Message: msg}
}

// Raw is a result a service writes itself (REST protocols: status, headers, body).
type Raw struct {
	Status int
	Header http.Header
	Body   []byte
}

func writeError(w http.ResponseWriter, info ServiceInfo, requestID string, e *Error) {
	w.Header().Set("X-Amzn-Requestid", requestID)
	switch info.Protocol {
	case Query:
		typ := "Sender"
		if !e.Sender {
			typ = "Receiver"
		}
		var b strings.Builder
		b.WriteString(xml.Header)
		fmt.Fprintf(&b, `<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			info.XMLNamespace, typ, xmlEscape(e.Code), xmlEscape(e.Message), requestID)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.Status)
		_, _ = w.Write([]byte(b.String()))
	case JSON10, JSON11:
		w.Header().Set("Content-Type", info.contentType())
		w.Header().Set("X-Amzn-Errortype", e.Code)
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(e.body(map[string]string{"__type": e.Code, "message": e.Message}))
	default: // REST-JSON: the code travels in a header, the body has the message
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", e.Code)
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(e.body(map[string]string{"Type": senderWord(e), "message": e.Message}))
	}
}

// body is a JSON error body: the protocol's members and the error's Fields.
func (e *Error) body(m map[string]string) map[string]string {
	for k, v := range e.Fields {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return m
}

func senderWord(e *Error) string {
	if e.Sender {
		return "User"
	}
	return "Service"
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// authError words a SigV4 failure as AWS does for the protocol.
func authError(p Protocol, kind string, msg string) *Error {
	switch kind {
	case "invalid-token":
		if p == Query {
			return &Error{Status: 403, Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid.", Sender: true}
		}
		return &Error{Status: 403, Code: "UnrecognizedClientException", Message: "The security token included in the request is invalid.", Sender: true}
	case "mismatch":
		m := "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
		if p == Query {
			return &Error{Status: 403, Code: "SignatureDoesNotMatch", Message: m, Sender: true}
		}
		return &Error{Status: 403, Code: "InvalidSignatureException", Message: m, Sender: true}
	case "expired":
		code := "SignatureDoesNotMatch"
		if p != Query {
			code = "InvalidSignatureException"
		}
		return &Error{Status: 403, Code: code, Message: "Signature expired: " + msg, Sender: true}
	case "missing":
		return &Error{Status: 403, Code: "MissingAuthenticationToken", Message: "Request is missing Authentication Token", Sender: true}
	default:
		return &Error{Status: 400, Code: "IncompleteSignature", Message: msg, Sender: true}
	}
}
