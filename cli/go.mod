module github.com/keyrotator/keyrotator/cli

go 1.26.8

require (
	github.com/aws/aws-sdk-go-v2 v1.40.0
	github.com/aws/aws-sdk-go-v2/config v1.32.0
	github.com/aws/aws-sdk-go-v2/credentials v1.19.0
	github.com/aws/aws-sdk-go-v2/service/cloudwatch v1.52.3
	github.com/aws/aws-sdk-go-v2/service/iam v1.50.0
	github.com/aws/aws-sdk-go-v2/service/kms v1.49.1
	github.com/aws/aws-sdk-go-v2/service/lambda v1.80.0
	github.com/aws/aws-sdk-go-v2/service/scheduler v1.17.14
	github.com/aws/aws-sdk-go-v2/service/secretsmanager v1.40.0
	github.com/aws/aws-sdk-go-v2/service/sfn v1.40.0
	github.com/aws/aws-sdk-go-v2/service/sns v1.39.0
	github.com/aws/aws-sdk-go-v2/service/sts v1.41.1
	github.com/aws/smithy-go v1.23.2
	github.com/spf13/cobra v1.10.1
)

require (
	github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream v1.7.2 // indirect
	github.com/aws/aws-sdk-go-v2/feature/ec2/imds v1.18.14 // indirect
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.4.14 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.7.14 // indirect
	github.com/aws/aws-sdk-go-v2/internal/ini v1.8.4 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/accept-encoding v1.13.3 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/presigned-url v1.13.14 // indirect
	github.com/aws/aws-sdk-go-v2/service/organizations v1.49.0 // indirect
	github.com/aws/aws-sdk-go-v2/service/signin v1.0.1 // indirect
	github.com/aws/aws-sdk-go-v2/service/sso v1.30.4 // indirect
	github.com/aws/aws-sdk-go-v2/service/ssooidc v1.35.8 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2 // indirect
	github.com/spf13/pflag v1.0.9
	golang.org/x/text v0.23.0 // indirect
)

// The CLI validates input with the same schema as the Validate Lambda
// (functions/rotation), and the report reads its contracts.
require github.com/keyrotator/keyrotator/functions v0.0.0

replace github.com/keyrotator/keyrotator/functions => ../functions

// doctor evaluates the alert topic's and key's policies for CloudWatch's
// service principal with the sandbox's evaluator (no IAM API simulates a
// service principal); only that pure package is linked.
require github.com/keyrotator/keyrotator/local v0.0.0

replace github.com/keyrotator/keyrotator/local => ../local

require github.com/keyrotator/keyrotator/iampolicy v0.0.0

replace github.com/keyrotator/keyrotator/iampolicy => ../iampolicy
