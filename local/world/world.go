// Package world assembles the whole sandbox: every service on one server,
// the admin identity seeded. The command and the tests both start it here.
package world

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/auth0"
	"github.com/keyrotator/keyrotator/local/sandbox/cloudtrail"
	"github.com/keyrotator/keyrotator/local/sandbox/iam"
	"github.com/keyrotator/keyrotator/local/sandbox/iotdata"
	"github.com/keyrotator/keyrotator/local/sandbox/lambda"
	"github.com/keyrotator/keyrotator/local/sandbox/secretsmanager"
	"github.com/keyrotator/keyrotator/local/sandbox/ses"
	"github.com/keyrotator/keyrotator/local/sandbox/sns"
	"github.com/keyrotator/keyrotator/local/sandbox/soracom"
	"github.com/keyrotator/keyrotator/local/sandbox/stepfunctions"
	"github.com/keyrotator/keyrotator/local/sandbox/sts"
)

// Options configure the sandbox.
type Options struct {
	sandbox.Options
	// AdminUser is the seeded identity whose key the sandbox prints on start.
	AdminUser string
	// WaitScale shortens Step Functions Wait states and Retry pauses: a
	// 7-day wait lasts 7 days × WaitScale of real time, while the sandbox
	// clock moves the full 7 days.
	WaitScale float64
	// RetryScale shortens Retry pauses instead, if set (0: WaitScale): a
	// throttled Task's retries must outlast real Lambda work.
	RetryScale float64
	// CallbackScale shortens the timeout of callback Tasks (an approval
	// waiting for a person); 0: WaitScale, with stepfunctions' floor.
	CallbackScale float64
	// IAMLag is how long after a use of a key IAM's GetAccessKeyLastUsed
	// shows it, on the sandbox clock: 0 is iam.DefaultLag (IAM's documented
	// four hours); NoIAMLag shows every use at once.
	IAMLag time.Duration
	// LambdaConcurrency caps each deployed function's instances (reserved
	// concurrency): more overlapping calls get TooManyRequestsException.
	// 0 is lambda.DefaultMaxConcurrency.
	LambdaConcurrency int
	// NodeModules is the node_modules folder holding aws-local-stepfunctions;
	// Node is a Node.js ≥ 22 binary. Empty: found from the working directory.
	NodeModules string
	Node        string
}

// NoIAMLag as Options.IAMLag: IAM reports a use at once (tests about
// something other than the lag).
const NoIAMLag time.Duration = -1

// World is a running sandbox's services.
type World struct {
	Server *sandbox.Server
	IAM    *iam.Service
	Auth0  *auth0.Service // fake Auth0 tenants, each on its own port
	// Soracom is fake SORACOM operators, each on its own port; their groups
	// push data into the sandbox's AWS with the keys they hold.
	Soracom *soracom.Service
	Lambda  *lambda.Service
	Admin   sandbox.Credential
	// LambdaConcurrency is each function's cap that pipeline.Deploy sets.
	LambdaConcurrency int
}

// New builds every service on one server, restores --state if there is
// one, and seeds the admin identity.
func New(opts Options) (*World, error) {
	if opts.AdminUser == "" {
		opts.AdminUser = "sandbox-admin"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv := sandbox.New(opts.Options)
	lag := opts.IAMLag
	switch {
	case lag == 0:
		lag = iam.DefaultLag
	case lag < 0:
		lag = 0
	}
	w := &World{Server: srv, IAM: iam.New(srv, lag), LambdaConcurrency: opts.LambdaConcurrency}
	if w.LambdaConcurrency <= 0 {
		w.LambdaConcurrency = lambda.DefaultMaxConcurrency
	}
	srv.Register(w.IAM)
	srv.Register(sts.New())
	// more services: registered below, one line each
	srv.Register(secretsmanager.New(srv))
	srv.Register(cloudtrail.New(srv))
	srv.Register(sns.New(srv))
	srv.Register(ses.New(srv))
	srv.Register(iotdata.New(srv))
	w.Lambda = lambda.New(srv) // Lambda: the real bootstrap binaries as child processes
	srv.Register(w.Lambda)
	srv.Register(stepfunctions.New(srv, stepfunctions.Options{WaitScale: opts.WaitScale, RetryScale: opts.RetryScale, CallbackScale: opts.CallbackScale, NodeModules: opts.NodeModules, Node: opts.Node})) // after Lambda: closed first
	w.Auth0 = auth0.New(srv, 0)
	srv.Attach("auth0", w.Auth0) // not AWS: its own ports, the admin API and Close
	// SORACOM, attached like Auth0; its groups publish to iotdata and invoke
	// Lambda with the keys they hold.
	w.Soracom = soracom.New(srv, 0)
	srv.Attach("soracom", w.Soracom)
	if _, err := srv.LoadState(); err != nil {
		return nil, fmt.Errorf("load sandbox state: %w", err)
	}
	admin, err := w.IAM.SeedAdmin(opts.AdminUser)
	if err != nil {
		return nil, fmt.Errorf("seed admin: %w", err)
	}
	w.Admin = admin
	return w, nil
}

// Env is the environment a shell or an SDK needs to reach the sandbox as the admin.
func (w *World) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + w.Server.URL(),
		"AWS_REGION=" + w.Server.Region(),
		"AWS_DEFAULT_REGION=" + w.Server.Region(),
		"AWS_ACCESS_KEY_ID=" + w.Admin.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + w.Admin.Secret,
	}
}
