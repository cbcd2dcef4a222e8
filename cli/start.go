package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/keyrotator/keyrotator/cli/endpoint"
	"github.com/keyrotator/keyrotator/functions/rotation"
	"github.com/keyrotator/keyrotator/functions/rotation/inputschema"
)

// startOptions are start's flags.
type startOptions struct {
	input           string
	user            string
	targets         []string
	waitDays        int
	graceDays       int
	verifyAttempts  int
	approvalHours   int
	reason          string
	requestedBy     string
	requireApproval bool
	allowRemove     bool
	dryRun          bool
	wait            bool
	approvers       []string // issue 14
	minApprovals    int      // issue 14
	issue           bool     // Issuance: "issue": true
	account         string   // issue 15: a member account's user
}

func (a *app) startCmd() *cobra.Command {
	var o startOptions
	cmd := &cobra.Command{
		Use:   "start (--input FILE | --user USER --target SPEC…) [flags]",
		Short: "Start a rotation, validated against the input schema before anything is sent",
		Long: `Start a rotation of an IAM user's access key.

The input is a file (--input run.json, - for stdin), or built from --user and
one --target per place the key lives; the other flags set (or, with --input,
override) fields of the input. "requestedBy" is the caller's ARN unless the
input names one. The whole input is checked against the rotation input's
JSON Schema (functions/rotation/input.schema.json, the one Validate uses)
before anything is sent: a bad input is refused with the field named (exit 2).

--target takes comma-separated key=value pairs named as in the input JSON;
credentialIds (a list) repeats; a value starting with { is a JSON object:
  type=secret,name=app,secretId=app/aws-access-key[,keyIdField=…,secretField=…]
  type=auth0,name=prod,connection=keyrotator/connections/auth0-prod,sesRegion=ap-northeast-1
  type=soracom,name=funnel,connection=keyrotator/connections/soracom,credentialPrefix=aws-soracom-funnel[,strategy=inPlace]
  type=soracom,name=funk,connection=keyrotator/connections/soracom,credentialIds=cred-a,credentialIds=cred-b

--account names a member account's user (issue 15): the run reaches it
through that account's keyrotator-member role, and its record is
keyrotator/users/<account>/<user>.

The execution is named <user>-<yyyymmddThhmmssZ>-…, a member account's
<account>-<user>-…. --wait follows it as watch does and exits as watch does.`,
		Example: `  keyrotator start --input run.json --wait
  keyrotator start --user app --target type=secret,name=app,secretId=app/aws-access-key --dry-run --wait
  keyrotator start --user app --account 222233334444 --target type=secret,name=app,secretId=app/aws-access-key --dry-run --wait
  keyrotator start --user app --target type=secret,name=app,secretId=app/key --require-approval --approver arn:aws:iam::123456789012:role/security-* --reason "IAM.3: key 95 days old"`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.start(cmd.Context(), o, cmd.Flags().Changed)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.input, "input", "", "the execution input, a JSON file (- reads stdin)")
	f.StringVar(&o.user, "user", "", "the IAM user whose key to rotate")
	f.StringVar(&o.account, "account", "", "the user's AWS account (12 digits) when it is a member account's, reached through its keyrotator-member role (default: the stack's own)")
	f.StringArrayVar(&o.targets, "target", nil, "a place the key lives: type=…,name=…,… (repeat for each target)")
	f.IntVar(&o.waitDays, "wait-days", rotation.DefaultWaitDays, "days between the cut-over and checking the old key is unused")
	f.IntVar(&o.graceDays, "grace-days", rotation.DefaultGraceDays, "days the old key stays inactive before it is deleted")
	f.IntVar(&o.verifyAttempts, "verify-attempts", rotation.DefaultVerifyAttempts, "how often the old key is checked before the run fails")
	f.IntVar(&o.approvalHours, "approval-timeout-hours", rotation.DefaultApprovalHours, "with --require-approval: how long the request waits")
	f.StringVar(&o.reason, "reason", "", "why this rotation runs (shown to the approver and in every alert)")
	f.StringVar(&o.requestedBy, "requested-by", "", "who asks (default: the caller's ARN, from STS)")
	f.BoolVar(&o.requireApproval, "require-approval", false, "wait for keyrotator approve before a key is made (needs --approver)")
	f.StringArrayVar(&o.approvers, "approver", nil, "with --require-approval: an IAM user or role ARN, or a pattern (role/security-*), who may approve (repeat)")
	f.IntVar(&o.minApprovals, "min-approvals", rotation.DefaultMinApprovals, "with --require-approval: how many distinct approvers must approve")
	f.BoolVar(&o.allowRemove, "allow-remove-inactive-key", false, "make room by deleting an inactive second key")
	f.BoolVar(&o.dryRun, "dry-run", false, "end after the plan: every change it would make, none made")
	f.BoolVar(&o.wait, "wait", false, "follow the execution until it ends (as watch)")
	// Issuance: a flag, never decided from the key count (docs/cli.md).
	f.BoolVar(&o.issue, "issue", false, "issue a first key to a user with no active key (none, or one inactive), instead of rotating")
	return cmd
}

