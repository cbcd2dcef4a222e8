package rotation

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Who may approve a run (issue 14): the input's approvers are IAM principal
// ARNs or patterns, and the caller an approval endpoint sees is the ARN AWS
// authenticated (a Lambda function URL's requestContext.authorizer.iam.userArn).
// Both are reduced to a Principal and compared by partition, account, kind,
// name and, where the pattern names one, path.
//
// An assumed-role session ARN (arn:aws:sts::A:assumed-role/ROLE/session)
// drops the role's path — IAM Identity Center's roles live under
// /aws-reserved/sso.amazonaws.com/ — so a role's path is known only by
// looking the role up (iam:GetRole). IAM role and user names are unique
// within an account whatever their path
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-friendly-names),
// so a pattern without a path compares account and name only; a role
// pattern with a path needs the role's path (Match says so with NeedsPath).

// Principal kinds an approver can be.
const (
	KindUser = "user"
	KindRole = "role"
)

// Principal is an IAM user or role, as far as an ARN says.
type Principal struct {
	Partition string // aws, aws-cn, aws-us-gov
	Account   string // 12 digits
	Kind      string // KindUser or KindRole
	// Path is the user's or role's path ("/" or "/a/b/"); "" when the ARN
	// does not say (a role's session).
	Path string
	Name string
}

// String is the principal as an IAM ARN (a role's session as its role,
// with the path when known).
func (p Principal) String() string {
	path := p.Path
	if path == "" {
		path = "/"
	}
	return fmt.Sprintf("arn:%s:iam::%s:%s%s%s", p.Partition, p.Account, p.Kind, path, p.Name)
}

// Same reports whether p and q are the same IAM identity: the same user, or
// sessions of the same role (whoever assumed it: one person, as far as IAM
// can tell). Names compare without regard to case: IAM user and role names
// are unique in an account case-insensitively
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-friendly-names),
// so user/Alice and user/alice are one user, never two approvers nor a
// requester and an approver. (Approvers patterns still match case-sensitively,
// as IAM's ArnLike does: a pattern in the wrong case refuses, it never lets
// one more through.)
func (p Principal) Same(q Principal) bool {
	return p.Partition == q.Partition && p.Account == q.Account && p.Kind == q.Kind && strings.EqualFold(p.Name, q.Name)
}

// NotApprover is a caller ARN that can never approve, saying why.
type NotApprover struct{ ARN, Reason string }

func (e *NotApprover) Error() string { return fmt.Sprintf("%s cannot approve: %s", e.ARN, e.Reason) }

var (
	accountRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })
	// IAM names: letters, digits and +=,.@_- (users 64, roles 64).
	nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,64}$`) })
	// A path: / or /seg/.../ of printable ASCII but / (IAM: \u0021-\u007E).
	pathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/([\x21-\x2E\x30-\x7E]+/)*$`) })
	// A role session name: STS AssumeRole's RoleSessionName is 2 to 64 of
	// [\w+=,.@-]
	// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html);
	// one character is let through, as AWS services name a session after
	// what runs in it (a Lambda function's name may be one character).
	sessionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{1,64}$`) })
	// A pattern's name: IAM name characters and the wildcards * and ?.
	namePatternRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9+=,.@_*?-]{1,64}$`) })
	partitions    = map[string]bool{"aws": true, "aws-cn": true, "aws-us-gov": true}
)

