package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/spf13/cobra"

	"github.com/keyrotator/keyrotator/cli/doctor"
)

func (a *app) doctorCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a deployed stack against its config: roles, alerts, connections, schedules",
		Long: `Check, read-only, that the deployed stack can do what its config asks:

  roles          each function role may make exactly the calls each rotation
                 will make (IAM's SimulatePrincipalPolicy, on that rotation's
                 user, record, secrets and connections)
  subscriptions  every subscription of the alert topic is confirmed
  alarms         each CloudWatch alarm may publish to the alert topic (its
                 topic policy and KMS key policy, with the alarm's ARN)
  connections    each connection secret is filled in and well formed (never
                 printed)
  auth0          each tenant answers the client credentials with
                 read:email_provider and update:email_provider, and its SES
                 provider holds an active key of the user ("unconfirmed" when
                 Auth0 does not show the key)
  soracom        the SAM user signs in, the target's credentials are found,
                 and the SIM groups that use them
  schedules      each rotation's schedule is enabled (as the config says),
                 with its next run

Each finding says what to do. The config is --config, else
keyrotator.config.json, else keyrotator.config.example.json; its "prefix"
is the stack's unless --prefix says otherwise.

Exit codes:
  0  every check passed ("unconfirmed" included)
  1  at least one finding: fix what it says
  2  no finding, but a check could not run (or bad usage)`,
		Example: `  keyrotator doctor --config keyrotator.config.json
  keyrotator doctor --json | jq '.findings[] | select(.status=="fail")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, path, err := loadDoctorConfig(configPath)
			if err != nil {
				return err
			}
			if a.prefix == "" && a.getenv(PrefixEnv) == "" && cfg.Prefix != "" {
				a.prefix = cfg.Prefix
			}
			cfg.Prefix = a.names().Prefix
			notChecked := func(err error) error {
				return &exitError{code: doctor.ExitNotChecked, kind: "not checked", err: err}
			}
			awsCfg, err := a.config(ctx)
			if err != nil {
				return notChecked(err)
			}
			c, err := a.clients(ctx)
			if err != nil {
				return notChecked(err)
			}
			machine, err := a.machine(ctx, c.sfn)
			if err != nil {
				return notChecked(err)
			}
			d := &doctor.Doctor{
				Machine: c.sfn, Functions: lambda.NewFromConfig(awsCfg), IAM: c.iam, Secrets: c.sm,
				Topic: sns.NewFromConfig(awsCfg), Keys: kms.NewFromConfig(awsCfg), Alarms: cloudwatch.NewFromConfig(awsCfg),
				Schedules: scheduler.NewFromConfig(awsCfg),
				HTTP:      &http.Client{Timeout: 30 * time.Second},
				Now:       a.clock.Now, StateMachineARN: machine, Config: cfg,
			}
			report := d.Run(ctx)
			report.Config = path
			if a.json {
				writeJSON(a.stdout, report)
			} else {
				report.Write(a.stdout)
			}
			if code := report.Code(); code != doctor.ExitGreen {
				return &exitError{code: code, kind: "doctor", err: fmt.Errorf("doctor: %d to fix, %d could not be checked", report.Summary.Failed, report.Summary.NotChecked), quiet: true}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the deployment config (default keyrotator.config.json, else keyrotator.config.example.json)")
	return cmd
}

// loadDoctorConfig reads path, or the first default config there is.
func loadDoctorConfig(path string) (doctor.Config, string, error) {
	candidates := []string{path}
	if path == "" {
		candidates = defaultConfigs
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) && path == "" {
			continue
		}
		c, err := doctor.LoadConfig(p)
		if err != nil {
			return doctor.Config{}, "", usageErr("--config", "%v", err)
		}
		return c, p, nil
	}
	return doctor.Config{}, "", usageErr("--config", "no config: name the deployment config (none of %v is here)", defaultConfigs)
}
