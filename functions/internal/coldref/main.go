// Command coldref is the cold-start reference `make bench` (test/coldstart)
// measures each task's Lambda against: a Go Lambda on the AWS SDK that
// loads the SDK's configuration the usual way (config.LoadDefaultConfig),
// makes four clients and calls lambda.Start, and nothing else. It is built
// with the tasks' flags and never deployed.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		slog.Error("load AWS config", "err", err)
		os.Exit(1)
	}
	i, s, f, n := iam.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg), sfn.NewFromConfig(cfg), sns.NewFromConfig(cfg)
	// One call of each client, as a handler would make (the benchmark never
	// invokes it): each client is linked as a Lambda that uses it links it.
	lambda.Start(func(ctx context.Context, in struct{ User, Secret, Execution, Topic string }) error {
		if _, err := i.GetUser(ctx, &iam.GetUserInput{UserName: &in.User}); err != nil {
			return err
		}
		if _, err := s.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &in.Secret}); err != nil {
			return err
		}
		if _, err := f.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: &in.Execution}); err != nil {
			return err
		}
		_, err := n.Publish(ctx, &sns.PublishInput{TopicArn: &in.Topic, Message: &in.User})
		return err
	})
}
