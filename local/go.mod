module github.com/keyrotator/keyrotator/local

go 1.26.8

require (
	github.com/auth0/go-auth0 v1.49.0
	github.com/aws/aws-lambda-go v1.55.1
	github.com/aws/aws-sdk-go-v2 v1.40.0
	github.com/aws/aws-sdk-go-v2/config v1.32.0
	github.com/aws/aws-sdk-go-v2/credentials v1.19.0
	github.com/aws/aws-sdk-go-v2/service/cloudtrail v1.55.0
	github.com/aws/aws-sdk-go-v2/service/cloudwatch v1.52.3
	github.com/aws/aws-sdk-go-v2/service/iam v1.50.0
	github.com/aws/aws-sdk-go-v2/service/kms v1.49.1
	github.com/aws/aws-sdk-go-v2/service/lambda v1.80.0
	github.com/aws/aws-sdk-go-v2/service/scheduler v1.17.14
	github.com/aws/aws-sdk-go-v2/service/secretsmanager v1.40.0
	github.com/aws/aws-sdk-go-v2/service/ses v1.34.0
	github.com/aws/aws-sdk-go-v2/service/sfn v1.40.0
	github.com/aws/aws-sdk-go-v2/service/sns v1.39.0
	github.com/aws/aws-sdk-go-v2/service/sqs v1.42.17
	github.com/aws/aws-sdk-go-v2/service/sts v1.41.1
	github.com/aws/smithy-go v1.23.2
	github.com/awslabs/goformation/v7 v7.14.9
)

require (
	github.com/PuerkitoBio/rehttp v1.4.0 // indirect
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
	github.com/decred/dcrd/dcrec/secp256k1/v4 v4.4.0 // indirect
	github.com/goccy/go-json v0.10.5 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/lestrrat-go/blackmagic v1.0.3 // indirect
	github.com/lestrrat-go/httpcc v1.0.1 // indirect
	github.com/lestrrat-go/httprc v1.0.6 // indirect
	github.com/lestrrat-go/iter v1.0.2 // indirect
	github.com/lestrrat-go/jwx/v2 v2.1.6 // indirect
	github.com/lestrrat-go/option v1.0.1 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2 // indirect
	github.com/segmentio/asm v1.2.0 // indirect
	golang.org/x/crypto v0.36.0 // indirect
	golang.org/x/oauth2 v0.32.0 // indirect
	golang.org/x/sys v0.31.0 // indirect
	golang.org/x/text v0.23.0 // indirect
	golang.org/x/time v0.14.0
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

// The sandbox's deploy follows functions/tasks; the demo seeds with
// functions/targets/secret and follows its execution with the CLI's watch.
require (
	github.com/keyrotator/keyrotator/cli v0.0.0
	github.com/keyrotator/keyrotator/functions v0.0.0
)

replace (
	github.com/keyrotator/keyrotator/cli => ../cli
	github.com/keyrotator/keyrotator/functions => ../functions
)

require github.com/keyrotator/keyrotator/iampolicy v0.0.0

replace github.com/keyrotator/keyrotator/iampolicy => ../iampolicy
