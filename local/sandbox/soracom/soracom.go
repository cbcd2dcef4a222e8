// Package soracom is the sandbox's SORACOM: operators, each on its own
// loopback port (an API endpoint, base path /v1), with SAM users' AuthKeys,
// /auth and its API key and token, the credentials store (/credentials)
// and SIM groups (/groups) in the shapes of SORACOM's OpenAPI spec, SAM
// permissions, SORACOM's error body and per-API rate limit, and injected
// failures. It serves the `soracom` target of the rotation.
//
// Each group whose SoracomFunnel or SoracomFunk configuration is enabled
// pushes data with the AWS credential it points at, through the sandbox's
// AWS and signed with that credential's key, so the key SORACOM holds is
// *used*: a group that missed a rotation shows up as use of the old key,
// and a key removed too early makes its pushes fail visibly.
package soracom

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// DefaultRatePerMinute is each operator's limit per API and per minute:
// generous, so that only a test that sets a lower one ever meets it.
const DefaultRatePerMinute = 600

// Service holds the operators.
type Service struct {
	srv      *sandbox.Server
	log      *slog.Logger
	pushEach time.Duration
	hc       *http.Client // the push loops' client for the sandbox's AWS

	mu        sync.Mutex
	rate      int
	operators map[string]*Operator
	closed    bool
}

// New returns SORACOM for srv; enabled groups push data every pushEach
// (≤ 0: 25 ms).
func New(srv *sandbox.Server, pushEach time.Duration) *Service {
	if pushEach <= 0 {
		pushEach = 25 * time.Millisecond
	}
	return &Service{srv: srv, log: srv.Logger(), pushEach: pushEach, rate: DefaultRatePerMinute,
		hc: &http.Client{Timeout: 5 * time.Second}, operators: map[string]*Operator{}}
}

// SetRatePerMinute sets the limit per operator, per API and per minute of
// real time for operators that do not set their own (≤ 0: the default).
// It applies to calls from now on.
func (s *Service) SetRatePerMinute(n int) {
	if n <= 0 {
		n = DefaultRatePerMinute
	}
	s.mu.Lock()
	s.rate = n
	s.mu.Unlock()
}

func (s *Service) ratePerMinute() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rate
}

// OperatorConfig makes an operator.
type OperatorConfig struct {
	ID       string    `json:"id"`       // "OP0012345678"; generated if empty
	Coverage string    `json:"coverage"` // "jp" or "g"; default "jp"
	SAMUsers []SAMUser `json:"samUsers"`
	// RatePerMinute overrides the service's limit per API and minute (0: the service's).
	RatePerMinute int `json:"ratePerMinute,omitempty"`
	// Credentials and Groups seed the operator at creation, as PutCredential
	// and AddGroup would.
	Credentials map[string]CredentialInput `json:"credentials,omitempty"`
	Groups      []GroupConfig              `json:"groups,omitempty"`
}

// SAMUser is a SORACOM Access Management user with one AuthKey.
type SAMUser struct {
	Name      string `json:"name"`
	AuthKeyID string `json:"authKeyId"` // "keyId-…"
	AuthKey   string `json:"authKey"`   // "secret-…"  (a secret: never in a view, log or error)
	// Permissions: operation names as SORACOM SAM writes them ("Credential:createCredential",
	// "Group:listGroups", …); nil = all operations allowed. "*" and "Credential:*" match
	// every operation, or every one of a service, as SAM's wildcards do.
	Permissions []string `json:"permissions,omitempty"`
}

// String hides the AuthKey, so a careless %v cannot print it.
func (u SAMUser) String() string {
	return fmt.Sprintf("{Name:%s AuthKeyID:%s AuthKey:[redacted] Permissions:%v}", u.Name, u.AuthKeyID, u.Permissions)
}

// LogValue hides the AuthKey from slog.
func (u SAMUser) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", u.Name), slog.String("authKeyId", u.AuthKeyID))
}

// CredentialInput is a credential set as it is created or updated
// (CreateAndUpdateCredentialsModel).
type CredentialInput struct {
	Type        string         `json:"type"`
	Description string         `json:"description,omitempty"`
	Credentials map[string]any `json:"credentials"`
}

// String shows only what identifies the credential, never its secret.
func (c CredentialInput) String() string {
	return fmt.Sprintf("{Type:%s Description:%s Credentials:%v}", c.Type, c.Description, publicCredentials(c.Type, c.Credentials))
}

// LogValue hides the secret from slog.
func (c CredentialInput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", c.Type), slog.Any("credentials", publicCredentials(c.Type, c.Credentials)))
}

// GroupConfig makes a group.
type GroupConfig struct {
	ID            string                    `json:"id,omitempty"` // generated (a UUID) if empty
	Name          string                    `json:"name"`         // the "name" tag
	Tags          map[string]string         `json:"tags,omitempty"`
	Configuration map[string]map[string]any `json:"configuration,omitempty"`
}

