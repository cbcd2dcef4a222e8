// Package secretsmanager is the sandbox's Secrets Manager: secrets, their
// versions and staging labels (AWSCURRENT, AWSPENDING, AWSPREVIOUS) with the
// ClientRequestToken idempotency AWS has. Secret values never leave it except
// in GetSecretValue answers: not in errors, logs or CloudTrail (I1).
package secretsmanager

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// The staging labels Secrets Manager itself moves.
const (
	Current  = "AWSCURRENT"
	Pending  = "AWSPENDING"
	Previous = "AWSPREVIOUS"
)

// Service is the Secrets Manager service.
type Service struct {
	srv     *sandbox.Server
	account string                    // the account whose secrets these are
	fam     *sandbox.Family[*Service] // every account's Secrets Manager on the server
	mu      sync.Mutex
	st      state
}

type state struct {
	Secrets map[string]*Secret `json:"secrets"` // by key(region, name)
}

func key(region, name string) string { return region + "|" + name }

// Secret is one secret and all its versions.
type Secret struct {
	Name        string              `json:"name"`
	Region      string              `json:"region"`
	ARN         string              `json:"arn"`
	Description string              `json:"description,omitempty"`
	KmsKeyID    string              `json:"kmsKeyId,omitempty"`
	Tags        []Tag               `json:"tags,omitempty"`
	Created     time.Time           `json:"created"`
	Changed     time.Time           `json:"changed"`
	Accessed    *time.Time          `json:"accessed,omitempty"`
	Deletion    *time.Time          `json:"deletion,omitempty"` // scheduled deletion date
	Versions    map[string]*Version `json:"versions"`
}

// Version is one value of a secret. A version without stages is deprecated.
type Version struct {
	ID       string     `json:"id"`
	String   *string    `json:"string,omitempty"`
	Binary   []byte     `json:"binary,omitempty"`
	Stages   []string   `json:"stages"`
	Created  time.Time  `json:"created"`
	Accessed *time.Time `json:"accessed,omitempty"`
}

// Tag is a secret's tag, as the JSON protocol writes it.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// New returns an empty Secrets Manager bound to srv (its clock, region and account).
func New(srv *sandbox.Server) *Service {
	s := &Service{srv: srv, account: srv.Account(), st: state{Secrets: map[string]*Secret{}}}
	s.fam = sandbox.NewFamily(s.account, s)
	return s
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{
		Name: "secretsmanager", Protocol: sandbox.JSON11, TargetPrefix: "secretsmanager",
		EventSource: "secretsmanager.amazonaws.com",
	}
}

// Snapshot implements sandbox.Snapshotter. The state file holds the values,
// as Secrets Manager's own storage does; it is written 0600.
func (s *Service) Snapshot() (json.RawMessage, error) {
	others, err := s.fam.SnapshotOthers((*Service).stateJSON)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(others) == 0 {
		return json.Marshal(s.st)
	}
	return json.Marshal(struct {
		state
		Accounts map[string]json.RawMessage `json:"accounts"`
	}{s.st, others})
}

