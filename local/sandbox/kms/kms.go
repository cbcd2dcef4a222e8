// Package kms is the sandbox's KMS (JSON 1.1, TrentService): customer
// managed keys with their key policies. Symmetric encryption keys encrypt
// nothing: the sandbox keeps their policies so that an IAM evaluator can
// apply KMS's key-policy rules to a call that uses the key (publishing to
// an encrypted topic). HMAC keys (KeySpec HMAC_224…HMAC_512, KeyUsage
// GENERATE_VERIFY_MAC) are real: random key material per key, kept with
// the state, and GenerateMac and VerifyMac compute RFC 2104 HMACs with it
// (mac.go). It answers CreateKey, DescribeKey, GetKeyPolicy,
// GetKeyRotationStatus, GenerateMac and VerifyMac; CloudFormation makes keys
// too (AWS::KMS::Key, provision.go).
package kms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Service is the KMS service.
type Service struct {
	srv *sandbox.Server
	mu  sync.Mutex
	st  state
}

type state struct {
	Keys map[string]*Key `json:"keys"` // by key id
}

// Key is a customer managed key.
type Key struct {
	ID              string    `json:"id"`
	ARN             string    `json:"arn"`
	Region          string    `json:"region"`
	Description     string    `json:"description,omitempty"`
	Policy          string    `json:"policy"`
	Enabled         bool      `json:"enabled"`
	RotationEnabled bool      `json:"rotationEnabled"`
	KeyUsage        string    `json:"keyUsage"`
	KeySpec         string    `json:"keySpec"`
	Created         time.Time `json:"created"`
	// Material is an HMAC key's secret key material (nil for the
	// symmetric keys, which encrypt nothing here). It never leaves the
	// sandbox but in the state file.
	Material Material `json:"material,omitempty"`
}

// Material is secret key material: it prints and logs as "[redacted]";
// only encoding/json (the state file) sees its bytes.
type Material []byte

// String implements fmt.Stringer.
func (Material) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer.
func (Material) GoString() string { return "[redacted]" }

// LogValue implements slog.LogValuer.
func (Material) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// New returns a KMS without keys.
func New(srv *sandbox.Server) *Service {
	return &Service{srv: srv, st: state{Keys: map[string]*Key{}}}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "kms", Protocol: sandbox.JSON11, TargetPrefix: "TrentService", EventSource: "kms.amazonaws.com",
		ReadOnly: []string{"GenerateMac", "VerifyMac"}}
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
	if st.Keys == nil {
		st.Keys = map[string]*Key{}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	return nil
}

// DefaultPolicy is the key policy KMS gives a key created without one: the
// account (its root) may do everything, so IAM policies decide.
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
func DefaultPolicy(partition, account string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:%s:iam::%s:root"},"Action":"kms:*","Resource":"*"}]}`, partition, account)
}

// CreateKey makes a symmetric encryption key in region; policy "" is the
// default policy.
func (s *Service) CreateKey(region, description, policy string, rotation bool) (Key, error) {
	return s.NewKey(region, KeyOptions{Description: description, Policy: policy, Rotation: rotation})
}

// KeyOptions describe a key to make: KeySpec "" is SYMMETRIC_DEFAULT,
// KeyUsage "" its default (ENCRYPT_DECRYPT; an HMAC key must say
// GENERATE_VERIFY_MAC), Policy "" the default policy.
type KeyOptions struct {
	Description string
	Policy      string
	KeySpec     string
	KeyUsage    string
	Rotation    bool
}

