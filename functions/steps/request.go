package steps

import (
	"context"
	"crypto/hmac"
	"fmt"
	"strings"
	"unicode"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// macVerifier checks a MAC made with the stack's HMAC key (package mac:
// kms:VerifyMac). A MAC that does not verify is false, not an error.
type macVerifier interface {
	Verify(ctx context.Context, msg []byte, mac string) (bool, error)
}

// unverified marks a requester nobody authenticated: the input's word.
const unverified = " (unverified: the input's word, not signed by the request endpoint)"

// requester is who asked for this run, as the run may say it: the signed
// request's requestedBy once it verifies (purpose, this execution's name,
// this input's digest, the MAC); without a request, the input's
// requestedBy marked unverified, unless the run needs approval, which is
// then refused (RequestUnsigned). A request that is present is always
// checked, approval or not: a forged one is refused (RequestForged).
func requester(ctx context.Context, key macVerifier, ev rotation.TaskInput, in rotation.Input, needsApproval bool) (string, error) {
	name := executionName(ev)
	req, present, err := rotation.ParseSignedRequest(ev.Data.Input)
	if err != nil {
		return "", err
	}
	if !present {
		if needsApproval {
			return "", &rotation.RequestUnsigned{Execution: name}
		}
		if in.RequestedBy == "" {
			return "", nil
		}
		return in.RequestedBy + unverified, nil
	}
	if key == nil {
		return "", &rotation.Internal{Reason: "validate: no signing key to verify the request with (steps.Validate.Requests)"}
	}
	if err := verifyRequest(ctx, key, req, name, ev.Data.Input); err != nil {
		return "", err
	}
	return req.RequestedBy, nil
}

// verifyRequest checks req against the run: purpose, execution name,
// input digest, then the MAC (KMS last: a mismatch of the cheap fields
// needs no call). Each refusal says what did not match in ids and digests
// only, cut short and without control characters.
func verifyRequest(ctx context.Context, key macVerifier, req rotation.SignedRequest, name string, input []byte) error {
	if req.Purpose != rotation.RequestPurpose {
		return &rotation.RequestForged{Reason: fmt.Sprintf("its purpose is %q, not %q", clip(req.Purpose), rotation.RequestPurpose)}
	}
	if !hmac.Equal([]byte(req.Execution), []byte(name)) {
		return &rotation.RequestForged{Reason: fmt.Sprintf("it was signed for execution %q, not this one (%q): a request is good for the one run it was made for", clip(req.Execution), name)}
	}
	digest, err := rotation.InputDigest(input)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(req.InputSHA256), []byte(digest)) {
		return &rotation.RequestForged{Reason: fmt.Sprintf("it was signed for another input (sha256 %s), not this one (sha256 %s): the input was changed after it was signed", clip(req.InputSHA256), digest)}
	}
	if strings.TrimSpace(req.RequestedBy) == "" {
		return &rotation.RequestForged{Reason: "it names nobody as the requester"}
	}
	ok, err := key.Verify(ctx, req.Message(), req.MAC)
	if err != nil {
		return err
	}
	if !ok {
		return &rotation.RequestForged{Reason: fmt.Sprintf("its MAC is not the stack's signing key's (it names %q as the requester)", clip(req.RequestedBy))}
	}
	return nil
}

// executionName is the run's name: $$.Execution.Name as the state passes
// it, else the last part of $.execution ($$.Execution.Id, which the Start
// state sets: a name has no colon).
func executionName(ev rotation.TaskInput) string {
	if ev.ExecutionName != "" {
		return ev.ExecutionName
	}
	return rotation.ExecutionNameOf(ev.Data.Execution)
}

// clip is s for a refusal: at most 100 bytes, control characters dropped
// (a forger's string goes into an alert).
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > 100 {
		cut := 100
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