// ParseCaller reduces an authenticated caller's ARN to the principal that
// may approve: an IAM user (arn:P:iam::A:user/path/name) or a role's
// session (arn:P:sts::A:assumed-role/ROLE/session, path unknown). The root
// user, federated users (GetFederationToken) and anything else are refused
// as *NotApprover: a root or federation token names no one a pattern can
// hold to account.
func ParseCaller(arn string) (Principal, error) {
	refuse := func(why string) (Principal, error) {
		return Principal{}, &NotApprover{ARN: Printable(arn, 200), Reason: why}
	}
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" || !partitions[f[1]] || f[3] != "" || !accountRE().MatchString(f[4]) {
		return refuse("not an IAM or STS principal ARN")
	}
	p := Principal{Partition: f[1], Account: f[4]}
	switch res := f[5]; {
	case f[2] == "iam" && res == "root":
		return refuse("the account's root user is never an approver")
	case f[2] == "sts" && strings.HasPrefix(res, "federated-user/"):
		return refuse("a federated user (GetFederationToken) is never an approver: it names no IAM user or role")
	case f[2] == "iam" && (strings.HasPrefix(res, "user/") || strings.HasPrefix(res, "role/")):
		kind, rest, _ := strings.Cut(res, "/")
		i := strings.LastIndexByte(rest, '/')
		p.Kind, p.Path, p.Name = kind, "/"+rest[:i+1], rest[i+1:]
		if !pathRE().MatchString(p.Path) {
			return refuse("its path is not an IAM path")
		}
	case f[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		parts := strings.Split(res, "/")
		if len(parts) != 3 || parts[2] == "" {
			return refuse("not an assumed-role session ARN (assumed-role/ROLE/session)")
		}
		if !sessionRE().MatchString(parts[2]) {
			return refuse("its session name is not an STS role session name (at most 64 of A-Z a-z 0-9 _+=,.@-)")
		}
		p.Kind, p.Name = KindRole, parts[1]
	default:
		return refuse("only IAM users and assumed-role sessions may approve")
	}
	if !nameRE().MatchString(p.Name) {
		return refuse("its name is not an IAM name")
	}
	return p, nil
}

// ApproverPattern is one entry of a rotation's approvers.
type ApproverPattern struct {
	Partition, Account, Kind string
	Path                     string // "" when the pattern names none: any path
	Name                     string // with * (any run of characters) and ? (one)
}

// ParseApprover reads an approvers entry:
// arn:P:iam::ACCOUNT:user/NAME, arn:P:iam::ACCOUNT:role/NAME, either with a
// /path/ before NAME; NAME may hold * and ?; the account, kind and path are
// literal. Errors say what is wrong, quoting at most a bounded, printable
// piece of the entry.
func ParseApprover(s string) (ApproverPattern, error) {
	bad := func(why string) (ApproverPattern, error) {
		return ApproverPattern{}, fmt.Errorf("%s: %s", Printable(s, 120), why)
	}
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[2] != "iam" || f[3] != "" {
		return bad("want arn:aws:iam::<account>:user/<name> or role/<name> (a path and * ? in the name allowed)")
	}
	if !partitions[f[1]] {
		return bad("unknown partition (aws, aws-cn, aws-us-gov)")
	}
	if !accountRE().MatchString(f[4]) {
		return bad("the account must be 12 digits (no wildcard: an approver is in an account you name)")
	}
	kind, rest, ok := strings.Cut(f[5], "/")
	if !ok || (kind != KindUser && kind != KindRole) {
		return bad("only user/… and role/… can approve (not root, groups or federated users)")
	}
	p := ApproverPattern{Partition: f[1], Account: f[4], Kind: kind}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Path, p.Name = "/"+rest[:i+1], rest[i+1:]
		if !pathRE().MatchString(p.Path) || strings.ContainsAny(p.Path, "*?") {
			return bad("the path must be a literal IAM path (/a/b/): wildcards are allowed in the name only")
		}
	} else {
		p.Name = rest
	}
	if !namePatternRE().MatchString(p.Name) {
		return bad("the name must be 1 to 64 IAM name characters (A-Z a-z 0-9 +=,.@_-) and * ?")
	}
	if strings.Trim(p.Name, "*") == "" {
		return bad("a name of * alone lets every " + kind + " of the account approve: name them, or a prefix (security-*)")
	}
	return p, nil
}