// NewKey makes a key: a symmetric encryption key or an HMAC key, with the
// combinations of KeySpec and KeyUsage AWS accepts
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html).
func (s *Service) NewKey(region string, o KeyOptions) (Key, error) {
	policy := o.Policy
	if policy == "" {
		policy = DefaultPolicy("aws", s.srv.Account())
	}
	if !json.Valid([]byte(policy)) {
		return Key{}, sandbox.Errorf(400, "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future.")
	}
	spec, usage := o.KeySpec, o.KeyUsage
	if spec == "" {
		spec = "SYMMETRIC_DEFAULT"
	}
	if usage == "" {
		usage = "ENCRYPT_DECRYPT"
	}
	var material Material
	switch n, hmacSpec := macKeyBytes[spec]; {
	case hmacSpec:
		if usage != UsageMAC {
			return Key{}, sandbox.Errorf(400, "ValidationException", "KeyUsage %s is not compatible with KeySpec %s: an HMAC key's KeyUsage is GENERATE_VERIFY_MAC", usage, spec)
		}
		if o.Rotation {
			return Key{}, sandbox.Errorf(400, "UnsupportedOperationException", "%s key rotation is not supported for HMAC keys", spec)
		}
		material = make([]byte, n)
		if _, err := rand.Read(material); err != nil {
			return Key{}, fmt.Errorf("kms: key material: %w", err)
		}
	case spec == "SYMMETRIC_DEFAULT":
		if usage != "ENCRYPT_DECRYPT" {
			return Key{}, sandbox.Errorf(400, "ValidationException", "KeyUsage %s is not compatible with KeySpec SYMMETRIC_DEFAULT", usage)
		}
	default:
		return Key{}, sandbox.Errorf(400, "ValidationException", "the sandbox makes SYMMETRIC_DEFAULT and HMAC_224/256/384/512 keys only, not %s", spec)
	}
	id := sandbox.NewUUID()
	k := &Key{ID: id, ARN: fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", region, s.srv.Account(), id), Region: region,
		Description: o.Description, Policy: policy, Enabled: true, RotationEnabled: o.Rotation,
		KeyUsage: usage, KeySpec: spec, Created: s.srv.Clock().Now(), Material: material}
	s.mu.Lock()
	s.st.Keys[id] = k
	s.mu.Unlock()
	s.srv.MarkDirty()
	return *k, nil
}

// Key finds a key by id or ARN.
func (s *Service) Key(idOrARN string) (Key, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.lookup(idOrARN)
	if !ok {
		return Key{}, false
	}
	return *k, true
}

// KeyPolicy is the policy document of the key named by id or ARN, for an
// IAM evaluator applying KMS's key-policy semantics (a key policy must allow
// the account before IAM policies count).
func (s *Service) KeyPolicy(idOrARN string) (string, bool) {
	k, ok := s.Key(idOrARN)
	return k.Policy, ok
}

// lookup finds a key by id or ARN; callers hold s.mu.
func (s *Service) lookup(idOrARN string) (*Key, bool) {
	if strings.HasPrefix(idOrARN, "arn:") {
		i := strings.LastIndex(idOrARN, "key/")
		if i < 0 {
			return nil, false
		}
		k, ok := s.st.Keys[idOrARN[i+len("key/"):]]
		return k, ok && k.ARN == idOrARN
	}
	k, ok := s.st.Keys[idOrARN]
	return k, ok
}

// Secrets are the HMAC keys' material, base64 as a client would write it,
// for the leak check: none may appear in anything the sandbox emits.
func (s *Service) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range s.st.Keys {
		if k.Material != nil {
			out = append(out, base64.StdEncoding.EncodeToString(k.Material), hex.EncodeToString(k.Material))
		}
	}
	return out
}

