package cloudtrail

import "github.com/keyrotator/keyrotator/local/sandbox"

// ResourceARNs implements sandbox.ResourceNamer: LookupEvents supports no
// resource-level permissions
// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudtrail.html).
func (s *Service) ResourceARNs(*sandbox.Call) []string { return []string{"*"} }
