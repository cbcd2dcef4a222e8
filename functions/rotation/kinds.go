package rotation

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is a target kind as the workflow knows it before any Lambda talks
// to the target: what its input means beyond the schema, the plan's
// sentence for it, what two targets of it must not share, and how a person
// reads its receipts. Validate, the Preflight, Notify and the operator's
// watch read it; none of them names a kind. The code that talks to the
// target is a package under functions/targets (steps.Target: Plan and
// Update, and UsageReporter, Cleaner if it has those), run by its own
// Update<Kind> task (functions/tasks), which the ASL's RouteTarget and
// RouteDryRun choose by the target's type.
type Kind struct {
	// Name is the target's "type": in the input (the schema's enum), the
	// ASL's routes and the receipts.
	Name string
	// Title names the service for a person: "SORACOM".
	Title string
	// Place is what a target of the kind resolves to (a receipt's Where),
	// which two targets must not share, and Clash says why: Distribute
	// updates them side by side, so one would undo the other (I2).
	Place, Clash string
	// FoldCase: two places that differ only in case are one (a domain).
	FoldCase bool
	// Defaults fills in what the input left out of a target, after the
	// schema passed it (nil: nothing).
	Defaults func(*Target)
	// Check refuses what the schema cannot say (nil: nothing). Its
	// InvalidInput's Field is the target's field; ParseInput puts the
	// target's path before it.
	Check func(Target) *InvalidInput
	// Change is the plan's sentence for the target (Plan.Changes: the dry
	// run's answer and the approval request), after "target <name>: ".
	Change func(t Target, oldKeyID string) string
	// Issue is the plan's sentence for the target in an issue (Issuance:
	// no old key; the target must hold no key yet, and is filled).
	Issue func(t Target) string
	// Summary is one line of what a receipt's own part says (the alerts'
	// "what has changed"), and Details every item of it (the watch's
	// report); nil when a receipt of the kind has no part of its own.
	Summary func(Receipt) string
	Details func(Receipt) []string
}

// kinds are the target kinds: the one registration of each. The input
// schema (input.schema.json) describes each one's fields.
var kinds = []Kind{
	{
		Name: TargetSecret, Title: "Secrets Manager",
		Place: "secret",
		Clash: "each would read it, set its own fields and write the whole secret back, so the later write would put the old key back in the other's fields; keep the key in one pair of fields (one target), or in two secrets",
		Defaults: func(t *Target) {
			if t.KeyIDField == "" {
				t.KeyIDField = "accessKeyId"
			}
			if t.SecretField == "" {
				t.SecretField = "secretAccessKey"
			}
		},
		Check: func(t Target) *InvalidInput {
			if t.KeyIDField == t.SecretField {
				return &InvalidInput{Field: "secretField", Reason: fmt.Sprintf("is %q, the same field as keyIdField: the key id and its secret need two fields", t.SecretField)}
			}
			return nil
		},
		Change: func(t Target, _ string) string {
			return fmt.Sprintf("write the new key into secret %s (fields %s, %s), keeping its other fields", t.SecretID, t.KeyIDField, t.SecretField)
		},
		Issue: func(t Target) string {
			return fmt.Sprintf("write the new key into secret %s (fields %s, %s), keeping its other fields; it must hold no key yet, and a secret of that name that does not exist is created", t.SecretID, t.KeyIDField, t.SecretField)
		},
	},
	{
		Name: TargetAuth0, Title: "Auth0",
		Place:    "Auth0 tenant",
		Clash:    "a tenant has one email provider, which both would PATCH; keep one target per tenant",
		FoldCase: true,
		Change: func(t Target, _ string) string {
			return fmt.Sprintf("update the SES credentials of the Auth0 tenant in connection %s (region %s)", t.Connection, t.SESRegion)
		},
		Issue: func(t Target) string {
			return fmt.Sprintf("give the SES email provider of the Auth0 tenant in connection %s the new key (region %s); it must hold no key yet, and a tenant with no email provider gets an SES one, disabled, for a person to enable", t.Connection, t.SESRegion)
		},
		Summary: unconfirmedSummary,
		Details: func(r Receipt) []string {
			if s := unconfirmedSummary(r); s != "" {
				return []string{s}
			}
			return nil
		},
	},
	{
		Name: TargetSoracom, Title: "SORACOM",
		Place: "SORACOM account",
		Clash: "both would repoint the groups and credentials that use the old key; keep one target per SORACOM operator",
		Defaults: func(t *Target) {
			if t.Strategy == "" {
				t.Strategy = "newCredential"
			}
		},
		Change: soracomChange,
		Issue: func(t Target) string {
			return fmt.Sprintf("create a SORACOM credential %s with the new key (connection %s); the target must have no credential yet (%s), and no group is repointed: none uses it yet", issueCredentialID(t), t.Connection, t.CredentialsDescription())
		},
		Summary: soracomSummary,
		Details: soracomDetails,
	},
}

