package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/spf13/cobra"

	"github.com/keyrotator/keyrotator/cli/watch"
)

func (a *app) watchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch EXECUTION",
		Short: "Follow an execution state by state, then print its report",
		Long: `Follow an execution (its ARN, or its name in the keyrotator state machine)
state by state: each state entered, left (with its duration on the
workflow's clock), failed or retried; Map iterations indented. A Wait shows
a progress bar against the server's clock (redrawn in place on a terminal);
the Approve state says how to approve. It ends with the run's report: keys
before and after, each target's receipt, the verification's evidence, and
one result line.

Exit 0 if the execution succeeded, 3 if it ended FAILED, TIMED_OUT or ABORTED.`,
		Example: `  keyrotator watch app-20260301T030000Z
  keyrotator watch arn:aws:states:us-east-1:111122223333:execution:keyrotator:app-20260301T030000Z --json`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.clients(ctx)
			if err != nil {
				return err
			}
			arn, err := a.resolveExecution(ctx, c.sfn, args[0])
			if err != nil {
				return err
			}
			wd, err := a.follow(ctx, c.sfn, c.iam, arn)
			if wd != nil && a.json {
				writeJSON(a.stdout, wd)
			}
			return err
		}),
	}
}

// resolveExecution is an execution's ARN from its ARN or name.
func (a *app) resolveExecution(ctx context.Context, c listMachinesAPI, execution string) (string, error) {
	if len(execution) > 4 && execution[:4] == "arn:" {
		return executionARN("", execution)
	}
	machine, err := a.machine(ctx, c)
	if err != nil {
		return "", err
	}
	return executionARN(machine, execution)
}

// watchDoc is watch's --json document (and start --wait's "watch").
type watchDoc struct {
	Execution string        `json:"execution"`
	Name      string        `json:"name"`
	Status    string        `json:"status"`
	Steps     []stepDoc     `json:"steps"`
	Report    *watch.Report `json:"report"`
	Result    string        `json:"result"` // the result line
}

// stepDoc is one step in --json.
type stepDoc struct {
	State      string    `json:"state"`
	Type       string    `json:"type,omitempty"`
	Event      string    `json:"event"` // entered, exited, failed, retrying
	At         time.Time `json:"at"`
	DurationMs int64     `json:"durationMs,omitempty"` // exited
	Detail     string    `json:"detail,omitempty"`     // failed, retrying: the error
	InMap      bool      `json:"inMap,omitempty"`
}

type listKeysAPI interface {
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opt ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
}

// follow watches arn to its end and prints the report; the error is the
// exit code: nil if the execution succeeded, exit 3 if not.
func (a *app) follow(ctx context.Context, h watch.HistoryAPI, k listKeysAPI, arn string) (*watchDoc, error) {
	v := &liveView{out: a.stdout, quiet: a.json, tty: !a.json && isTerminal(a.stdout), now: a.clock.Now, name: nameOf(arn)}
	ended, err := watch.Follower{API: h, Every: a.poll, OnStep: v.step, OnPoll: v.poll}.Follow(ctx, arn)
	v.clearBar()
	if err != nil {
		var gone *types.ExecutionDoesNotExist
		if errors.As(err, &gone) {
			return nil, usageErr("EXECUTION", "no execution %s", arn)
		}
		return nil, err
	}
	r := watch.NewReport(ended, nil)
	if r.User != "" {
		// The report without the keys is still the report: say why and go on.
		keys, err := watch.ListKeys(ctx, k, r.User)
		var noUser *iamtypes.NoSuchEntityException
		if err != nil && !errors.As(err, &noUser) {
			fmt.Fprintln(a.stderr, "keyrotator: keys after the run unknown:", err)
		}
		r = watch.NewReport(ended, keys)
	}
	doc := &watchDoc{Execution: arn, Name: nameOf(arn), Status: r.Status, Steps: v.steps, Report: &r, Result: r.Line()}
	if doc.Steps == nil {
		doc.Steps = []stepDoc{}
	}
	if !a.json {
		v.heading()
		r.Write(a.stdout)
		fmt.Fprintln(a.stdout, r.Line())
	}
	if ended.Execution.Status != types.ExecutionStatusSucceeded {
		return doc, &exitError{code: ExitRunFailed, kind: "run failed", err: errors.New(r.Line()), quiet: true}
	}
	return doc, nil
}

// waitFields says which plan field holds each Wait state's length.
var waitFields = map[string]string{"WaitForUse": "waitSeconds", "WaitGrace": "graceSeconds"}

// liveView prints steps as they come and a Wait's progress.
type liveView struct {
	out   io.Writer
	quiet bool // --json: collect, print nothing
	tty   bool // redraw the bar in place
	now   func() time.Time
	name  string // the execution, for the approve hint
	steps []stepDoc

	wait     *activeWait
	barShown bool
	started  bool // the heading is out
}

// heading names the execution once it is known to exist.
func (v *liveView) heading() {
	if !v.started && !v.quiet {
		v.started = true
		fmt.Fprintf(v.out, "watching %s\n", v.name)
	}
}

// activeWait is a Wait state in progress.
type activeWait struct {
	state      string
	start, end time.Time
}

func (v *liveView) step(s watch.Step) {
	v.steps = append(v.steps, stepDoc{State: s.State, Type: s.Type, Event: s.Event, At: s.At, DurationMs: s.Duration.Milliseconds(), Detail: s.Detail, InMap: s.Iter})
	if v.quiet {
		return
	}
	v.heading()
	v.clearBar()
	fmt.Fprintln(v.out, s)
	switch {
	case s.Event == watch.Entered && s.Type == "Wait":
		if secs, ok := waitSeconds(s.State, s.Input); ok {
			v.wait = &activeWait{state: s.State, start: s.At, end: s.At.Add(time.Duration(secs) * time.Second)}
			fmt.Fprintf(v.out, "    waiting %s, until %s\n", humanDuration(v.wait.end.Sub(v.wait.start)), v.wait.end.Format(time.RFC3339))
		}
	case s.Event == watch.Entered && s.State == "Approve":
		fmt.Fprintf(v.out, "    waiting for approval (keyrotator approve %s, or keyrotator reject %s)\n", v.name, v.name)
	case s.Event == watch.Exited && v.wait != nil && s.State == v.wait.state:
		v.wait = nil
	}
}

// poll redraws the Wait's bar on a terminal.
func (v *liveView) poll(*sfn.DescribeExecutionOutput) {
	if v.quiet || !v.tty || v.wait == nil {
		return
	}
	fmt.Fprint(v.out, "\r\033[K"+v.wait.progress(v.now()))
	v.barShown = true
}

func (v *liveView) clearBar() {
	if v.barShown {
		fmt.Fprint(v.out, "\r\033[K")
		v.barShown = false
	}
}

// progress is the bar line at now, on the server's clock.
func (w *activeWait) progress(now time.Time) string {
	total := w.end.Sub(w.start)
	done := min(max(now.Sub(w.start), 0), total)
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	return fmt.Sprintf("    %s %s of %s, %s left", bar(frac, 30), humanDuration(done), humanDuration(total), humanDuration(total-done))
}

// waitSeconds reads a Wait state's length from the plan in its input.
func waitSeconds(state, input string) (int, bool) {
	field, ok := waitFields[state]
	if !ok {
		return 0, false
	}
	var data struct {
		Plan map[string]json.RawMessage `json:"plan"`
	}
	if json.Unmarshal([]byte(input), &data) != nil {
		return 0, false
	}
	var secs int
	if json.Unmarshal(data.Plan[field], &secs) != nil {
		return 0, false
	}
	return secs, true
}
