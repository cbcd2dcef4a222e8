// Package scheduler is the sandbox's EventBridge Scheduler: schedules
// (cron, rate and at expressions in a time zone, schedexpr) that the sandbox
// FIRES on its clock. When the clock passes a schedule's next time, the
// scheduler invokes the target as the schedule's execution role — a Step
// Functions state machine is started with the schedule's Input — retries a
// failed invocation per the RetryPolicy, and sends the event to the
// dead-letter queue when the retries are spent. A clock jump fires each
// schedule once, however many of its times it passed (EventBridge Scheduler
// invokes a target once per time, and the sandbox does not replay the
// times it jumped over). GetSchedule and ListSchedules answer over REST
// (signing name scheduler); schedules are made by CloudFormation
// (AWS::Scheduler::Schedule, provision.go).
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/scheduler/schedexpr"
)

// Schedule states.
const (
	Enabled  = "ENABLED"
	Disabled = "DISABLED"
)

// Defaults of a target's RetryPolicy.
// https://docs.aws.amazon.com/scheduler/latest/APIReference/API_RetryPolicy.html
const (
	DefaultMaximumRetryAttempts     = 185
	DefaultMaximumEventAgeInSeconds = 86400
)

// Service is the EventBridge Scheduler service.
type Service struct {
	srv *sandbox.Server

	mu sync.Mutex
	st state

	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once
}

type state struct {
	Schedules map[string]*Schedule `json:"schedules"` // by ARN
}

// Schedule is one schedule with what it has done.
type Schedule struct {
	Name                  string             `json:"name"`
	Group                 string             `json:"group"`
	ARN                   string             `json:"arn"`
	Region                string             `json:"region"`
	Description           string             `json:"description,omitempty"`
	Expression            string             `json:"expression"`
	Timezone              string             `json:"timezone,omitempty"`
	State                 string             `json:"state"`
	FlexibleTimeWindow    FlexibleTimeWindow `json:"flexibleTimeWindow"`
	Target                Target             `json:"target"`
	StartDate             *time.Time         `json:"startDate,omitempty"`
	EndDate               *time.Time         `json:"endDate,omitempty"`
	ActionAfterCompletion string             `json:"actionAfterCompletion,omitempty"`
	Created               time.Time          `json:"created"`
	Modified              time.Time          `json:"modified"`
	// Anchor is where a rate counts from: StartDate, or the creation.
	Anchor time.Time `json:"anchor"`
	// Next is when the schedule next comes due; nil when it never will.
	Next        *time.Time   `json:"next,omitempty"`
	Invocations []Invocation `json:"invocations,omitempty"`
}

// FlexibleTimeWindow is the schedule's window. The sandbox fires at the
// window's start: a FLEXIBLE schedule runs at its time, as if the random
// delay were zero.
type FlexibleTimeWindow struct {
	Mode                   string `json:"Mode"`
	MaximumWindowInMinutes *int   `json:"MaximumWindowInMinutes,omitempty"`
}

// Target is what the schedule invokes, and as whom.
type Target struct {
	Arn              string            `json:"Arn"`
	RoleArn          string            `json:"RoleArn"`
	Input            string            `json:"Input,omitempty"`
	RetryPolicy      *RetryPolicy      `json:"RetryPolicy,omitempty"`
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
}

// RetryPolicy says how often a failed invocation is tried again.
type RetryPolicy struct {
	MaximumEventAgeInSeconds *int `json:"MaximumEventAgeInSeconds,omitempty"`
	MaximumRetryAttempts     *int `json:"MaximumRetryAttempts,omitempty"`
}

// DeadLetterConfig names the SQS queue of events that could not be delivered.
type DeadLetterConfig struct {
	Arn string `json:"Arn,omitempty"`
}