// startDoc is start's --json document.
type startDoc struct {
	ExecutionARN    string          `json:"executionArn"`
	Name            string          `json:"name"`
	StateMachineARN string          `json:"stateMachineArn"`
	StartDate       time.Time       `json:"startDate"`
	Input           json.RawMessage `json:"input"`
	Watch           *watchDoc       `json:"watch,omitempty"` // --wait: how it ended
}

func (a *app) start(ctx context.Context, o startOptions, changed func(string) bool) error {
	fields, source, err := buildInput(o, changed, os.Stdin)
	if err != nil {
		return err
	}
	// Validate what the person gave before any call at all: a bad file is
	// refused without credentials, and without starting anything.
	if _, err := parseInput(fields, source); err != nil {
		return err
	}
	// A run.json from describe-execution carries the old run's signed
	// request: never reused (it is for that run; requestrun signs anew).
	delete(fields, rotation.RequestField)
	c, err := a.clients(ctx)
	if err != nil {
		return err
	}
	machine, err := a.machine(ctx, c.sfn)
	if err != nil {
		return err
	}
	var doc startDoc
	if in, _ := parseInput(fields, source); in.RequireApproval && !in.DryRun {
		// A run that needs approval goes through the request endpoint,
		// which signs who AWS says the caller is: Validate refuses it
		// otherwise (RequestUnsigned).
		if changed("requested-by") {
			return usageErr("--requested-by", "a run that needs approval is signed as the caller AWS authenticates: it cannot name someone else")
		}
		delete(fields, "requestedBy")
		if doc, err = a.request(ctx, fields, in.User, machine); err != nil {
			return err
		}
	} else {
		if _, given := fields["requestedBy"]; !given {
			arn, err := callerARN(ctx, c.sts)
			if err != nil {
				return err
			}
			fields["requestedBy"] = arn
		}
		raw, _ := json.Marshal(fields)
		started, err := startExecution(ctx, c.sfn, machine, uniqueName(in.User, a.clock.Now(), rand.Reader), raw)
		if err != nil {
			return err
		}
		doc = startDoc{ExecutionARN: aws.ToString(started.ExecutionArn), Name: nameOf(aws.ToString(started.ExecutionArn)),
			StateMachineARN: machine, StartDate: aws.ToTime(started.StartDate), Input: raw}
	}
	in, err := parseInput(fields, source)
	if err != nil {
		return err
	}
	if !a.json {
		fmt.Fprintf(a.stdout, "started %s\n  %s\n", doc.Name, doc.ExecutionARN)
		if in.Issue { // Issuance
			fmt.Fprintf(a.stdout, "  an issue: a first key for %s, nothing retired\n", in.User)
		}
		switch {
		case in.DryRun:
			fmt.Fprintln(a.stdout, "  dry run: the plan lists every change; none is made")
		case in.RequireApproval:
			fmt.Fprintf(a.stdout, "  waits for approval: keyrotator approve %s (or reject)\n", doc.Name)
		}
		if !o.wait {
			fmt.Fprintf(a.stdout, "  follow it: keyrotator watch %s\n", doc.Name)
			return nil
		}
		fmt.Fprintln(a.stdout)
	}
	if !o.wait {
		writeJSON(a.stdout, doc)
		return nil
	}
	wd, err := a.follow(ctx, c.sfn, c.iam, doc.ExecutionARN)
	if wd != nil && a.json {
		doc.Watch = wd
		writeJSON(a.stdout, doc)
	}
	return err
}

