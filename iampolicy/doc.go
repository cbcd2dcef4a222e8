// Package iampolicy parses IAM policy documents and decides requests against
// them as AWS does, so the sandbox can refuse a call the deployed policies
// would refuse in a real account (issue 13). It is pure: no server, no I/O;
// the sandbox hands it the caller, the action, the resource and its policies.
//
// What it implements:
//   - Parse: policy documents as CloudFormation/CDK emit them and AWS accepts
//     them (Version, Id, Statement as object or list, Sid, Effect,
//     Action/NotAction, Resource/NotResource, Principal/NotPrincipal with
//     "*", AWS, Service, Federated and CanonicalUser, Condition), strictly:
//     an unknown or malformed element is an *Error (AWS's
//     MalformedPolicyDocument).
//   - Evaluate: identity-based policies (inline and managed, one list) and
//     one resource-based policy (topic, queue, secret policy; a KMS key
//     policy with Input.KeyPolicy), explicit Deny over Allow, same-account
//     and cross-account rules, service principals, assumed-role sessions
//     matched by their role's ARN, action and resource wildcards, the
//     documented condition operators with IfExists, ForAnyValue: and
//     ForAllValues:, and policy variables (${aws:username}…) in Resource and
//     in string and ARN condition values of 2012-10-17 policies. A denial
//     carries AWS's AccessDenied message and the statement that decided.
//
// What it does not implement: AWS Organizations SCPs and RCPs, permissions
// boundaries, session policies, VPC endpoint policies, S3 ACLs and Block
// Public Access, the root user's implicit access, anonymous requests, and
// service-specific extras (KMS grants, IAM trust-policy rules of
// sts:AssumeRole). Session policies are the next to come, for sessions
// assumed across accounts: they would enter Input as a list and, like a
// permissions boundary, cap identity-based Allows and the resource-policy
// Allows that name the role rather than the session (principalMatch keeps
// the two apart for that).
//
// The evaluator is checked against an independent implementation,
// @cloud-copilot/iam-simulate (npm, pinned in package.json), by the
// differential test in this package.
package iampolicy