// Invocation is one firing of a schedule.
type Invocation struct {
	Due       time.Time `json:"due"`       // the schedule time that came due
	At        time.Time `json:"at"`        // sandbox time it fired
	Passed    int       `json:"passed"`    // schedule times the clock had passed (a jump: more than 1; fired once)
	Principal string    `json:"principal"` // the assumed role's session ARN
	Attempts  int       `json:"attempts"`
	Result    string    `json:"result,omitempty"` // the execution ARN (or message id) the target answered
	Error     string    `json:"error,omitempty"`  // the last attempt's error
	// DeadLetter is the dead-letter queue's message id, or why sending there failed.
	DeadLetter      string `json:"deadLetter,omitempty"`
	DeadLetterError string `json:"deadLetterError,omitempty"`
}

// New returns a scheduler without schedules; its firing loop runs until Close.
func New(srv *sandbox.Server) *Service {
	s := &Service{srv: srv, st: state{Schedules: map[string]*Schedule{}},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.start()
	return s
}

// Info implements sandbox.Service.
func (s *Service) Info() sandbox.ServiceInfo {
	return sandbox.ServiceInfo{Name: "scheduler", Protocol: sandbox.RESTJSON, EventSource: "scheduler.amazonaws.com"}
}

// Close implements sandbox.Closer: the firing loop stops.
func (s *Service) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Snapshot implements sandbox.Snapshotter.
func (s *Service) Snapshot() (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.st)
}

// Restore implements sandbox.Snapshotter. A schedule whose next time passed
// while the sandbox was down fires once, as after a clock jump.
func (s *Service) Restore(raw json.RawMessage) error {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	if st.Schedules == nil {
		st.Schedules = map[string]*Schedule{}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	s.poke()
	return nil
}

// poke wakes the firing loop.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// CreateSchedule adds a schedule (group "default" when empty); it is first
// due at its expression's next time after now (a rate without a StartDate:
// at once).
func (s *Service) CreateSchedule(sc Schedule) (Schedule, error) {
	if sc.Group == "" {
		sc.Group = "default"
	}
	if sc.State == "" {
		sc.State = Enabled
	}
	if sc.State != Enabled && sc.State != Disabled {
		return Schedule{}, validation("State %q: want ENABLED or DISABLED", sc.State)
	}
	if sc.Target.Arn == "" || sc.Target.RoleArn == "" {
		return Schedule{}, validation("Target: Arn and RoleArn are required")
	}
	if a := sc.ActionAfterCompletion; a != "" && a != "NONE" && a != "DELETE" {
		return Schedule{}, validation("ActionAfterCompletion %q: want NONE or DELETE", a)
	}
	if sc.FlexibleTimeWindow.Mode != "OFF" && sc.FlexibleTimeWindow.Mode != "FLEXIBLE" {
		return Schedule{}, validation("FlexibleTimeWindow.Mode %q: want OFF or FLEXIBLE", sc.FlexibleTimeWindow.Mode)
	}
	expr, err := schedexpr.Parse(sc.Expression, sc.Timezone)
	if err != nil {
		return Schedule{}, validation("%v", err)
	}
	now := s.srv.Clock().Now()
	sc.ARN = fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/%s/%s", sc.Region, s.srv.Account(), sc.Group, sc.Name)
	sc.Created, sc.Modified, sc.Anchor = now, now, now
	if sc.StartDate != nil {
		sc.Anchor = *sc.StartDate
	}
	sc.Next = nextTime(&sc, expr, sc.Anchor.Add(-time.Nanosecond))
	sc.Invocations = nil
	s.mu.Lock()
	if _, ok := s.st.Schedules[sc.ARN]; ok {
		s.mu.Unlock()
		return Schedule{}, sandbox.Errorf(409, "ConflictException", "Schedule %s already exists.", sc.Name)
	}
	cp := sc
	s.st.Schedules[sc.ARN] = &cp
	s.mu.Unlock()
	s.srv.MarkDirty()
	s.poke()
	return sc, nil
}

// nextTime is the schedule's first time after after, within its dates.
func nextTime(sc *Schedule, expr *schedexpr.Expression, after time.Time) *time.Time {
	if sc.StartDate != nil && after.Before(*sc.StartDate) && !expr.IsRate() {
		after = sc.StartDate.Add(-time.Nanosecond)
	}
	t, ok := expr.Next(sc.Anchor, after)
	if !ok || (sc.EndDate != nil && t.After(*sc.EndDate)) {
		return nil
	}
	return &t
}

// SetState enables or disables a schedule (the console's switch; doctor's
// tests break a deploy with it). Enabling recomputes the next time from now.
func (s *Service) SetState(group, name, st string) error {
	if st != Enabled && st != Disabled {
		return validation("State %q", st)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, err := s.find(group, name)
	if err != nil {
		return err
	}
	if st == Enabled && sc.State == Disabled {
		expr, err := schedexpr.Parse(sc.Expression, sc.Timezone)
		if err != nil {
			return err
		}
		sc.Next = nextTime(sc, expr, s.srv.Clock().Now())
	}
	sc.State, sc.Modified = st, s.srv.Clock().Now()
	s.srv.MarkDirty()
	s.poke()
	return nil
}

// Schedules lists every schedule, by ARN, with its next time and invocations.
func (s *Service) Schedules() []Schedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Schedule{}
	for _, sc := range s.st.Schedules {
		out = append(out, sc.copy())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ARN < out[j].ARN })
	return out
}

