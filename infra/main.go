// Command infra is keyrotator's CDK app: `make synth` / `make deploy` run it
// (cdk.json's app). It reads the rotations config once and passes it down.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyrotator/keyrotator/infra/config"
)

func main() {
	if err := synthApp(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// synthApp builds the app from the rotations config and synthesizes it; the
// jsii runtime is closed on every path.
func synthApp() error {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	path := "keyrotator.config.json"
	if v, ok := app.Node().TryGetContext(jsii.String("configFile")).(string); ok && v != "" {
		path = v
	}
	if v := os.Getenv("KEYROTATOR_CONFIG"); v != "" { // make synth CONFIG=…
		path = v
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings { // the IAM.3 deadline a schedule makes only if all goes well
		fmt.Fprintln(os.Stderr, "keyrotator config warning:", w)
	}
	NewRotationStack(app, "KeyRotator", &RotationStackProps{
		StackProps: awscdk.StackProps{
			Description: jsii.String("keyrotator: rotates IAM access keys through every place they live"),
			// No Env: environment-agnostic. Every ARN the stack builds takes
			// partition, region and account from the deploy (pseudo
			// parameters), so one synthesized template deploys anywhere.
		},
		Config: cfg,
		Dist:   "dist",
		ASL:    "statemachine/rotation.asl.json",
	})
	// The member-account stack: deployed to member accounts with
	// CloudFormation StackSets (README, "Deploy: member accounts"), never
	// by `make deploy`, which deploys KeyRotator only.
	NewMemberStack(app, MemberStackName, &awscdk.StackProps{
		Description: jsii.String("keyrotator member account: the role keyrotator's tasks assume to rotate this account's IAM user keys"),
	})
	app.Synth(nil)
	return nil
}
