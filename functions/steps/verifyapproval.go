package steps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// VerifyApproval is the VerifyApproval state (issue 14), between Approve and
// the second Preflight: it lets the run make a key only on an answer
// answerapproval signed for this very execution — the MAC verifies
// (kms:VerifyMac), the purpose is an approval's, the execution is this
// one, the requester is the run's, and minApprovals distinct principals on
// the run's approvers list approved, none of them the requester. Anything
// else is ApprovalForged. Its result is $.approval, the verified approvals.
type VerifyApproval struct {
	MAC verifier
}

type verifier interface {
	Verify(ctx context.Context, doc []byte, mac string) (bool, error)
}

// VerifyApprovalInput is the state's event: the TaskInput, with Approve's
// raw answer in Data.Answer and the execution's ARN ($$.Execution.Id) in
// Data.Execution.
type VerifyApprovalInput = rotation.TaskInput

// Run verifies the answer.
func (v *VerifyApproval) Run(ctx context.Context, in VerifyApprovalInput) (rotation.Approval, error) {
	d := in.Data
	forged := func(why string) (rotation.Approval, error) {
		return rotation.Approval{}, &rotation.ApprovalForged{What: why + "; what arrived: " + describeAnswer(d.Answer)}
	}
	if d.Plan == nil {
		return rotation.Approval{}, &rotation.Internal{Reason: "verifyapproval: no plan"}
	}
	var signed rotation.SignedApproval
	dec := json.NewDecoder(bytes.NewReader(d.Answer))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&signed); err != nil || signed.MAC == "" {
		return forged("the answer is not a signed approval document")
	}
	doc, _ := json.Marshal(signed.Doc) // canonical: the struct's own encoding
	ok, err := v.MAC.Verify(ctx, doc, signed.MAC)
	if err != nil {
		return rotation.Approval{}, fmt.Errorf("verify the approval of %s: %w", d.Execution, err)
	}
	if !ok {
		return forged("its MAC does not verify with keyrotator's HMAC key")
	}
	// Signed by answerapproval: what follows holds it to this run.
	sd := signed.Doc
	switch {
	case sd.Purpose != rotation.ApprovalPurpose:
		return forged("it was signed for another purpose")
	case sd.Execution != d.Execution:
		return forged("it was signed for another execution")
	case !sd.RunStartedAt.Equal(d.Plan.StartedAt):
		// The same ARN, another run: Step Functions lets an execution's
		// name be used again 90 days after it closed.
		return forged("it was signed for another run of this execution name (one started at " + stamp(sd.RunStartedAt) + ")")
	case sd.RequestedBy != d.Plan.RequestedBy:
		return forged("it names another requester than this run's")
	}
	approvers, err := rotation.ParseApprovers(d.Plan.Approvers)
	if err != nil {
		return forged("this run's approvers do not parse")
	}
	var distinct []rotation.Principal
	for _, e := range sd.Approvals {
		p, err := rotation.ParseCaller(e.By)
		if err != nil {
			return forged("an approver is no IAM user or role session")
		}
		p.Path = e.RolePath
		if v := approvers.Decide(p, sd.RequestedBy); !v.OK {
			return forged(fmt.Sprintf("approver %s does not hold for this run: %s", rotation.Printable(e.By, 200), v.Reason))
		}
		if !slices.ContainsFunc(distinct, p.Same) {
			distinct = append(distinct, p)
		}
	}
	if n := max(d.Plan.MinApprovals, 1); len(distinct) < n {
		return forged(fmt.Sprintf("%d distinct approver(s), %d needed", len(distinct), n))
	}
	return rotation.Approval{RequestedBy: sd.RequestedBy, Approvals: sd.Approvals}, nil
}

// knownAnswerFields are the top-level fields an alert may name: a
// stranger's field names are words it does not repeat.
var knownAnswerFields = []string{"doc", "mac", "approvedBy", "comment", "at", "approvals", "requestedBy", "reason"}

// describeAnswer names what arrived by its shape only — its size, the
// known fields it has, how many others, and its SHA-256, which finds it in
// the execution's history (TaskSucceeded) — never its values: an
// "approvedBy" it claims must appear nowhere keyrotator writes.
func describeAnswer(raw json.RawMessage) string {
	sum := sha256.Sum256(raw)
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return fmt.Sprintf("%d bytes, not a JSON object, sha256 %s", len(raw), hex.EncodeToString(sum[:8]))
	}
	var known []string
	others := 0
	for k := range fields {
		if slices.Contains(knownAnswerFields, k) {
			known = append(known, k)
		} else {
			others++
		}
	}
	slices.Sort(known)
	s := fmt.Sprintf("a %d-byte JSON object with fields [%s]", len(raw), strings.Join(known, " "))
	if others > 0 {
		s += fmt.Sprintf(" and %d other field(s)", others)
	}
	return s + ", sha256 " + hex.EncodeToString(sum[:8]) + " (the execution's history holds it: the Approve state's TaskSucceeded event)"
}