// IsPattern says whether the entry matches more than one name.
func (a ApproverPattern) IsPattern() bool { return strings.ContainsAny(a.Name, "*?") }

// Match says whether p may approve under a. When it cannot tell — a role
// pattern with a path, p a role's session whose path is unknown — it
// returns needsPath: look the role up (iam:GetRole) and ask again with
// p.Path set.
func (a ApproverPattern) Match(p Principal) (ok, needsPath bool) {
	if a.Partition != p.Partition || a.Account != p.Account || a.Kind != p.Kind || !Glob(a.Name, p.Name) {
		return false, false
	}
	if a.Path == "" {
		return true, false
	}
	if p.Path == "" {
		return false, true
	}
	return a.Path == p.Path, false
}

// Glob matches name against a pattern of literal characters, * (any run,
// empty too) and ? (exactly one character). IAM names are ASCII.
func Glob(pattern, name string) bool {
	// The classic two-pointer match with backtracking to the last *.
	p, n, star, mark := 0, 0, -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Approvers is a rotation's approvers, parsed.
type Approvers []ApproverPattern

// ParseApprovers reads every entry; the error names the first bad one by index.
func ParseApprovers(list []string) (Approvers, error) {
	out := make(Approvers, 0, len(list))
	for i, s := range list {
		a, err := ParseApprover(s)
		if err != nil {
			return nil, &InvalidInput{Field: fmt.Sprintf("approvers[%d]", i), Reason: err.Error()}
		}
		out = append(out, a)
	}
	return out, nil
}

// Verdict is what Decide says of a caller.
type Verdict struct {
	OK bool
	// NeedsPath: a role pattern with a path may match; look the role's
	// path up and decide again.
	NeedsPath bool
	Reason    string // why not, for the caller (ApproverRefused) and the logs
}

// Decide says whether caller may approve a run that requester asked for.
// requester is the verified requester's ARN or "schedule <name>"; the
// requester never approves their own run, whichever pattern matches them.
func (as Approvers) Decide(caller Principal, requester string) Verdict {
	if r, err := ParseCaller(requester); err == nil && r.Same(caller) {
		return Verdict{Reason: "you asked for this run: the requester never counts as an approver"}
	}
	needs := false
	for _, a := range as {
		ok, np := a.Match(caller)
		if ok {
			return Verdict{OK: true}
		}
		needs = needs || np
	}
	if needs {
		return Verdict{NeedsPath: true, Reason: "a role pattern with a path may match: the role's path must be looked up"}
	}
	return Verdict{Reason: "you are not among this run's approvers"}
}

// Printable is s cut to at most limit bytes with every character outside
// printable ASCII dropped: safe to quote from an untrusted caller in an
// error, a log line or an alert.
func Printable(s string, limit int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= limit {
			b.WriteString("…")
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// errNoApprovers is the refusal of requireApproval without approvers.
var errNoApprovers = errors.New("requireApproval is true but approvers is empty: who may approve? Name the IAM users or roles (ARNs, or patterns with * and ? in the name) whose approval this run needs")

// checkApprovers holds the approvers to what the schema cannot say: each
// entry parses, requireApproval names some, and minApprovals distinct
// approvers can exist.
func (in Input) checkApprovers() *InvalidInput {
	as, err := ParseApprovers(in.Approvers)
	var ii *InvalidInput
	if errors.As(err, &ii) {
		return ii
	}
	if in.RequireApproval && len(as) == 0 {
		return &InvalidInput{Field: "approvers", Reason: errNoApprovers.Error()}
	}
	if !in.RequireApproval || in.MinApprovals <= len(as) {
		return nil
	}
	for _, a := range as {
		if a.IsPattern() {
			return nil // a pattern may match more than one principal
		}
	}
	return &InvalidInput{Field: "minApprovals", Reason: fmt.Sprintf("%d approvals are needed but approvers names only %d principal(s) and no pattern: the run could never be approved", in.MinApprovals, len(as))}
}