// Get finds a schedule by group ("" is default) and name.
func (s *Service) Get(group, name string) (Schedule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, err := s.find(group, name)
	if err != nil {
		return Schedule{}, err
	}
	return sc.copy(), nil
}

func (sc *Schedule) copy() Schedule {
	cp := *sc
	cp.Invocations = append([]Invocation(nil), sc.Invocations...)
	return cp
}

// find is a schedule by group and name; callers hold s.mu.
func (s *Service) find(group, name string) (*Schedule, error) {
	if group == "" {
		group = "default"
	}
	for _, sc := range s.st.Schedules {
		if sc.Group == group && sc.Name == name {
			return sc, nil
		}
	}
	return nil, sandbox.Errorf(404, "ResourceNotFoundException", "Schedule %s does not exist.", name)
}

func validation(format string, args ...any) error {
	return sandbox.Errorf(400, "ValidationException", format, args...)
}

// Admin implements sandbox.Administered:
//
//	GET /schedules lists schedules with their next times and invocations.
func (s *Service) Admin() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /schedules", func(w http.ResponseWriter, r *http.Request) {
		sandbox.WriteJSON(w, http.StatusOK, s.Schedules())
	})
	return m
}

// start runs the firing loop: it wakes when a schedule comes due in real
// time, when the clock is moved (a jump), and when schedules change.
func (s *Service) start() {
	s.startOnce.Do(func() {
		moved, stopWatch := s.srv.Clock().Watch()
		go func() {
			defer close(s.done)
			defer stopWatch()
			for {
				s.fireDue(context.Background())
				timer := time.NewTimer(s.untilNext())
				select {
				case <-s.stop:
					timer.Stop()
					return
				case <-moved:
				case <-s.wake:
				case <-timer.C:
				}
				timer.Stop()
			}
		}()
	})
}

// untilNext is the real time until the earliest enabled schedule comes due
// (the clock runs at real speed between moves), at most a minute.
func (s *Service) untilNext() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.srv.Clock().Now()
	wait := time.Minute
	for _, sc := range s.st.Schedules {
		if sc.State == Enabled && sc.Next != nil {
			wait = min(wait, max(sc.Next.Sub(now), time.Millisecond))
		}
	}
	return wait
}

// due is a schedule that came due, taken off its time under the lock.
type due struct {
	arn    string
	at     time.Time
	passed int
	target Target
	region string
	name   string
	group  string
	// executionID is the firing's id (<aws.scheduler.execution-id>).
	executionID string
}