// request starts a run through the request endpoint (requestrun's
// function URL), signed with the caller's own credentials.
func (a *app) request(ctx context.Context, fields map[string]any, user, machine string) (startDoc, error) {
	u, err := a.requestURL(ctx)
	if err != nil {
		return startDoc{}, err
	}
	ec, err := a.endpointClient(ctx)
	if err != nil {
		return startDoc{}, err
	}
	name := uniqueName(user, a.clock.Now(), rand.Reader)
	ans, err := ec.Post(ctx, u, map[string]any{"input": fields, "name": name})
	if err != nil {
		return startDoc{}, err
	}
	if ans.Status != http.StatusOK {
		return startDoc{}, endpointRefusal("start "+name, ans)
	}
	var started struct {
		ExecutionARN string `json:"executionArn"`
		Name         string `json:"name"`
		RequestedBy  string `json:"requestedBy"`
	}
	if err := json.Unmarshal(ans.Body, &started); err != nil || started.ExecutionARN == "" {
		return startDoc{}, fmt.Errorf("start %s: the request endpoint answered %d without an execution: %s", name, ans.Status, ans.Problem().Message)
	}
	fields["requestedBy"] = started.RequestedBy // as the endpoint signed it
	raw, _ := json.Marshal(fields)
	return startDoc{ExecutionARN: started.ExecutionARN, Name: started.Name, StateMachineARN: machine, StartDate: a.clock.Now(), Input: raw}, nil
}

// endpointRefusal is an endpoint's non-200 answer as the CLI's error: bad
// input is exit 2 naming the field, a refused caller or AWS failing exit 1.
func endpointRefusal(what string, ans endpoint.Answer) error {
	p := ans.Problem()
	switch ans.Status {
	case http.StatusBadRequest:
		return &exitError{code: ExitUsage, kind: "invalid input", field: p.Field, err: fmt.Errorf("%s: %s", what, p.Message)}
	case http.StatusForbidden:
		return &exitError{code: ExitError, kind: "refused", err: fmt.Errorf("%s: refused (%d): %s", what, ans.Status, p.Message)}
	}
	return fmt.Errorf("%s: the endpoint answered %d %s: %s", what, ans.Status, p.Error, p.Message)
}

