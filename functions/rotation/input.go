package rotation

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// schemaJSON is a string, not a []byte: read-only data, not a variable in
// every Lambda's data segment.
//
//go:embed input.schema.json
var schemaJSON string

// InputSchemaJSON is input.schema.json, the input's JSON Schema (package
// inputschema compiles it).
func InputSchemaJSON() []byte { return []byte(schemaJSON) }

// Target kinds: their names (a target's type). What each means is its
// registration, in kinds.go.
const (
	TargetAuth0   = "auth0"
	TargetSoracom = "soracom"
	TargetSecret  = "secret"
)

// Input is one rotation's input, manual or scheduled (ARCHITECTURE §3).
type Input struct {
	User string `json:"user"`
	// Account is the AWS account the user is in (issue 15): "" or the
	// stack's own is the stack's own; another is a member account, whose
	// IAM, CloudTrail and application secrets the tasks reach through its
	// member role. MemberAccount says which it is.
	Account                string   `json:"account,omitempty"`
	UserPath               string   `json:"userPath,omitempty"` // IAM calls take the name; the grants take the path
	Targets                []Target `json:"targets"`
	WaitDays               int      `json:"waitDays"`
	GraceDays              int      `json:"graceDays"`
	MinKeyAgeDays          int      `json:"minKeyAgeDays"`
	MaxKeyAgeDays          int      `json:"maxKeyAgeDays"` // the IAM.3 deadline: created + this (deadline.go)
	VerifyAttempts         int      `json:"verifyAttempts"`
	AllowRemoveInactiveKey bool     `json:"allowRemoveInactiveKey"`
	RequireApproval        bool     `json:"requireApproval"`
	ApprovalTimeoutHours   int      `json:"approvalTimeoutHours"`
	// Approvers and MinApprovals: who may approve (IAM ARNs or patterns,
	// approvers.go) and how many distinct ones must (issue 14).
	Approvers    []string `json:"approvers,omitempty"`
	MinApprovals int      `json:"minApprovals"`
	Reason       string   `json:"reason,omitempty"`
	RequestedBy  string   `json:"requestedBy,omitempty"`
	DryRun       bool     `json:"dryRun"`
	Trigger      string   `json:"trigger"`
	// Issue asks for a first key (docs/design.md, Issuance): the user must
	// have room for one and no active key. A flag, never decided from the
	// key count: a user that lost its key is refused, not silently given one.
	Issue bool `json:"issue"`
	// Request is the signed request requestrun put in (Validate verifies
	// it: RequestUnsigned, RequestForged); nil when the run was started
	// another way.
	Request *SignedRequest `json:"request,omitempty"`
}

// Target is one place the key lives. Which fields apply depends on Type.
type Target struct {
	Type             string   `json:"type"`
	Name             string   `json:"name"`
	Connection       string   `json:"connection,omitempty"`       // auth0, soracom
	SESRegion        string   `json:"sesRegion,omitempty"`        // auth0
	Strategy         string   `json:"strategy,omitempty"`         // soracom
	CredentialPrefix string   `json:"credentialPrefix,omitempty"` // soracom
	CredentialIDs    []string `json:"credentialIds,omitempty"`    // soracom
	SecretID         string   `json:"secretId,omitempty"`         // secret
	KeyIDField       string   `json:"keyIdField,omitempty"`       // secret
	SecretField      string   `json:"secretField,omitempty"`      // secret
	KMSKeyID         string   `json:"kmsKeyId,omitempty"`         // secret: its customer managed key, for the grants
}

// Path is the IAM user's path: userPath, or "/" when the input names none.
func (in Input) Path() string {
	if in.UserPath == "" {
		return "/"
	}
	return in.UserPath
}

// MemberAccount is the member account the input names, given the stack's
// own account: "" when it names none or the stack's own (the one form of
// "own" every name is built from, so one user never has two records).
func (in Input) MemberAccount(own string) string {
	if in.Account == own {
		return ""
	}
	return in.Account
}

// CredentialBase is what a soracom target's new credential id starts with:
// its prefix, or keyrotator-<name> when it names credential ids only.
func (t Target) CredentialBase() string {
	if t.CredentialPrefix != "" {
		return t.CredentialPrefix
	}
	return "keyrotator-" + t.Name
}