// fireDue fires every enabled schedule whose next time the clock has
// passed, once each, and moves it to its first time after now.
func (s *Service) fireDue(ctx context.Context) {
	now := s.srv.Clock().Now()
	var fire []due
	s.mu.Lock()
	for _, sc := range s.st.Schedules {
		if sc.State != Enabled || sc.Next == nil || sc.Next.After(now) {
			continue
		}
		expr, err := schedexpr.Parse(sc.Expression, sc.Timezone)
		if err != nil { // only a hand-edited state file gets here
			sc.Next = nil
			continue
		}
		d := due{arn: sc.ARN, at: *sc.Next, passed: 1, target: sc.Target, region: sc.Region, name: sc.Name, group: sc.Group,
			executionID: strings.ReplaceAll(sandbox.NewUUID(), "-", "")[:16]}
		for t := *sc.Next; d.passed < 1000; d.passed++ { // how many times the jump passed, for the record
			n := nextTime(sc, expr, t)
			if n == nil || n.After(now) {
				break
			}
			t = *n
		}
		sc.Next = nextTime(sc, expr, now)
		fire = append(fire, d)
	}
	s.mu.Unlock()
	sort.Slice(fire, func(i, j int) bool { return fire[i].arn < fire[j].arn })
	for _, d := range fire {
		inv := s.invoke(ctx, d)
		s.mu.Lock()
		if sc, ok := s.st.Schedules[d.arn]; ok {
			sc.Invocations = append(sc.Invocations, inv)
			if sc.Next == nil && sc.ActionAfterCompletion == "DELETE" {
				delete(s.st.Schedules, d.arn)
			}
		}
		s.mu.Unlock()
		s.srv.MarkDirty()
	}
}

// roleCredentials issues a role's session; the sandbox's IAM implements it.
type roleCredentials interface {
	IssueRoleCredentials(role, sessionName string) sandbox.Credential
	Credential(id string) (sandbox.Credential, bool)
}

