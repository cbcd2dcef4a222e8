package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// DefaultStateMachine is the name the CDK app and the sandbox give it
// under the default stack prefix; under another, it is the prefix.
const DefaultStateMachine = rotation.DefaultPrefix

// StateMachineEnv names the state machine when --state-machine does not.
const StateMachineEnv = "KEYROTATOR_STATE_MACHINE"

type listMachinesAPI interface {
	ListStateMachines(ctx context.Context, in *sfn.ListStateMachinesInput, opt ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error)
}

// resolveMachine is the state machine's ARN: flag, else environment, else
// the one the stack prefix names (keyrotator by default); a name (not an
// ARN) is looked up.
func resolveMachine(ctx context.Context, c listMachinesAPI, flag, env string, names rotation.Names) (string, error) {
	want := flag
	if want == "" {
		want = env
	}
	if want == "" {
		want = names.StateMachine()
	}
	if strings.HasPrefix(want, "arn:") {
		return want, nil
	}
	p := sfn.NewListStateMachinesPaginator(c, &sfn.ListStateMachinesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("find state machine %q: %w", want, err)
		}
		for _, m := range page.StateMachines {
			if aws.ToString(m.Name) == want {
				return aws.ToString(m.StateMachineArn), nil
			}
		}
	}
	return "", usageErr("--state-machine", "no state machine named %q in this account and region (give its ARN, or set %s)", want, StateMachineEnv)
}

// machine resolves the state machine for a command.
func (a *app) machine(ctx context.Context, c listMachinesAPI) (string, error) {
	return resolveMachine(ctx, c, a.stateMachine, a.getenv(StateMachineEnv), a.names())
}

// PrefixEnv names the stack prefix when --prefix does not (the CDK config's
// "prefix"; the functions read the same variable).
const PrefixEnv = rotation.PrefixEnv

// names are the fixed names of the stack the CLI drives: --prefix, else
// $KEYROTATOR_PREFIX, else keyrotator.
func (a *app) names() rotation.Names {
	if a.prefix != "" {
		return rotation.Names{Prefix: a.prefix}
	}
	return rotation.Names{Prefix: a.getenv(PrefixEnv)}
}

// executionARN is an execution's ARN from its ARN or its name (an
// execution of the state machine machineARN).
func executionARN(machineARN, execution string) (string, error) {
	if strings.HasPrefix(execution, "arn:") {
		if !strings.Contains(execution, ":execution:") {
			return "", usageErr("EXECUTION", "%q is not an execution ARN", execution)
		}
		return execution, nil
	}
	if !validExecName.MatchString(execution) {
		return "", usageErr("EXECUTION", "%q is neither an execution ARN nor an execution name", execution)
	}
	return strings.Replace(machineARN, ":stateMachine:", ":execution:", 1) + ":" + execution, nil
}

// nameOf is an execution ARN's last part, its name.
func nameOf(arn string) string { return arn[strings.LastIndex(arn, ":")+1:] }

var (
	validExecName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	notNameChar   = regexp.MustCompile(`[^A-Za-z0-9_-]+`)
)

// ExecutionName is the name start gives an execution: the user and the
// time, <user>-<yyyymmddThhmmssZ>, within Step Functions' rules (at most
// 80 of A-Za-z0-9-_): other characters of an IAM user name (+=,.@) become
// "-", and a long name is cut to fit.
func ExecutionName(user string, at time.Time) string {
	stamp := at.UTC().Format("20060102T150405Z")
	u := strings.Trim(notNameChar.ReplaceAllString(user, "-"), "-")
	if u == "" {
		u = "user"
	}
	if max := 80 - len(stamp) - 1; len(u) > max {
		u = strings.TrimRight(u[:max], "-")
	}
	return u + "-" + stamp
}