// buildInput is the input as fields: the file's, or those the flags make;
// flags that were set override the file's. source names it in errors.
func buildInput(o startOptions, changed func(string) bool, stdin io.Reader) (map[string]any, string, error) {
	fields := map[string]any{}
	source := "flags"
	if o.input != "" {
		if o.user != "" || len(o.targets) > 0 {
			return nil, "", usageErr("--input", "give the input as a file or as --user and --target, not both")
		}
		var raw []byte
		var err error
		source = o.input
		if o.input == "-" {
			source = "stdin"
			raw, err = io.ReadAll(stdin)
		} else {
			raw, err = os.ReadFile(o.input)
		}
		if err != nil {
			return nil, "", usageErr("--input", "%v", err)
		}
		// The schema's words for what is wrong, field named, before anything else.
		if _, err := inputschema.Parse(raw); err != nil {
			return nil, "", invalidInput(source, err)
		}
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, "", invalidInput(source, &rotation.InvalidInput{Reason: "not a JSON object"})
		}
	} else {
		if o.user == "" {
			return nil, "", usageErr("--user", "required (or give the whole input with --input FILE)")
		}
		if len(o.targets) == 0 {
			return nil, "", usageErr("--target", "at least one is required, e.g. --target type=secret,name=app,secretId=app/aws-access-key")
		}
		fields["user"] = o.user
		targets := make([]any, 0, len(o.targets))
		for i, spec := range o.targets {
			t, err := ParseTarget(spec)
			if err != nil {
				return nil, "", usageErr(fmt.Sprintf("--target[%d]", i), "%v", err)
			}
			targets = append(targets, t)
		}
		fields["targets"] = targets
	}
	set := func(flag, field string, v any) {
		if changed(flag) {
			fields[field] = v
		}
	}
	set("wait-days", "waitDays", o.waitDays)
	set("grace-days", "graceDays", o.graceDays)
	set("verify-attempts", "verifyAttempts", o.verifyAttempts)
	set("approval-timeout-hours", "approvalTimeoutHours", o.approvalHours)
	set("reason", "reason", o.reason)
	set("requested-by", "requestedBy", o.requestedBy)
	set("require-approval", "requireApproval", o.requireApproval)
	set("approver", "approvers", o.approvers)
	set("min-approvals", "minApprovals", o.minApprovals)
	set("allow-remove-inactive-key", "allowRemoveInactiveKey", o.allowRemove)
	set("dry-run", "dryRun", o.dryRun)
	set("issue", "issue", o.issue)       // Issuance
	set("account", "account", o.account) // issue 15
	return fields, source, nil
}

// parseInput checks fields against the schema, as Validate will.
func parseInput(fields map[string]any, source string) (rotation.Input, error) {
	raw, err := json.Marshal(fields)
	if err != nil {
		return rotation.Input{}, fmt.Errorf("encode input: %w", err)
	}
	in, err := inputschema.Parse(raw)
	if err != nil {
		return rotation.Input{}, invalidInput(source, err)
	}
	return in, nil
}

func invalidInput(source string, err error) error {
	var bad *rotation.InvalidInput
	if !errors.As(err, &bad) {
		return err
	}
	return &exitError{code: ExitUsage, kind: "invalid input", field: bad.Field, err: fmt.Errorf("%s: %w", source, err)}
}

type callerAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opt ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// callerARN is who is calling: requestedBy, approvedBy.
func callerARN(ctx context.Context, c callerAPI) (string, error) {
	out, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts: who am I: %w", err)
	}
	return aws.ToString(out.Arn), nil
}

type startAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opt ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
}

func startExecution(ctx context.Context, c startAPI, machine, name string, input []byte) (*sfn.StartExecutionOutput, error) {
	out, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String(name), Input: aws.String(string(input))})
	if err != nil {
		if _, ok := errors.AsType[*types.ExecutionAlreadyExists](err); ok {
			return nil, fmt.Errorf("start execution %s of %s: an execution of that name already exists (the names carry a random suffix, so this is very unlikely): start again for a new name: %w", name, machine, err)
		}
		return nil, fmt.Errorf("start execution %s of %s: %w", name, machine, err)
	}
	return out, nil
}

// uniqueName is ExecutionName with a random suffix, so two starts for one
// user in the same second get two names (Step Functions refuses a name
// reused within 90 days); it keeps the 80-character limit and the allowed
// characters by shortening the user part.
func uniqueName(user string, at time.Time, rnd io.Reader) string {
	var b [4]byte
	_, _ = io.ReadFull(rnd, b[:]) // crypto/rand never fails
	suffix := "-" + hex.EncodeToString(b[:])
	name := ExecutionName(user, at)
	stamp := len("20060102T150405Z") + 1
	prefix := name[:len(name)-stamp]
	if max := 80 - stamp - len(suffix); len(prefix) > max {
		prefix = strings.TrimRight(prefix[:max], "-")
	}
	return prefix + name[len(name)-stamp:] + suffix
}
