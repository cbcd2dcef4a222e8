package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/fleet"
	"github.com/keyrotator/keyrotator/functions/tasks"
)

// goldenTemplate is the golden config's fleet template (infra's
// testConfig): users under /fleet/ tagged keyrotator:rotation=app-fleet,
// each key in the secret fleet/<user>/aws-key, minKeyAgeDays 60.
const goldenTemplate = "app-fleet"

// seedFleetUser makes an IAM user under path, tagged for template (none
// if ""), with one key ageDays old, and the secret fleet/<user>/aws-key
// holding it (the template's target).
func (h *H) seedFleetUser(t testing.TB, name, path, template string, ageDays int) {
	t.Helper()
	h.seedFleetUserIn(t, "", name, path, template, ageDays)
}

// seedFleetUserIn is seedFleetUser in account ("": the stack's own), as
// its administrator: the user in its IAM, the secret in its Secrets
// Manager (a member account's user's target is the member's own secret).
func (h *H) seedFleetUserIn(t testing.TB, account, name, path, template string, ageDays int) {
	t.Helper()
	ctx := context.Background()
	cfg := h.adminConfig(t, account)
	c := iam.NewFromConfig(cfg)
	in := &iam.CreateUserInput{UserName: aws.String(name), Path: aws.String(path)}
	if template != "" {
		in.Tags = []iamtypes.Tag{{Key: aws.String(fleet.TagKey), Value: aws.String(template)}}
	}
	if _, err := c.CreateUser(ctx, in); err != nil {
		t.Fatalf("create fleet user %s: %v", name, err)
	}
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	h.sb.IAM.InAccount(account).Backdate(aws.ToString(k.AccessKey.AccessKeyId), h.sb.Server.Clock().Now().AddDate(0, 0, -ageDays))
	v, _ := json.Marshal(map[string]string{"accessKeyId": aws.ToString(k.AccessKey.AccessKeyId), "secretAccessKey": aws.ToString(k.AccessKey.SecretAccessKey)})
	if _, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("fleet/" + name + "/aws-key"), SecretString: aws.String(string(v))}); err != nil {
		t.Fatal(err)
	}
}

// adminConfig reaches the sandbox as account's administrator ("": the
// stack's own account's, the sandbox's admin).
func (h *H) adminConfig(t testing.TB, account string) aws.Config {
	t.Helper()
	c, ok := h.sb.AdminOf(account)
	if !ok {
		t.Fatalf("account %s: the sandbox does not hold it", account)
	}
	return h.sb.ConfigAs(t, c.AccessKeyID, c.Secret, c.SessionToken)
}

// setFleetWindow rewrites the deployed fleet config with a window of
// seconds (the golden's spreads its starts over 600 s): as a deploy with
// another windowSeconds would.
func (h *H) setFleetWindow(t testing.TB, seconds int) {
	t.Helper()
	h.editFleetConfig(t, func(m map[string]any) { m["windowSeconds"] = seconds })
}

// editFleetConfig rewrites the deployed fleet config (the secret
// keyrotator/fleet) as edit changes it: as a deploy with that config would.
func (h *H) editFleetConfig(t testing.TB, edit func(map[string]any)) {
	t.Helper()
	ctx := context.Background()
	cur, err := h.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("keyrotator/fleet")})
	if err != nil {
		t.Fatalf("the fleet config secret: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	if _, err := h.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("keyrotator/fleet"), SecretString: aws.String(string(b))}); err != nil {
		t.Fatal(err)
	}
}

// invokeSweep invokes the sweep as its schedule does, fired now by the
// sandbox clock, and answers its report (and the function error, if any).
func (h *H) invokeSweep(t testing.TB) (fleet.Report, string) {
	t.Helper()
	ev, _ := json.Marshal(fleet.Event{ScheduledTime: h.sb.Server.Clock().Now().UTC().Format(time.RFC3339)})
	out, err := lambda.NewFromConfig(h.sb.Config(t)).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(h.dep.Functions[tasks.Sweep.Function()]), Payload: ev})
	if err != nil {
		t.Fatalf("invoke the sweep: %v", err)
	}
	var r fleet.Report
	if out.FunctionError != nil {
		return r, string(out.Payload)
	}
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("the sweep answered %s: %v", out.Payload, err)
	}
	return r, ""
}

