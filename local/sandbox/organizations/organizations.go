// Package organizations is the sandbox's AWS Organizations (JSON 1.1,
// AWSOrganizationsV20161128): one organization whose management account is
// the sandbox's own, made by CreateOrganization, and its accounts, listed
// by ListAccounts — what `keyrotator audit --organization` reads. Member
// accounts are added by CreateAccount (made at once, ACTIVE) or the admin
// API; the sandbox serves one account's APIs, so a member is a name in the
// list, not an account the other services answer for.
package organizations

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Service is the Organizations service.
type Service struct {
	srv *sandbox.Server
	mu  sync.Mutex
	org *organization
}

type organization struct {
	ID       string
	Accounts []Account // management account first, then in the order made
}

// Account is one account of the organization.
type Account struct {
	ID     string
	Name   string
	Email  string
	Joined time.Time
	Method string // CREATED or INVITED
}

// New returns an Organizations without an organization.
func New(srv *sandbox.Server) *Service { return &Service{srv: srv} }

// Info implements sandbox.Service. Organizations' endpoint is global
// (organizations.us-east-1.amazonaws.com in the aws partition).
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "organizations", Protocol: sandbox.JSON11, TargetPrefix: "AWSOrganizationsV20161128",
		Global: true, EventSource: "organizations.amazonaws.com"}
}

// ResourceARNs implements sandbox.ResourceNamer: ListAccounts and
// CreateOrganization take no resource; CreateAccount none either
// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html).
func (s *Service) ResourceARNs(*sandbox.Call) []string { return []string{"*"} }

// accountPage is ListAccounts' page size when MaxResults is not given.
const accountPage = 20

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	var req struct {
		AccountName string `json:"AccountName"`
		Email       string `json:"Email"`
		FeatureSet  string `json:"FeatureSet"`
		MaxResults  int    `json:"MaxResults"`
		NextToken   string `json:"NextToken"`
	}
	if err := c.DecodeJSON(&req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch c.Action {
	case "CreateOrganization":
		if s.org != nil {
			return nil, sandbox.Errorf(400, "AlreadyInOrganizationException", "The AWS account is already a member of an organization.")
		}
		s.org = &organization{ID: "o-" + strings.ToLower(sandbox.NewID("", 10)), Accounts: []Account{{ID: s.srv.Account(), Name: "management", Email: "management@example.com", Joined: s.srv.Clock().Now(), Method: "CREATED"}}}
		return map[string]any{"Organization": s.orgView()}, nil
	case "ListAccounts":
		if s.org == nil {
			return nil, notInUse()
		}
		size := req.MaxResults
		if size <= 0 || size > accountPage {
			size = accountPage
		}
		start, _ := strconv.Atoi(req.NextToken)
		if start < 0 || start > len(s.org.Accounts) {
			return nil, sandbox.Errorf(400, "InvalidInputException", "The NextToken is not valid.")
		}
		end := min(start+size, len(s.org.Accounts))
		out := map[string]any{"Accounts": s.accountViews(s.org.Accounts[start:end])}
		if end < len(s.org.Accounts) {
			out["NextToken"] = strconv.Itoa(end)
		}
		return out, nil
	case "CreateAccount":
		if s.org == nil {
			return nil, notInUse()
		}
		now := sandbox.EpochTime(s.srv.Clock().Now())
		if slices.ContainsFunc(s.org.Accounts, func(a Account) bool { return a.Email == req.Email }) {
			// CreateAccount is asynchronous: a refusal is the request's state
			// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_CreateAccountStatus.html).
			return map[string]any{"CreateAccountStatus": map[string]any{
				"Id": "car-" + strings.ToLower(sandbox.NewID("", 12)), "AccountName": req.AccountName, "State": "FAILED",
				"FailureReason": "EMAIL_ALREADY_EXISTS", "RequestedTimestamp": now, "CompletedTimestamp": now,
			}}, nil
		}
		a, err := s.addLocked(req.AccountName, req.Email)
		if err != nil {
			return nil, err
		}
		return map[string]any{"CreateAccountStatus": map[string]any{
			"Id": "car-" + strings.ToLower(sandbox.NewID("", 12)), "AccountId": a.ID, "AccountName": a.Name, "State": "SUCCEEDED",
			"RequestedTimestamp": sandbox.EpochTime(a.Joined), "CompletedTimestamp": sandbox.EpochTime(a.Joined),
		}}, nil
	}
	return nil, sandbox.Errorf(400, "UnknownOperationException", "")
}

func notInUse() error {
	return sandbox.Errorf(400, "AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")
}

var email = regexp.MustCompile(`^[^\s@]+@[^\s@]+\.[^\s@]+$`)

func (s *Service) addLocked(name, mail string) (Account, error) {
	if name == "" || len(name) > 50 || !email.MatchString(mail) {
		return Account{}, sandbox.Errorf(400, "InvalidInputException", "You provided a value that does not match the required pattern.")
	}
	if slices.ContainsFunc(s.org.Accounts, func(a Account) bool { return a.Email == mail }) {
		return Account{}, sandbox.Errorf(400, "DuplicateAccountException", "That account already exists.")
	}
	a := Account{ID: fmt.Sprintf("%012d", 100000000000+len(s.org.Accounts)), Name: name, Email: mail, Joined: s.srv.Clock().Now(), Method: "CREATED"}
	s.org.Accounts = append(s.org.Accounts, a)
	return a, nil
}

func (s *Service) orgView() map[string]any {
	mgmt := s.org.Accounts[0]
	return map[string]any{"Id": s.org.ID, "Arn": fmt.Sprintf("arn:aws:organizations::%s:organization/%s", mgmt.ID, s.org.ID),
		"FeatureSet": "ALL", "MasterAccountId": mgmt.ID, "MasterAccountEmail": mgmt.Email,
		"MasterAccountArn": fmt.Sprintf("arn:aws:organizations::%s:account/%s/%s", mgmt.ID, s.org.ID, mgmt.ID)}
}

func (s *Service) accountViews(as []Account) []map[string]any {
	out := []map[string]any{}
	mgmt := s.org.Accounts[0].ID
	for _, a := range as {
		out = append(out, map[string]any{
			"Id": a.ID, "Arn": fmt.Sprintf("arn:aws:organizations::%s:account/%s/%s", mgmt, s.org.ID, a.ID),
			"Name": a.Name, "Email": a.Email, "Status": "ACTIVE", "State": "ACTIVE",
			"JoinedMethod": a.Method, "JoinedTimestamp": sandbox.EpochTime(a.Joined),
		})
	}
	return out
}

// Admin implements sandbox.Administered:
//
//	POST /accounts {"name","email"} makes the organization if there is none and adds a member account.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /accounts", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name, Email string }
		if err := sandbox.ReadJSON(r, &req); err != nil {
			sandbox.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.org == nil {
			s.org = &organization{ID: "o-" + strings.ToLower(sandbox.NewID("", 10)), Accounts: []Account{{ID: s.srv.Account(), Name: "management", Email: "management@example.com", Joined: s.srv.Clock().Now(), Method: "CREATED"}}}
		}
		a, err := s.addLocked(req.Name, req.Email)
		if err != nil {
			sandbox.WriteJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		sandbox.WriteJSON(w, http.StatusCreated, map[string]string{"id": a.ID})
	})
	return m
}
