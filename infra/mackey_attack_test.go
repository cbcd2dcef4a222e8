package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The HMAC key's policy denies kms:GenerateMac to everyone but
// answerapproval's role — but it also lets the account's IAM policies grant
// kms:* on the key (CDK's default statement for the account root), so
// whoever holds kms:PutKeyPolicy on it (PowerUserAccess, a KMS
// administrator) can rewrite the policy without the deny, sign an
// approval, and answer the task token raw: VerifyApproval cannot tell. The
// key policy must deny kms:PutKeyPolicy to everyone but the principal
// that deploys the stack. (A grant cannot get around the deny: "no AWS
// principal has any permissions to a KMS key unless that permission is
// provided explicitly and never denied",
// https://docs.aws.amazon.com/kms/latest/developerguide/control-access.html.)
// Closed: only the CDK bootstrap's CloudFormation execution role may
// rewrite it (infra/rotator keyPolicy; docs/design.md, trust boundary).
func TestAttackMacKeyPolicyCannotBeRewrittenThroughIAM(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "template.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				KeyPolicy struct {
					Statement []struct {
						Effect string
						Action any
					}
				}
			}
		}
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	for name, r := range tmpl.Resources {
		if r.Type != "AWS::KMS::Key" || !strings.HasPrefix(name, "RotatorMacKey") {
			continue
		}
		denied := map[string]bool{}
		for _, s := range r.Properties.KeyPolicy.Statement {
			if s.Effect != "Deny" {
				continue
			}
			switch a := s.Action.(type) {
			case string:
				denied[a] = true
			case []any:
				for _, x := range a {
					denied[x.(string)] = true
				}
			}
		}
		for _, a := range []string{"kms:PutKeyPolicy"} {
			if !denied[a] && !denied["kms:*"] {
				t.Errorf("%s: the key policy does not deny %s: anyone IAM lets call it can take GenerateMac (denied: %v)", name, a, slices.Sorted(func(yield func(string) bool) {
					for k := range denied {
						if !yield(k) {
							return
						}
					}
				}))
			}
		}
		return
	}
	t.Fatal("no HMAC key in the template")
}
