// Command urlfn is a test function behind a function URL: it reads its
// event with aws-lambda-go's own type for function URL requests (an
// implementation of the payload format independent of the sandbox's) and
// answers by path: /bare returns a bare JSON value (no statusCode),
// /fail fails, /binary a base64 body, anything else a 201 response whose
// body is the event as received.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, raw json.RawMessage) (any, error) {
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("not a function URL event: %w", err)
	}
	if ev.Version != "2.0" || ev.RequestContext.HTTP.Method == "" {
		return nil, errors.New("not a function URL event: no version 2.0 or no method")
	}
	switch ev.RawPath {
	case "/bare":
		return []string{"bare", ev.RequestContext.HTTP.Method}, nil
	case "/fail":
		return nil, errors.New("failed on purpose")
	case "/binary":
		return events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream"},
			Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}), IsBase64Encoded: true}, nil
	}
	return events.LambdaFunctionURLResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json", "X-Echo": "1"},
		Cookies: []string{"seen=1"}, Body: string(raw)}, nil
}

func main() { lambda.Start(handle) }
