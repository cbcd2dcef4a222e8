// Package sts is the sandbox's STS: GetCallerIdentity, which keyrotator uses
// to prove a new key works before anything relies on it, and AssumeRole,
// by which the keyrotator account's tasks reach a member account's IAM.
package sts

import (
	"context"
	"sync/atomic"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Service is the STS service.
type Service struct {
	srv          *sandbox.Server // nil: GetCallerIdentity only
	keepSessions atomic.Bool
}

// KeepSessions makes the sessions AssumeRole issues from now on valid
// while the sandbox runs, as a function's execution-role session is,
// whatever the sandbox clock says (AssumeRole still answers the
// Expiration it would have): for a world of many rotations at once
// (test/e2e BenchmarkFleet), where every rotation's shortened Waits move
// the one sandbox clock days in milliseconds while other rotations' tasks
// hold 15-minute member sessions — which their SDK renews on the real
// clock, and which would end a few milliseconds after they were assumed.
// A session still ends at its expiration otherwise.
func (s *Service) KeepSessions() { s.keepSessions.Store(true) }

// New returns STS; srv (its IAM and clock) is what AssumeRole needs.
func New(srv *sandbox.Server) *Service { return &Service{srv: srv} }

// Info implements sandbox.Service.
func (*Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "sts", Protocol: sandbox.Query, XMLNamespace: "https://sts.amazonaws.com/doc/2011-06-15/",
		EventSource: "sts.amazonaws.com", ReadOnly: []string{"GetCallerIdentity", "AssumeRole"}}
}

// Handle implements sandbox.Service.
func (s *Service) Handle(ctx context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "GetCallerIdentity":
		return struct {
			Arn     string `xml:"Arn"`
			UserID  string `xml:"UserId"`
			Account string `xml:"Account"`
		}{c.Principal.ARN, c.Principal.UserID, c.Principal.Account}, nil
	case "AssumeRole":
		if s.srv != nil {
			return s.assumeRole(ctx, c)
		}
	}
	return nil, sandbox.Errorf(400, "InvalidAction", "Could not find operation %s for version 2011-06-15", c.Action)
}
