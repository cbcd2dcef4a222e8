package executions

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/keyrotator/keyrotator/functions/aws/awserr"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// MachineEnv is the environment variable the CDK construct sets on the
// request endpoint: the state machine's ARN.
const MachineEnv = "STATE_MACHINE_ARN"

type startAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opt ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
}

// Starter starts executions of one state machine.
type Starter struct {
	api     startAPI
	machine string
}

// NewStarter starts executions of machine (its ARN).
func NewStarter(c startAPI, machine string) *Starter { return &Starter{api: c, machine: machine} }

// NameTaken is StartExecution refusing a name in use (or used within 90
// days) with another input.
type NameTaken struct{ Name string }

func (e *NameTaken) Error() string {
	return fmt.Sprintf("an execution named %s already exists: give another name, or none for a fresh one", e.Name)
}

// Start starts an execution named name with input and answers its ARN.
// https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
func (s *Starter) Start(ctx context.Context, name string, input []byte) (string, error) {
	if s.machine == "" {
		return "", errors.New("executions: no state machine configured (" + MachineEnv + ")")
	}
	out, err := s.api.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(s.machine), Name: aws.String(name), Input: aws.String(string(input))})
	if _, ok := errors.AsType[*types.ExecutionAlreadyExists](err); ok {
		return "", &NameTaken{Name: name}
	}
	if _, ok := errors.AsType[*types.InvalidExecutionInput](err); ok {
		return "", &rotation.InvalidInput{Field: "input", Reason: "Step Functions refused it as an execution input (InvalidExecutionInput)"}
	}
	if _, ok := errors.AsType[*types.InvalidName](err); ok {
		return "", &rotation.InvalidInput{Field: "name", Reason: "Step Functions refused it as an execution name (InvalidName)"}
	}
	if err != nil {
		return "", awserr.Classify("states StartExecution "+s.machine, err)
	}
	return aws.ToString(out.ExecutionArn), nil
}
