package stepfunctions

import (
	"encoding/json"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

// ResourceARNs implements sandbox.ResourceNamer: the resource types of
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html —
// a state machine's actions act on it, an execution's on the execution;
// the task-token callbacks and ListStateMachines support no resource.
func (s *Service) ResourceARNs(c *sandbox.Call) []string {
	var in struct{ Name, StateMachineArn, ExecutionArn string }
	_ = json.Unmarshal(c.Body, &in) // a bad body is refused by the action itself
	switch c.Action {
	case "CreateStateMachine":
		return []string{s.machineARN(in.Name)}
	case "DescribeStateMachine", "DeleteStateMachine", "StartExecution", "ListExecutions":
		return []string{in.StateMachineArn}
	case "DescribeExecution", "GetExecutionHistory", "StopExecution":
		return []string{in.ExecutionArn}
	}
	return []string{"*"}
}
