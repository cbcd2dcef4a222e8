// Package sts is the sandbox's STS: GetCallerIdentity, which keyrotator uses
// to prove a new key works before anything relies on it, and AssumeRole,
// by which the keyrotator account's tasks reach a member account's IAM.
package sts

import (
	"context"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Service is the STS service.
type Service struct {
	srv *sandbox.Server // nil: GetCallerIdentity only
}

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