// Failure makes the operator's API answer Status, with SORACOM's error body,
// before any side effect.
type Failure struct {
	Operation string `json:"operation"` // operationId, e.g. "putConfigurationParameters"; "" = any
	Status    int    `json:"status"`    // 500, 429, 403…
	After     int    `json:"after"`     // let this many matching calls succeed first
	Times     int    `json:"times"`     // then fail this many (≤ 0: once)
}

// AddOperator starts an operator on its own loopback port, with its push loop.
func (s *Service) AddOperator(cfg OperatorConfig) (*Operator, error) {
	if cfg.ID == "" {
		cfg.ID = newOperatorID()
	}
	switch cfg.Coverage {
	case "":
		cfg.Coverage = "jp"
	case "jp", "g":
	default:
		return nil, fmt.Errorf("soracom operator %s: coverage %q is not jp or g", cfg.ID, cfg.Coverage)
	}
	if cfg.RatePerMinute < 0 {
		return nil, fmt.Errorf("soracom operator %s: ratePerMinute %d is negative", cfg.ID, cfg.RatePerMinute)
	}
	seen := map[string]bool{}
	for i, u := range cfg.SAMUsers {
		if u.Name == "" || u.AuthKeyID == "" || u.AuthKey == "" {
			return nil, fmt.Errorf("soracom operator %s: samUsers[%d]: name, authKeyId and authKey are required", cfg.ID, i)
		}
		if seen[u.AuthKeyID] {
			return nil, fmt.Errorf("soracom operator %s: AuthKey id %s is given twice", cfg.ID, u.AuthKeyID)
		}
		seen[u.AuthKeyID] = true
	}
	s.mu.Lock()
	_, exists := s.operators[cfg.ID]
	s.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("soracom operator %s exists", cfg.ID)
	}

	o := newOperator(s, cfg)
	ids := make([]string, 0, len(cfg.Credentials))
	for id := range cfg.Credentials {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := o.PutCredential(id, cfg.Credentials[id]); err != nil {
			return nil, err
		}
	}
	for _, g := range cfg.Groups {
		if _, err := o.AddGroup(g); err != nil {
			return nil, err
		}
	}

	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("soracom operator %s: listen: %w", cfg.ID, err)
	}
	if err := s.serve(o, l); err != nil {
		return nil, err
	}
	s.srv.MarkDirty()
	return o, nil
}

// serve adds o to the operators and serves its API on l, with its push
// loop (a new operator, or one --state restored).
func (s *Service) serve(o *Operator, l net.Listener) error {
	o.endpoint = "http://" + l.Addr().String() + "/v1"
	ctx, stop := context.WithCancel(context.Background())
	o.stop = stop
	api := o.routes()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r)
		if r.Method != http.MethodGet {
			s.srv.MarkDirty() // a credential, a group or a session changed: --state keeps it
		}
	})
	o.hs = &http.Server{Handler: s.srv.External("soracom", o.id, h), ReadHeaderTimeout: 5 * time.Second} // the call log and faults

	s.mu.Lock()
	if _, exists := s.operators[o.id]; exists || s.closed { // lost a race with another AddOperator, or with Close
		s.mu.Unlock()
		stop()
		_ = l.Close()
		return fmt.Errorf("soracom operator %s: exists, or the service is closed", o.id)
	}
	s.operators[o.id] = o
	s.mu.Unlock()
	go func() { _ = o.hs.Serve(l) }()
	go func() { defer close(o.done); o.pushLoop(ctx) }()
	return nil
}

// Operator returns an operator by id.
func (s *Service) Operator(id string) (*Operator, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.operators[id]
	return o, ok
}

// Operators returns every operator, sorted by id.
func (s *Service) Operators() []*Operator {
	s.mu.Lock()
	out := make([]*Operator, 0, len(s.operators))
	for _, o := range s.operators {
		out = append(out, o)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Close stops every operator: its push loop and its listener. It may be
// called more than once; no operator can be added after it.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	var errs []error
	for _, o := range s.Operators() {
		o.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := o.hs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("soracom operator %s: shutdown: %w", o.id, err))
		}
		cancel()
		<-o.done
	}
	return errors.Join(errs...)
}

// newOperatorID is "OP" and ten digits, the shape of a SORACOM operator id.
func newOperatorID() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e10))
	if err != nil {
		n = big.NewInt(time.Now().UnixNano() % 1e10)
	}
	return fmt.Sprintf("OP%010d", n.Int64())
}

// Secrets returns every operator's SAM users' AuthKey secrets: what a leak
// check (I1) scans every output for. Tests only.
func (s *Service) Secrets() []string {
	s.mu.Lock()
	ops := make([]*Operator, 0, len(s.operators))
	for _, o := range s.operators {
		ops = append(ops, o)
	}
	s.mu.Unlock()
	var out []string
	for _, o := range ops {
		o.mu.Lock()
		for _, u := range o.users {
			out = append(out, u.AuthKey)
		}
		o.mu.Unlock()
	}
	return out
}
