// Command echofn is a test function for the sandbox's Lambda: it echoes its
// input and, when asked, fails with a named error, sleeps, calls STS from
// inside, touches a file, or exits.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Request says what the function should do.
type Request struct {
	Action  string          `json:"action"` // echo (default), error, sleep, whoami, touch, exit
	Value   json.RawMessage `json:"value,omitempty"`
	SleepMS int             `json:"sleepMs,omitempty"`
	Code    int             `json:"code,omitempty"` // exit status
	Path    string          `json:"path,omitempty"` // touch
	Log     string          `json:"log,omitempty"`  // a line to write first
}

// Response is what the function returns.
type Response struct {
	Echo      json.RawMessage   `json:"echo,omitempty"`
	PID       int               `json:"pid"`
	RequestID string            `json:"requestId"`
	ARN       string            `json:"arn,omitempty"`
	Caller    string            `json:"caller,omitempty"`
	Env       []string          `json:"env"` // variable names only
	Vars      map[string]string `json:"vars"`
}

// KeyLimitReached is a named error, as keyrotator's functions return.
type KeyLimitReached struct{ User string }

func (e *KeyLimitReached) Error() string { return "user " + e.User + " already has 2 access keys" }

func handle(ctx context.Context, req Request) (*Response, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	if req.Log != "" {
		fmt.Println(req.Log)
	}
	log.Printf("echofn: action=%q", req.Action)
	resp := &Response{Echo: req.Value, PID: os.Getpid(), Vars: map[string]string{}}
	if lc != nil {
		resp.RequestID, resp.ARN = lc.AwsRequestID, lc.InvokedFunctionArn
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		resp.Env = append(resp.Env, k)
		switch k {
		case "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION",
			"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "_HANDLER", "TZ", "AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_GROUP_NAME", "GREETING":
			resp.Vars[k] = v
		}
	}
	sort.Strings(resp.Env)
	switch req.Action {
	case "", "echo":
	case "error":
		return nil, &KeyLimitReached{User: "alice"}
	case "sleep":
		time.Sleep(time.Duration(req.SleepMS) * time.Millisecond)
	case "whoami":
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, err
		}
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return nil, err
		}
		resp.Caller = aws.ToString(id.Arn)
	case "touch":
		if err := os.WriteFile(req.Path, []byte(resp.RequestID), 0o600); err != nil {
			return nil, err
		}
	case "exit":
		os.Exit(req.Code)
	default:
		return nil, fmt.Errorf("unknown action %q", req.Action)
	}
	return resp, nil
}

func main() { lambda.Start(handle) }
