// Package kms is the sandbox's KMS (JSON 1.1, TrentService): customer
// managed keys with their key policies. It encrypts nothing; it keeps each
// key's policy so that an IAM evaluator can apply KMS's key-policy rules to
// a call that uses the key (publishing to an encrypted topic), and answers
// DescribeKey and GetKeyPolicy. Keys are made by CloudFormation
// (AWS::KMS::Key, provision.go).
package kms

import (
	"context"
	"encoding/json"
	"fmt"
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
}

// New returns a KMS without keys.
func New(srv *sandbox.Server) *Service {
	return &Service{srv: srv, st: state{Keys: map[string]*Key{}}}
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "kms", Protocol: sandbox.JSON11, TargetPrefix: "TrentService", EventSource: "kms.amazonaws.com"}
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
	if policy == "" {
		policy = DefaultPolicy("aws", s.srv.Account())
	}
	if !json.Valid([]byte(policy)) {
		return Key{}, sandbox.Errorf(400, "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future.")
	}
	id := sandbox.NewUUID()
	k := &Key{ID: id, ARN: fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", region, s.srv.Account(), id), Region: region,
		Description: description, Policy: policy, Enabled: true, RotationEnabled: rotation,
		KeyUsage: "ENCRYPT_DECRYPT", KeySpec: "SYMMETRIC_DEFAULT", Created: s.srv.Clock().Now()}
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
	var req struct {
		KeyID      string `json:"KeyId"`
		PolicyName string `json:"PolicyName"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	switch c.Action {
	case "DescribeKey", "GetKeyPolicy", "GetKeyRotationStatus":
	default:
		return nil, sandbox.Errorf(400, "UnknownOperationException", "")
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
	}
	state := "Enabled"
	if !key.Enabled {
		state = "Disabled"
	}
	return map[string]any{"KeyMetadata": map[string]any{
		"AWSAccountId": s.srv.Account(), "KeyId": key.ID, "Arn": key.ARN, "CreationDate": sandbox.EpochTime(key.Created),
		"Enabled": key.Enabled, "Description": key.Description, "KeyUsage": key.KeyUsage, "KeyState": state,
		"Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "CustomerMasterKeySpec": key.KeySpec, "KeySpec": key.KeySpec,
		"EncryptionAlgorithms": []string{"SYMMETRIC_DEFAULT"}, "MultiRegion": false,
	}}, nil
}

var _ sandbox.Snapshotter = (*Service)(nil)

// Admin implements sandbox.Administered: GET /keys lists keys with their policies.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Keys())
	})
	return m
}

var _ sandbox.Administered = (*Service)(nil)