// Keys lists every key, by id.
func (s *Service) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Key{}
	for _, k := range s.st.Keys {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "CreateKey":
		return s.createKeyAPI(c)
	case "DescribeKey", "GetKeyPolicy", "GetKeyRotationStatus", "GenerateMac", "VerifyMac":
	default:
		return nil, sandbox.Errorf(400, "UnknownOperationException", "")
	}
	var req struct {
		KeyID      string `json:"KeyId"`
		PolicyName string `json:"PolicyName"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	if req.KeyID == "" {
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	s.mu.Lock()
	k, ok := s.lookup(req.KeyID)
	var key Key
	if ok {
		key = *k
	}
	s.mu.Unlock()
	if !ok || (strings.HasPrefix(req.KeyID, "arn:") && key.Region != c.Region) {
		// KMS names the key as an ARN in its own region.
		name := req.KeyID
		if !strings.HasPrefix(name, "arn:") {
			name = fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", c.Region, s.srv.Account(), req.KeyID)
		}
		return nil, sandbox.Errorf(400, "NotFoundException", "Key '%s' does not exist", name)
	}
	c.Touch("AWS::KMS::Key", key.ARN)
	c.RequestParameters(map[string]any{"keyId": req.KeyID})
	switch c.Action {
	case "GetKeyPolicy":
		// PolicyName may be left out; "default" is the only one there is.
		// https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
		if req.PolicyName != "" && req.PolicyName != "default" {
			return nil, sandbox.Errorf(400, "NotFoundException", "No such policy exists")
		}
		return map[string]string{"Policy": key.Policy, "PolicyName": "default"}, nil
	case "GetKeyRotationStatus":
		return map[string]any{"KeyRotationEnabled": key.RotationEnabled, "KeyId": key.ID}, nil
	case "GenerateMac":
		return s.generateMac(c, key)
	case "VerifyMac":
		return s.verifyMac(c, key)
	}
	return map[string]any{"KeyMetadata": s.metadata(key)}, nil
}

// metadata is a key's KeyMetadata
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html):
// EncryptionAlgorithms for an encryption key, MacAlgorithms for an HMAC key.
func (s *Service) metadata(key Key) map[string]any {
	state := "Enabled"
	if !key.Enabled {
		state = "Disabled"
	}
	m := map[string]any{
		"AWSAccountId": s.srv.Account(), "KeyId": key.ID, "Arn": key.ARN, "CreationDate": sandbox.EpochTime(key.Created),
		"Enabled": key.Enabled, "Description": key.Description, "KeyUsage": key.KeyUsage, "KeyState": state,
		"Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "CustomerMasterKeySpec": key.KeySpec, "KeySpec": key.KeySpec,
		"MultiRegion": false,
	}
	if alg, ok := macAlgorithm[key.KeySpec]; ok {
		m["MacAlgorithms"] = []string{alg}
	} else {
		m["EncryptionAlgorithms"] = []string{"SYMMETRIC_DEFAULT"}
	}
	return m
}

// createKeyAPI is CreateKey: Description, KeySpec (or the older
// CustomerMasterKeySpec), KeyUsage and Policy.
func (s *Service) createKeyAPI(c *sandbox.Call) (any, error) {
	var in struct {
		Description           string `json:"Description"`
		KeySpec               string `json:"KeySpec"`
		CustomerMasterKeySpec string `json:"CustomerMasterKeySpec"`
		KeyUsage              string `json:"KeyUsage"`
		Policy                string `json:"Policy"`
		Origin                string `json:"Origin"`
		MultiRegion           bool   `json:"MultiRegion"`
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if in.KeySpec == "" {
		in.KeySpec = in.CustomerMasterKeySpec
	}
	if (in.Origin != "" && in.Origin != "AWS_KMS") || in.MultiRegion {
		return nil, sandbox.Errorf(400, "UnsupportedOperationException", "the sandbox makes single-Region keys of origin AWS_KMS only")
	}
	k, err := s.NewKey(c.Region, KeyOptions{Description: in.Description, Policy: in.Policy, KeySpec: in.KeySpec, KeyUsage: in.KeyUsage})
	if err != nil {
		return nil, err
	}
	c.Touch("AWS::KMS::Key", k.ARN)
	c.RequestParameters(map[string]any{"keySpec": k.KeySpec, "keyUsage": k.KeyUsage, "description": k.Description})
	c.ResponseElements(map[string]any{"keyMetadata": map[string]any{"keyId": k.ID, "arn": k.ARN, "keySpec": k.KeySpec, "keyUsage": k.KeyUsage}})
	return map[string]any{"KeyMetadata": s.metadata(k)}, nil
}

var _ sandbox.Snapshotter = (*Service)(nil)

// Admin implements sandbox.Administered: GET /keys lists keys with their policies.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		keys := s.Keys()
		for i := range keys {
			keys[i].Material = nil // an HMAC key's secret stays inside
		}
		sandbox.WriteJSON(w, http.StatusOK, keys)
	})
	return m
}

var _ sandbox.Administered = (*Service)(nil)
