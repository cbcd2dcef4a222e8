package steps

import (
	"fmt"
	"strings"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// confirmations is, for every receipt left unconfirmed (a target that took
// the new key but cannot show which key it holds: an Auth0 tenant, whose
// email provider's answer has no accessKeyId), whether IAM has shown the
// new key used by the receipt's service. The new key was only ever given
// to the targets (CreateKey's proof calls STS), so such a use is a target
// sending with it. An earlier check's confirmation stays: IAM keeps only a
// key's latest use, which another consumer of the new key may hide.
//
// One use confirms every unconfirmed receipt of its service: IAM cannot
// tell two tenants apart. The old key's verification covers the rest: a
// tenant still sending with the old key is a use of it.
func confirmations(d rotation.ExecutionData, newKey rotation.KeyUse) []rotation.Confirmation {
	earlier := map[string]rotation.Confirmation{}
	if d.Verify != nil {
		for _, c := range d.Verify.Confirmations {
			earlier[c.Target] = c
		}
	}
	var out []rotation.Confirmation
	for _, r := range d.Receipts {
		if r.Unconfirmed == nil {
			continue
		}
		c := rotation.Confirmation{Target: r.Target, UsedBy: r.Unconfirmed.UsedBy}
		switch e, ok := earlier[r.Target]; {
		case ok && e.Confirmed:
			c = e
		case newKey.LastUsed != nil && newKey.Service != "" && newKey.Service == c.UsedBy:
			c.Confirmed, c.At = true, newKey.LastUsed
		}
		out = append(out, c)
	}
	return out
}

// pending are the targets of cs not confirmed yet.
func pending(cs []rotation.Confirmation) []string {
	var out []string
	for _, c := range cs {
		if !c.Confirmed {
			out = append(out, c.Target)
		}
	}
	return out
}

// unconfirmedTargets are the receipts' targets whose cut-over no check has
// confirmed yet (d.Verify's confirmations).
func unconfirmedTargets(d rotation.ExecutionData) []string {
	done := map[string]bool{}
	if d.Verify != nil {
		for _, c := range d.Verify.Confirmations {
			done[c.Target] = c.Confirmed
		}
	}
	var out []string
	for _, r := range d.Receipts {
		if r.Unconfirmed != nil && !done[r.Target] {
			out = append(out, r.Target)
		}
	}
	return out
}

// confirmationEvidence is a sentence on each confirmation, for the evidence.
func confirmationEvidence(cs []rotation.Confirmation, newKeyID string) string {
	var parts []string
	for _, c := range cs {
		if c.Confirmed {
			parts = append(parts, fmt.Sprintf("target %s's cut-over confirmed: IAM showed the new key %s used by %s at %s", c.Target, newKeyID, c.UsedBy, stamp(*c.At)))
		} else {
			parts = append(parts, fmt.Sprintf("target %s's cut-over not confirmed yet: it does not show which key it holds, and IAM has not shown the new key %s used by %s", c.Target, newKeyID, c.UsedBy))
		}
	}
	return strings.Join(parts, "; ")
}

// confirmedTargets are the targets d.Verify confirmed.
func confirmedTargets(d rotation.ExecutionData) []string {
	var out []string
	if d.Verify != nil {
		for _, c := range d.Verify.Confirmations {
			if c.Confirmed {
				out = append(out, c.Target)
			}
		}
	}
	return out
}
