// Package sts is the sandbox's STS: GetCallerIdentity, which keyrotator uses
// to prove a new key works before anything relies on it.
package sts

import (
	"context"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Service is the STS service.
type Service struct{}

// New returns STS.
func New() *Service { return &Service{} }

// Info implements sandbox.Service.
func (*Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "sts", Protocol: sandbox.Query, XMLNamespace: "https://sts.amazonaws.com/doc/2011-06-15/",
		EventSource: "sts.amazonaws.com", ReadOnly: []string{"GetCallerIdentity"}}
}

// Handle implements sandbox.Service.
func (*Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	if c.Action != "GetCallerIdentity" {
		return nil, sandbox.Errorf(400, "InvalidAction", "Could not find operation %s for version 2011-06-15", c.Action)
	}
	return struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	}{c.Principal.ARN, c.Principal.UserID, c.Principal.Account}, nil
}