// KindOf is the kind registered under name (a target's type).
func KindOf(name string) (Kind, bool) {
	i := slices.IndexFunc(kinds, func(k Kind) bool { return k.Name == name })
	if i < 0 {
		return Kind{}, false
	}
	return kinds[i], true
}

// Kinds are every registered kind, in the order of registration.
func Kinds() []Kind { return slices.Clone(kinds) }

// SamePlace says whether two places (receipts' Where) of the kind are one.
func (k Kind) SamePlace(a, b string) bool {
	return a == b || k.FoldCase && strings.EqualFold(a, b)
}

// Summary is one line of what the receipt's own part says ("" if none).
func (r Receipt) Summary() string {
	if k, ok := KindOf(r.Type); ok && k.Summary != nil {
		return k.Summary(r)
	}
	return ""
}

// Details are every item of the receipt's own part, a line each.
func (r Receipt) Details() []string {
	if k, ok := KindOf(r.Type); ok && k.Details != nil {
		return k.Details(r)
	}
	return nil
}

// unconfirmedSummary says that a receipt's target could not show which key
// it holds, and what will confirm it ("" when it could).
func unconfirmedSummary(r Receipt) string {
	u := r.Unconfirmed
	if u == nil {
		return ""
	}
	return fmt.Sprintf("cut-over unconfirmed: %s; the old key stays until IAM shows the new key %s used by %s", u.Reason, r.NewKeyID, u.UsedBy)
}

// issueCredentialID names the credential an issue makes for a SORACOM
// target: inPlace's first credentialIds (the credential later rotations
// update in place), else <base>-<date> as a rotation's new credential.
func issueCredentialID(t Target) string {
	if t.Strategy == "inPlace" && len(t.CredentialIDs) > 0 {
		return t.CredentialIDs[0]
	}
	return t.CredentialBase() + "-<date>"
}

func soracomChange(t Target, oldKeyID string) string {
	which := t.CredentialsDescription()
	if t.Strategy == "inPlace" {
		return fmt.Sprintf("update in place the SORACOM credential of %s that holds key %s (connection %s); the groups that use it move with it", which, oldKeyID, t.Connection)
	}
	return fmt.Sprintf("create a SORACOM credential %s-<date> with the new key (connection %s), repoint every SIM group whose SoracomFunnel or SoracomFunk configuration uses a credential of %s, and delete the old credential after the old key", t.CredentialBase(), t.Connection, which)
}

// soracomSummary says which credential a SORACOM target uses now and which
// groups were moved to it.
func soracomSummary(r Receipt) string {
	s := r.Soracom
	if s == nil {
		return ""
	}
	if s.Strategy == "inPlace" {
		return fmt.Sprintf("credential %s updated in place; %d group(s) use it", s.NewCredential, len(s.Groups))
	}
	ids := make([]string, 0, len(s.Groups))
	for _, g := range s.Groups {
		ids = append(ids, g.GroupID+" ("+g.Namespace+")")
	}
	return fmt.Sprintf("new credential %s (old: %s); %d group(s) use it: %s", s.NewCredential, strings.Join(s.OldCredentials, ", "), len(s.Groups), strings.Join(ids, ", "))
}

// soracomDetails is a line per group: by name if it has one, from which
// credential to which.
func soracomDetails(r Receipt) []string {
	if r.Soracom == nil {
		return nil
	}
	out := make([]string, 0, len(r.Soracom.Groups))
	for _, g := range r.Soracom.Groups {
		name := g.Name
		if name == "" {
			name = g.GroupID
		}
		out = append(out, fmt.Sprintf("group %s (%s): %s → %s", name, g.Namespace, g.From, g.To))
	}
	return out
}

// SecretAccount is the account of a secret target's secretId when it is an
// ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>;
// arn is true, and account is whatever that field holds, so an ARN with
// no valid account matches no account); for a name, arn is false: the
// secret is in the rotation's account (issue 15: a member rotation's bare
// name is the member's secret).
func SecretAccount(secretID string) (account string, arn bool) {
	if !strings.HasPrefix(secretID, "arn:") {
		return "", false
	}
	p := strings.SplitN(secretID, ":", 7)
	if len(p) < 7 || p[2] != "secretsmanager" || !IsAccountID(p[4]) {
		return "(not an account)", true
	}
	return p[4], true
}