// CredentialsDescription names a soracom target's credentials for a person.
func (t Target) CredentialsDescription() string {
	var parts []string
	if t.CredentialPrefix != "" {
		parts = append(parts, fmt.Sprintf("prefix %q", t.CredentialPrefix))
	}
	if len(t.CredentialIDs) > 0 {
		parts = append(parts, "ids "+strings.Join(t.CredentialIDs, ", "))
	}
	return strings.Join(parts, " or ")
}

// Defaults as the schema documents them.
const (
	DefaultWaitDays       = 7
	DefaultGraceDays      = 1
	DefaultMinKeyAgeDays  = 80
	DefaultMaxKeyAgeDays  = 90 // Security Hub IAM.3's maxAccessKeyAge default
	DefaultVerifyAttempts = 3
	DefaultApprovalHours  = 72
	DefaultMinApprovals   = 1
)

// SchemaCheck holds raw, a JSON document, to input.schema.json: nil if it
// conforms, an *InvalidInput naming the field if not (and when raw is not
// JSON). Two implementations, held to each other by a differential test
// and a fuzz target: inputschema.Check (the JSON Schema library; the CLI
// and infra) and subset.Check (in inputschema/subset, no library; the
// Validate Lambda). Both live apart because the library, and the
// meta-schemas it compiles at init, would otherwise be linked into, and
// initialised at the cold start of, every Lambda that imports rotation.
type SchemaCheck func(raw []byte) error

// ParseInput validates raw against the schema (check) and decodes it with
// defaults applied. Every refusal is an *InvalidInput naming the field.
// inputschema.Parse is ParseInput with the schema's check.
func ParseInput(raw []byte, check SchemaCheck) (Input, error) {
	in, err := parseInput(raw, check)
	if ii, ok := errors.AsType[*InvalidInput](err); ok {
		// A refusal names a field and says why; it never echoes a long
		// piece of the input (a 5,000-byte user name, an unknown key) back.
		ii.Field, ii.Reason = brief(ii.Field), brief(ii.Reason)
	}
	return in, err
}

// brief cuts s to at most maxQuoted bytes, on a rune boundary, marking the cut.
func brief(s string) string {
	const maxQuoted = 160
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (cut)"
}

func parseInput(raw []byte, check SchemaCheck) (Input, error) {
	if len(raw) > MaxInputBytes {
		return Input{}, &InvalidInput{Reason: fmt.Sprintf("is %s bytes: Step Functions takes at most %s (256 KiB) as an execution's input", thousands(len(raw)), thousands(MaxInputBytes))}
	}
	if err := scanStructure(raw); err != nil {
		return Input{}, err
	}
	if err := check(raw); err != nil {
		return Input{}, err
	}
	norm, err := integralNumbers(raw)
	if err != nil {
		return Input{}, &InvalidInput{Reason: PlainJSONError(err)}
	}
	var in Input
	dec := json.NewDecoder(bytes.NewReader(norm))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Input{}, &InvalidInput{Reason: PlainJSONError(err)}
	}
	in.applyDefaults(raw)
	if ii := in.checkApprovers(); ii != nil {
		return Input{}, ii
	}
	if in.Issue && in.Trigger == "schedule" {
		// Issuance: a schedule rotates; an issue is a person's one-off request.
		return Input{}, &InvalidInput{Field: "issue", Reason: "is a person's one-off request (keyrotator start --issue), never a schedule's: a scheduled run rotates the key a user has"}
	}
	seen := map[string]int{}
	for i, t := range in.Targets {
		if j, dup := seen[t.Name]; dup {
			return Input{}, &InvalidInput{Field: fmt.Sprintf("targets[%d].name", i), Reason: fmt.Sprintf("%q is already the name of targets[%d]: names must be unique", t.Name, j)}
		}
		seen[t.Name] = i
		if k, _ := KindOf(t.Type); k.Check != nil {
			if ii := k.Check(t); ii != nil {
				ii.Field = JoinField(fmt.Sprintf("targets[%d]", i), ii.Field)
				return Input{}, ii
			}
		}
	}
	return in, nil
}

