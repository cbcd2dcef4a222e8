// Package cfn deploys a CloudFormation template into the sandbox the way
// CloudFormation deploys it into AWS: parameters and pseudo parameters
// bound, conditions and rules evaluated, intrinsics resolved, resources
// created in dependency order, each by the Provisioner of its type. The
// services own their provisioners (a service knows how to make its own
// resources); this package knows templates only.
package cfn

import (
	"context"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// Resource is one template resource, ready to create: every intrinsic
// (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split, the condition
// functions) already resolved to plain JSON values.
type Resource struct {
	LogicalID  string
	Type       string         // "AWS::SQS::Queue"
	Properties map[string]any // string, float64, bool, []any, map[string]any
	Metadata   map[string]any
	StackName  string
	Region     string
	Account    string
	Partition  string
	// Caller is who deploys: a provisioner that makes the resource through
	// its service's API makes the calls as this principal, as CloudFormation
	// calls with the deployer's credentials.
	Caller sandbox.Principal
	// Previous is what an earlier deploy of this stack made for this logical
	// id and type (nil on a first deploy): a provisioner updates that
	// resource in place, under its physical name, as a stack update does,
	// rather than making a second one.
	Previous *Provisioned
}

// Provisioned is what a created resource answers to Ref and Fn::GetAtt, as
// the resource type's page of the CloudFormation User Guide documents.
type Provisioned struct {
	Ref   string            // the physical id or the ARN, per the type's "Ref" section
	Attrs map[string]string // Fn::GetAtt attributes by name ("Arn", "QueueUrl"…)
}

// Provisioner creates the resources of some types in a sandbox service.
type Provisioner interface {
	// Types are the resource types it creates ("AWS::SQS::Queue").
	Types() []string
	// Create makes the resource; an error names the property at fault, as
	// CloudFormation's CREATE_FAILED reason would.
	Create(ctx context.Context, r Resource) (Provisioned, error)
}
