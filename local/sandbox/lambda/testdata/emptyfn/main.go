// Command emptyfn is the smallest aws-lambda-go function, the baseline of
// the cold-start benchmark.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, map[string]any) (string, error) { return "ok", nil })
}