// applyDefaults fills what the input left out; raw tells absent from zero.
func (in *Input) applyDefaults(raw []byte) {
	var present map[string]json.RawMessage
	_ = json.Unmarshal(raw, &present)
	setDefault := func(key string, v *int, def int) {
		if _, ok := present[key]; !ok {
			*v = def
		}
	}
	setDefault("waitDays", &in.WaitDays, DefaultWaitDays)
	setDefault("graceDays", &in.GraceDays, DefaultGraceDays)
	setDefault("minKeyAgeDays", &in.MinKeyAgeDays, DefaultMinKeyAgeDays)
	setDefault("maxKeyAgeDays", &in.MaxKeyAgeDays, DefaultMaxKeyAgeDays)
	setDefault("verifyAttempts", &in.VerifyAttempts, DefaultVerifyAttempts)
	setDefault("approvalTimeoutHours", &in.ApprovalTimeoutHours, DefaultApprovalHours)
	setDefault("minApprovals", &in.MinApprovals, DefaultMinApprovals)
	if in.Trigger == "" {
		in.Trigger = "manual"
	}
	for i := range in.Targets {
		if k, _ := KindOf(in.Targets[i].Type); k.Defaults != nil {
			k.Defaults(&in.Targets[i])
		}
	}
}

// JoinField is child's path under parent ("targets[0]", "name" →
// "targets[0].name"), as an *InvalidInput's Field names it.
func JoinField(parent, child string) string {
	if child == "" { // the key "" (a fuzzed {"":true}): still named
		child = `""`
	}
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// PlainJSONError keeps a decoder's complaint but never echoes the input
// itself (it may hold anything, and error messages end up in alerts).
func PlainJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s: expected %s, got %s", te.Field, te.Type, te.Value)
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

// integralNumbers re-encodes raw with every integral number spelt as an
// integer (7.0, 7e0 → 7): JSON Schema counts 7.0 as an integer, so the
// schema has passed it, and the state machine's JSON between the CLI and
// Validate may re-encode it as 7 — both must read it as 7. Nesting is
// bounded by scanStructure before this recursion runs.
func integralNumbers(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var fix func(any) any
	fix = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = fix(e)
			}
		case []any:
			for i, e := range x {
				x[i] = fix(e)
			}
		case json.Number:
			if _, err := x.Int64(); err == nil {
				return x
			}
			if f, err := x.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
				return json.Number(strconv.FormatInt(int64(f), 10))
			}
		}
		return v
	}
	return json.Marshal(fix(v))
}

// MaxInputBytes is the longest input, in bytes of UTF-8: what Step Functions
// takes as an execution's input (StartExecution refuses more with
// InvalidExecutionInput; the quotas' 256 KiB for a task, state or execution
// input). The CLI checks a file before it calls AWS.
const MaxInputBytes = 256 * 1024

// MaxDepth bounds how deeply the input may nest objects and arrays; the
// schema's deepest value (a target's field) is at depth 3.
const MaxDepth = 32

// scanStructure walks raw token by token, without recursion, and refuses a
// key given twice in one object (encoding/json would keep the last one
// silently), naming the key's path, and nesting deeper than MaxDepth.
// Malformed JSON is left to the parse after it, which says where.
func scanStructure(raw []byte) error {
	type frame struct {
		path      string
		array     bool
		index     int
		keys      map[string]bool
		expectKey bool
		pending   string // an object's: the path of the value after the key just read
	}
	var stack []*frame
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.array {
			f.index++
		} else {
			f.expectKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or malformed JSON: the full parse reports it
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && !top.array && top.expectKey {
			k, ok := tok.(string)
			if !ok { // '}'
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			p := JoinField(top.path, k)
			if top.keys[k] {
				return &InvalidInput{Field: p, Reason: "is given twice: a key may appear only once in an object"}
			}
			top.keys[k], top.pending, top.expectKey = true, p, false
			continue
		}
		d, isDelim := tok.(json.Delim)
		switch {
		case isDelim && (d == '{' || d == '['):
			path := ""
			if top != nil && top.array {
				path = fmt.Sprintf("%s[%d]", top.path, top.index)
			} else if top != nil {
				path = top.pending
			}
			if len(stack) >= MaxDepth {
				return &InvalidInput{Field: path, Reason: fmt.Sprintf("nests objects and arrays deeper than %d levels", MaxDepth)}
			}
			stack = append(stack, &frame{path: path, array: d == '[', keys: map[string]bool{}, expectKey: d == '{'})
		case isDelim: // ']' ('}' is read as an object's key position)
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// thousands writes n with commas: 262,144.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