// principal is the schedule's execution role, assumed by EventBridge
// Scheduler for this invocation (the role trusts scheduler.amazonaws.com).
// The session name is a fresh 32-hex id: the sandbox's guess at the form,
// not a documented one.
func (s *Service) principal(roleARN string) sandbox.Principal {
	role := roleARN
	if i := strings.LastIndex(roleARN, "/"); i >= 0 {
		role = roleARN[i+1:]
	}
	session := strings.ReplaceAll(sandbox.NewUUID(), "-", "")
	if svc, ok := s.srv.Service("iam"); ok {
		if rc, ok := svc.(roleCredentials); ok {
			c := rc.IssueRoleCredentials(role, session)
			if full, ok := rc.Credential(c.AccessKeyID); ok {
				return full.Principal
			}
		}
	}
	return sandbox.Principal{Account: s.srv.Account(), Type: "AssumedRole", UserName: session, UserID: "AROA:" + session,
		ARN: fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", s.srv.Account(), role, session)}
}

// invoke delivers one firing: the target, retried per the RetryPolicy,
// then the dead-letter queue.
func (s *Service) invoke(ctx context.Context, d due) Invocation {
	p := s.principal(d.target.RoleArn)
	inv := Invocation{Due: d.at, At: s.srv.Clock().Now(), Passed: d.passed, Principal: p.ARN}
	retries := DefaultMaximumRetryAttempts
	if rp := d.target.RetryPolicy; rp != nil && rp.MaximumRetryAttempts != nil {
		retries = *rp.MaximumRetryAttempts
	}
	var code, msg string
	for inv.Attempts = 1; ; inv.Attempts++ {
		t := d.target
		t.Input = d.attributes(inv.Attempts).Replace(t.Input)
		res, err := s.call(ctx, p, t)
		if err == nil {
			inv.Result, inv.Error = res, ""
			return inv
		}
		code, msg = errorParts(err)
		inv.Error = err.Error()
		// Retries come at once: the sandbox does not wait out Scheduler's
		// back-off, and MaximumEventAgeInSeconds never runs out before them.
		if inv.Attempts > retries {
			break
		}
	}
	if dl := d.target.DeadLetterConfig; dl != nil && dl.Arn != "" {
		id, err := s.deadLetter(ctx, p, d, inv, code, msg)
		if err != nil {
			inv.DeadLetterError = err.Error()
		} else {
			inv.DeadLetter = id
		}
	}
	return inv
}

func errorParts(err error) (code, msg string) {
	if e := (*sandbox.Error)(nil); errors.As(err, &e) {
		return e.Code, e.Message
	}
	return "InternalFailure", err.Error()
}

// call invokes the target once, as the role, through the sandbox's own
// services (their faults, call log and observers apply).
func (s *Service) call(ctx context.Context, p sandbox.Principal, t Target) (string, error) {
	parts := strings.SplitN(t.Arn, ":", 6)
	if len(parts) < 6 {
		return "", sandbox.Errorf(400, "ValidationException", "Target Arn %s is not an ARN", t.Arn)
	}
	input := t.Input
	switch parts[2] {
	case "states":
		if input == "" {
			input = "{}"
		}
		body, _ := json.Marshal(map[string]string{"stateMachineArn": t.Arn, "input": input})
		res, err := s.srv.Internal(ctx, "states", "StartExecution", "", p, body)
		if err != nil {
			return "", err
		}
		if m, ok := res.(map[string]any); ok {
			if arn, ok := m["executionArn"].(string); ok {
				return arn, nil
			}
		}
		return "", nil
	case "lambda":
		// Lambda's Invoke, asynchronously: the schedule has delivered the
		// event once Lambda accepts it (202), as EventBridge Scheduler
		// invokes functions
		// (https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html).
		if input == "" {
			input = "{}"
		}
		ctx = sandbox.WithInternalHeader(ctx, http.Header{"X-Amz-Invocation-Type": {"Event"}})
		if _, err := s.srv.Internal(ctx, "lambda", "Invoke", t.Arn, p, []byte(input)); err != nil {
			return "", err
		}
		return "", nil
	case "sqs":
		body, _ := json.Marshal(map[string]string{"QueueUrl": queueURL(t.Arn), "MessageBody": input})
		res, err := s.srv.Internal(ctx, "sqs", "SendMessage", "", p, body)
		if err != nil {
			return "", err
		}
		if m, ok := res.(map[string]string); ok {
			return m["MessageId"], nil
		}
		return "", nil
	}
	return "", sandbox.Errorf(400, "ValidationException", "the sandbox's scheduler cannot invoke a %s target", parts[2])
}

// attributes replaces the context attributes Scheduler fills in a target's
// input for attempt
// (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
func (d due) attributes(attempt int) *strings.Replacer {
	return strings.NewReplacer(
		"<aws.scheduler.schedule-arn>", d.arn,
		"<aws.scheduler.scheduled-time>", d.at.UTC().Format(time.RFC3339),
		"<aws.scheduler.execution-id>", d.executionID,
		"<aws.scheduler.attempt-number>", fmt.Sprint(attempt),
	)
}

// queueURL is the URL of the queue an SQS ARN names.
func queueURL(arn string) string {
	p := strings.Split(arn, ":")
	if len(p) != 6 {
		return arn
	}
	return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", p[3], p[4], p[5])
}

// deadLetter sends the undeliverable event to the dead-letter queue, as the
// execution role (the role needs sqs:SendMessage on the queue:
// https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html).
// The body is the target's input; the attributes say what failed.
func (s *Service) deadLetter(ctx context.Context, p sandbox.Principal, d due, inv Invocation, code, msg string) (string, error) {
	attr := func(v string) map[string]string { return map[string]string{"DataType": "String", "StringValue": v} }
	body := d.attributes(inv.Attempts).Replace(d.target.Input) // the event as it was sent
	if body == "" {
		body = "{}"
	}
	req := map[string]any{"QueueUrl": queueURL(d.target.DeadLetterConfig.Arn), "MessageBody": body,
		"MessageAttributes": map[string]any{
			"ERROR_CODE": attr(code), "ERROR_MESSAGE": attr(msg), "EXECUTION_ID": attr(d.executionID),
			"RETRY_ATTEMPTS": attr(fmt.Sprint(inv.Attempts - 1)), "SCHEDULE_ARN": attr(d.arn), "TARGET_ARN": attr(d.target.Arn),
		}}
	b, _ := json.Marshal(req)
	res, err := s.srv.Internal(ctx, "sqs", "SendMessage", "", p, b)
	if err != nil {
		return "", err
	}
	if m, ok := res.(map[string]string); ok {
		return m["MessageId"], nil
	}
	return "", nil
}

var (
	_ sandbox.Snapshotter  = (*Service)(nil)
	_ sandbox.Closer       = (*Service)(nil)
	_ sandbox.Administered = (*Service)(nil)
)