// Restore implements sandbox.Snapshotter.
func (s *Service) Restore(raw json.RawMessage) error {
	if err := s.fam.RestoreOthers(s.srv, raw, s.member, (*Service).Restore); err != nil {
		return err
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	if st.Secrets == nil {
		st.Secrets = map[string]*Secret{}
	}
	for _, sec := range st.Secrets {
		if sec.Versions == nil {
			sec.Versions = map[string]*Version{}
		}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	return nil
}

// arnSuffix is the 6 random characters AWS appends to a secret's ARN.
func arnSuffix() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i, c := range b {
		b[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(b)
}

// find resolves a SecretId (name, full ARN or ARN without the random
// suffix), purging a secret whose recovery window has passed. Callers hold s.mu.
func (s *Service) find(region, id string) (*Secret, error) {
	var sec *Secret
	if strings.HasPrefix(id, "arn:") {
		for _, x := range s.st.Secrets {
			if x.Region == region && (x.ARN == id || x.ARN[:len(x.ARN)-7] == id) {
				sec = x
				break
			}
		}
	} else {
		sec = s.st.Secrets[key(region, id)]
	}
	if sec != nil && sec.Deletion != nil && !s.srv.Clock().Now().Before(*sec.Deletion) {
		delete(s.st.Secrets, key(sec.Region, sec.Name))
		sec = nil
	}
	if sec == nil {
		return nil, notFound()
	}
	return sec, nil
}

// live is find for operations refused on a secret scheduled for deletion.
func (s *Service) live(region, id string) (*Secret, error) {
	sec, err := s.find(region, id)
	if err != nil {
		return nil, err
	}
	if sec.Deletion != nil {
		return nil, sandbox.Errorf(400, "InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	}
	return sec, nil
}

func notFound() error {
	return sandbox.Errorf(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
}

// withStage returns the version holding stage, or nil.
func (sec *Secret) withStage(stage string) *Version {
	for _, v := range sec.Versions {
		if hasStage(v, stage) {
			return v
		}
	}
	return nil
}

func hasStage(v *Version, stage string) bool {
	for _, st := range v.Stages {
		if st == stage {
			return true
		}
	}
	return false
}

func removeStage(v *Version, stage string) {
	out := v.Stages[:0]
	for _, st := range v.Stages {
		if st != stage {
			out = append(out, st)
		}
	}
	v.Stages = out
}

// attach puts stage on v, taking it from whichever version held it. Moving
// AWSCURRENT makes the old current AWSPREVIOUS, as Secrets Manager does.
func (sec *Secret) attach(v *Version, stage string) {
	old := sec.withStage(stage)
	if old == v {
		return
	}
	if old != nil {
		removeStage(old, stage)
	}
	v.Stages = append(v.Stages, stage)
	if stage == Current && old != nil {
		if p := sec.withStage(Previous); p != nil {
			removeStage(p, Previous)
		}
		removeStage(v, Previous)
		if !hasStage(old, Previous) {
			old.Stages = append(old.Stages, Previous)
		}
	}
}

// sameValue says whether a version holds exactly this value.
func sameValue(v *Version, str *string, bin []byte) bool {
	if (v.String == nil) != (str == nil) {
		return false
	}
	if str != nil && *v.String != *str {
		return false
	}
	return bytes.Equal(v.Binary, bin)
}

// versionsToStages is DescribeSecret's map of live (staged) versions.
func (sec *Secret) versionsToStages() map[string][]string {
	m := map[string][]string{}
	for id, v := range sec.Versions {
		if len(v.Stages) > 0 {
			m[id] = append([]string{}, v.Stages...)
		}
	}
	return m
}

// sortedVersions lists a secret's versions, newest first.
func (sec *Secret) sortedVersions() []*Version {
	vs := make([]*Version, 0, len(sec.Versions))
	for _, v := range sec.Versions {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool {
		if !vs[i].Created.Equal(vs[j].Created) {
			return vs[i].Created.After(vs[j].Created)
		}
		return vs[i].ID < vs[j].ID
	})
	return vs
}

func validToken(tok string) error {
	if tok != "" && (len(tok) < 32 || len(tok) > 64) {
		return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between 32 and 64")
	}
	return nil
}

func validName(name string) error {
	if name == "" {
		return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	if len(name) > 512 || strings.ContainsFunc(name, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("/_+=.@-", r)
	}) {
		return sandbox.Errorf(400, "InvalidParameterException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	return nil
}

func value(str *string, bin []byte, required bool) error {
	switch {
	case str != nil && bin != nil:
		return sandbox.Errorf(400, "InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret.")
	case required && str == nil && bin == nil:
		return sandbox.Errorf(400, "InvalidRequestException", "You must provide either SecretString or SecretBinary.")
	}
	if len(bin) > 65536 || (str != nil && len(*str) > 65536) {
		return sandbox.Errorf(400, "InvalidParameterException", "The secret value is larger than the maximum size of 65536 bytes.")
	}
	return nil
}

func epoch(t *time.Time) *sandbox.EpochTime {
	if t == nil {
		return nil
	}
	e := sandbox.EpochTime(*t)
	return &e
}

func (s *Service) newARN(region, name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", region, s.account, name, arnSuffix())
}

// Values returns every version's value of every secret, string or binary,
// deprecated versions included: what a leak check (I1) scans every output
// for. Tests only.
func (s *Service) Values() []string {
	var out []string
	for _, m := range s.fam.Members() {
		out = append(out, m.values()...)
	}
	return out
}

func (s *Service) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sec := range s.st.Secrets {
		for _, v := range sec.Versions {
			if v.String != nil {
				out = append(out, *v.String)
			}
			if len(v.Binary) > 0 {
				out = append(out, string(v.Binary))
			}
		}
	}
	return out
}