// sweptExecutions are the executions started since before, by name.
func (h *H) sweptExecutions(t testing.TB) []types.ExecutionListItem {
	t.Helper()
	var out []types.ExecutionListItem
	p := sfn.NewListExecutionsPaginator(h.sfn, &sfn.ListExecutionsInput{StateMachineArn: aws.String(h.dep.StateMachineARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Executions...)
	}
	return out
}

// The sweep starts exactly the due rotations of the fleet — users under
// the template's path, tagged for it, with a key past minKeyAgeDays — as
// runs signed "schedule sweep.<template>", each of which succeeds; it
// leaves a young key, a tag naming no template, an untagged user and a
// user outside the template's path (tagged all the same) alone.
func TestSweepStartsTheDueRotations(t *testing.T) {
	t.Parallel()
	h := Start(t)
	h.seedFleetUser(t, "fleet-a", "/fleet/", goldenTemplate, 95)
	h.seedFleetUser(t, "fleet-b", "/fleet/team/", goldenTemplate, 70)
	h.seedFleetUser(t, "fleet-young", "/fleet/", goldenTemplate, 10)
	h.seedFleetUser(t, "fleet-stranger", "/fleet/", "no-such-template", 95)
	h.seedFleetUser(t, "fleet-untagged", "/fleet/", "", 95)
	h.seedFleetUser(t, "outside-fleet", "/other/", goldenTemplate, 95) // the tag cannot widen the template's scope
	h.setFleetWindow(t, 1)
	rep, ferr := h.invokeSweep(t)
	if ferr != "" {
		t.Fatalf("the sweep failed: %s", ferr)
	}
	if rep.Candidates != 3 || rep.Due != 2 || rep.Started != 2 || rep.NotDue != 1 || rep.UnknownTemplate != 1 || len(rep.Failed) != 0 {
		t.Errorf("report %+v", rep)
	}
	execs := h.sweptExecutions(t)
	var users []string
	for _, e := range execs {
		r := h.Wait(aws.ToString(e.ExecutionArn))
		if r.Status != types.ExecutionStatusSucceeded {
			t.Errorf("%s: %s %s: %s", aws.ToString(e.Name), r.Status, r.Error, r.Cause)
		}
		d, err := h.sfn.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: e.ExecutionArn})
		if err != nil {
			t.Fatal(err)
		}
		var in struct {
			User    string `json:"user"`
			Request struct {
				RequestedBy string `json:"requestedBy"`
			} `json:"request"`
		}
		_ = json.Unmarshal([]byte(aws.ToString(d.Input)), &in)
		if in.Request.RequestedBy != "schedule sweep."+goldenTemplate {
			t.Errorf("%s: signed as %q", in.User, in.Request.RequestedBy)
		}
		users = append(users, in.User)
	}
	slices.Sort(users)
	if strings.Join(users, ",") != "fleet-a,fleet-b" {
		t.Fatalf("the sweep started rotations of %v, want fleet-a and fleet-b", users)
	}
	// Their keys rotated: the next sweep finds nothing due, starts nothing.
	rep, ferr = h.invokeSweep(t)
	if ferr != "" || rep.Due != 0 || rep.Started != 0 {
		t.Errorf("a second sweep: %s %+v", ferr, rep)
	}
}

// sweepGolden runs the golden config's sweep under the exact golden
// template (TestGoldenRotationsUnderIAMEnforcementUseEveryGrant): one due
// fleet user, one young one, the window shrunk; the swept rotation must
// succeed. It uses every grant of the sweep's role.
func (h *H) sweepGolden(t *testing.T) {
	t.Helper()
	h.seedFleetUser(t, "fleet-golden", "/fleet/", goldenTemplate, 95)
	h.seedFleetUser(t, "fleet-golden-young", "/fleet/", goldenTemplate, 5)
	h.setFleetWindow(t, 0)
	before := len(h.sweptExecutions(t))
	rep, ferr := h.invokeSweep(t)
	if ferr != "" || rep.Started != 1 {
		t.Fatalf("the golden sweep: %s %+v", ferr, rep)
	}
	execs := h.sweptExecutions(t)
	if len(execs) != before+1 {
		t.Fatalf("%d executions after the sweep, want %d", len(execs), before+1)
	}
	for _, e := range execs {
		if e.Status == types.ExecutionStatusRunning {
			if r := h.Wait(aws.ToString(e.ExecutionArn)); r.Status != types.ExecutionStatusSucceeded {
				t.Fatalf("the swept rotation: %s %s: %s (refused: %v)", r.Status, r.Error, r.Cause, h.deniedCalls())
			}
		}
	}
}
