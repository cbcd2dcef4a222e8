package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/spf13/cobra"

	"github.com/keyrotator/keyrotator/cli/schedule"
	"github.com/keyrotator/keyrotator/cli/watch"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

type statusOptions struct {
	user   string
	config string
	scan   int
}

func (a *app) statusCmd() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status [--user USER]",
		Short: "Each managed user's keys, targets, rotation in flight and next scheduled run",
		Long: `For each user keyrotator manages (a rotation record keyrotator/users/<user>,
or a rotation in the config file): its access keys (id, Active/Inactive, age,
last used: when, service, region), its targets and which key each holds (from
the newest execution that reached Distribute, usually the last that
succeeded), the rotation in flight if any (its state, since when, whether it
awaits approval), and when the next scheduled run is due (the config file's
cron or rate schedule, in its time zone).

The rotation record's secret value is never read: its stages come from
DescribeSecret. Executions are scanned newest first, at most --scan of them.`,
		Example: `  keyrotator status
  keyrotator status --user app-aws-user --json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if o.scan < 1 {
				return usageErr("--scan", "must be at least 1")
			}
			rots, path, err := loadRotations(o.config)
			if err != nil {
				return err
			}
			c, err := a.clients(ctx)
			if err != nil {
				return err
			}
			machine, err := a.machine(ctx, c.sfn)
			if err != nil {
				return err
			}
			s := statusReader{secrets: c.sm, iam: c.iam, sfn: c.sfn, machine: machine, names: a.names(), now: a.clock.Now, scan: o.scan}
			doc, err := s.read(ctx, o.user, rots)
			if err != nil {
				return err
			}
			doc.Config = path
			doc.Now = a.clock.Now()
			if a.json {
				writeJSON(a.stdout, doc)
				return nil
			}
			doc.write(a.stdout)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.user, "user", "", "only this IAM user")
	f.StringVar(&o.config, "config", "", "the rotations config, for schedules (default keyrotator.config.json, else keyrotator.config.example.json)")
	f.IntVar(&o.scan, "scan", 100, "read at most this many of the newest executions")
	return cmd
}

// statusDoc is status's --json document.
type statusDoc struct {
	StateMachineARN string       `json:"stateMachineArn"`
	Now             time.Time    `json:"now"`              // the server's clock: ages and "next" are from it
	Config          string       `json:"config,omitempty"` // the rotations file read for schedules
	Scanned         int          `json:"executionsScanned"`
	Users           []userStatus `json:"users"`
}

// userStatus is one user's part.
type userStatus struct {
	User string `json:"user"`
	// Account is the member account the user is in (issue 15); "" for
	// the stack's own.
	Account     string           `json:"account,omitempty"`
	IAMUser     bool             `json:"iamUserExists"`
	Record      *recordStatus    `json:"record"` // null: never rotated by keyrotator
	Keys        []keyStatus      `json:"keys"`
	Targets     []targetStatus   `json:"targets"`
	TargetsFrom *execRef         `json:"targetsFrom"` // the execution the receipts are from; null: none seen
	LastRun     *execRef         `json:"lastRun"`
	InFlight    *inFlight        `json:"inFlight"`
	Schedules   []scheduleStatus `json:"schedules"`

	targets []rotation.Receipt // the newest receipts seen
}

type recordStatus struct {
	Name           string `json:"name"`
	ARN            string `json:"arn"`
	CurrentVersion string `json:"currentVersion,omitempty"`
	PendingVersion string `json:"pendingVersion,omitempty"` // AWSPENDING: a rotation holds the lock (or a failed one left it)
}

type keyStatus struct {
	ID       string    `json:"accessKeyId"`
	Status   string    `json:"status"`
	Created  time.Time `json:"created"`
	AgeDays  int       `json:"ageDays"`
	LastUsed *lastUsed `json:"lastUsed"` // null: never used
}

type lastUsed struct {
	At      time.Time `json:"at"`
	Service string    `json:"service,omitempty"`
	Region  string    `json:"region,omitempty"`
}

type targetStatus struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Where     string `json:"where,omitempty"`
	KeyID     string `json:"keyId,omitempty"` // the key the target holds, as its receipt says; "" unknown
	KeyStatus string `json:"keyStatus"`       // Active, Inactive, deleted, unknown
}

type execRef struct {
	Execution string    `json:"execution"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Start     time.Time `json:"startDate"`
	Stop      time.Time `json:"stopDate,omitzero"`
	Issue     bool      `json:"issue,omitempty"` // Issuance: the run issued a first key
}

type inFlight struct {
	Execution        string    `json:"execution"`
	Name             string    `json:"name"`
	State            string    `json:"state"`
	Since            time.Time `json:"since"`
	AwaitingApproval bool      `json:"awaitingApproval"`
	Issue            bool      `json:"issue,omitempty"` // Issuance: the run issues a first key
}

type scheduleStatus struct {
	Rotation   string     `json:"rotation"`
	Expression string     `json:"expression"`
	TimeZone   string     `json:"timeZone"`
	Enabled    bool       `json:"enabled"`
	Next       *time.Time `json:"next"`            // null: not known (see note)
	Every      string     `json:"every,omitempty"` // rate schedules
	Note       string     `json:"note,omitempty"`  // disabled, unsupported syntax, no run seen yet
}

type recordsAPI interface {
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

type keysStatusAPI interface {
	GetUser(ctx context.Context, in *iam.GetUserInput, opt ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opt ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, opt ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
}

type executionsAPI interface {
	watch.HistoryAPI
	ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, opt ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
}

// statusReader gathers status from the three services.
type statusReader struct {
	secrets recordsAPI
	iam     keysStatusAPI
	sfn     executionsAPI
	machine string
	names   rotation.Names // the stack prefix's: where the records are
	now     func() time.Time
	scan    int
}

func (s statusReader) read(ctx context.Context, only string, rots rotationsFile) (*statusDoc, error) {
	records, err := s.records(ctx)
	if err != nil {
		return nil, err
	}
	var users []string
	if only != "" {
		users = []string{only}
	} else {
		for u := range records {
			users = append(users, u)
		}
		for _, r := range rots.Rotations {
			if r.Input.User != "" {
				users = append(users, r.key())
			}
		}
		slices.Sort(users)
		users = slices.Compact(users)
	}
	doc := &statusDoc{StateMachineARN: s.machine, Users: []userStatus{}}
	byUser := map[string]*userStatus{}
	for _, u := range users {
		us, err := s.user(ctx, u, records[u])
		if err != nil {
			return nil, err
		}
		if only != "" && !us.IAMUser && us.Record == nil && len(rots.forUser(u)) == 0 {
			return nil, usageErr("--user", "IAM user %q not found, and keyrotator has no record of it (%s)", u, s.names.Record(u))
		}
		doc.Users = append(doc.Users, us)
	}
	for i := range doc.Users {
		byUser[doc.Users[i].key()] = &doc.Users[i]
	}
	scheduled, scanned, err := s.executions(ctx, byUser)
	if err != nil {
		return nil, err
	}
	doc.Scanned = scanned
	for i := range doc.Users {
		us := &doc.Users[i]
		us.Targets = holdings(us, rots)
		us.Schedules = schedules(rots.forUser(us.key()), scheduled[us.key()], s.now())
	}
	return doc, nil
}

// records lists the rotation records by user key: <prefix>/users/<user>,
// and <prefix>/users/<account>/<user> for a member account's user (issue
// 15), keyed <account>/<user>.
func (s statusReader) records(ctx context.Context) (map[string]*recordStatus, error) {
	out := map[string]*recordStatus{}
	p := secretsmanager.NewListSecretsPaginator(s.secrets, &secretsmanager.ListSecretsInput{
		Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{s.names.RecordPrefix()}}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("secrets manager: list rotation records: %w", err)
		}
		for _, sec := range page.SecretList {
			name := aws.ToString(sec.Name)
			account, user, ok := s.names.UserOfRecord(name)
			if !ok {
				continue // the name filter is a prefix match, case-insensitive
			}
			out[rotation.UserKey(account, user)] = &recordStatus{Name: name, ARN: aws.ToString(sec.ARN)}
		}
	}
	return out, nil
}

func (s statusReader) user(ctx context.Context, key string, rec *recordStatus) (userStatus, error) {
	account, user, ok := rotation.SplitUserKey(key)
	if !ok {
		return userStatus{}, usageErr("--user", "%q: want an IAM user name, or <account>/<user> for a member account's user", key)
	}
	us := userStatus{User: user, Account: account, Keys: []keyStatus{}, Targets: []targetStatus{}, Schedules: []scheduleStatus{}}
	if rec == nil {
		// --user names one not listed: it may still have a record.
		d, err := s.secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.names.Record(key))})
		var missing *smtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &missing):
		case err != nil:
			return us, fmt.Errorf("secrets manager: describe %s: %w", s.names.Record(key), err)
		default:
			rec = &recordStatus{Name: aws.ToString(d.Name), ARN: aws.ToString(d.ARN)}
		}
	}
	if rec != nil {
		r := *rec
		// Stages only: the value (the secret access key) is never read.
		d, err := s.secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.ARN)})
		if err != nil {
			return us, fmt.Errorf("secrets manager: describe %s: %w", r.Name, err)
		}
		for v, stages := range d.VersionIdsToStages {
			if slices.Contains(stages, "AWSCURRENT") {
				r.CurrentVersion = v
			}
			if slices.Contains(stages, "AWSPENDING") {
				r.PendingVersion = v
			}
		}
		us.Record = &r
	}
	if account != "" {
		// A member account's user (issue 15): its keys are in that account,
		// which the operator's credentials here do not reach.
		return us, nil
	}
	_, err := s.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(user)})
	var noUser *iamtypes.NoSuchEntityException
	if errors.As(err, &noUser) {
		return us, nil
	}
	if err != nil {
		return us, fmt.Errorf("iam: get user %s: %w", user, err)
	}
	us.IAMUser = true
	keys, err := s.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		return us, fmt.Errorf("iam: list access keys of %s: %w", user, err)
	}
	now := s.now()
	for _, k := range keys.AccessKeyMetadata {
		ks := keyStatus{ID: aws.ToString(k.AccessKeyId), Status: string(k.Status), Created: aws.ToTime(k.CreateDate)}
		ks.AgeDays = ageDays(ks.Created, now)
		lu, err := s.iam.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: k.AccessKeyId})
		if err != nil {
			return us, fmt.Errorf("iam: last use of %s: %w", ks.ID, err)
		}
		if u := lu.AccessKeyLastUsed; u != nil && u.LastUsedDate != nil {
			ks.LastUsed = &lastUsed{At: aws.ToTime(u.LastUsedDate), Service: notNA(u.ServiceName), Region: notNA(u.Region)}
		}
		us.Keys = append(us.Keys, ks)
	}
	slices.SortFunc(us.Keys, func(a, b keyStatus) int { return a.Created.Compare(b.Created) })
	return us, nil
}

// notNA drops IAM's "N/A" for a key never used with a service.
func notNA(p *string) string {
	if v := aws.ToString(p); v != "N/A" {
		return v
	}
	return ""
}

// executions scans the newest executions (running ones first, all of
// them) for each user's last run, run in flight and newest receipts; it
// returns each user's newest scheduled start and how many it read.
func (s statusReader) executions(ctx context.Context, users map[string]*userStatus) (map[string]time.Time, int, error) {
	scheduled := map[string]time.Time{}
	seen := map[string]bool{}
	scanned := 0
	visit := func(item types.ExecutionListItem) error {
		arn := aws.ToString(item.ExecutionArn)
		if seen[arn] {
			return nil
		}
		seen[arn] = true
		scanned++
		d, err := s.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: item.ExecutionArn})
		if err != nil {
			return fmt.Errorf("states: describe %s: %w", arn, err)
		}
		var in struct {
			User    string `json:"user"`
			Account string `json:"account"`
			Trigger string `json:"trigger"`
			DryRun  bool   `json:"dryRun"`
			Issue   bool   `json:"issue"`
		}
		_ = json.Unmarshal([]byte(aws.ToString(d.Input)), &in)
		key := rotation.UserKey(in.Account, in.User)
		us := users[key]
		if us == nil {
			return nil
		}
		ref := &execRef{Execution: arn, Name: aws.ToString(d.Name), Status: string(d.Status), Start: aws.ToTime(d.StartDate), Stop: aws.ToTime(d.StopDate), Issue: in.Issue}
		if us.LastRun == nil || ref.Start.After(us.LastRun.Start) {
			us.LastRun = ref
		}
		if in.Trigger == "schedule" && ref.Start.After(scheduled[key]) {
			scheduled[key] = ref.Start
		}
		running := d.Status == types.ExecutionStatusRunning
		needReceipts := us.TargetsFrom == nil && !in.DryRun
		if !running && !needReceipts {
			return nil
		}
		var history []types.HistoryEvent
		if running || d.Status != types.ExecutionStatusSucceeded {
			if history, err = watch.History(ctx, s.sfn, arn); err != nil {
				return err
			}
		}
		if running && us.InFlight == nil {
			f := &inFlight{Execution: arn, Name: ref.Name, Since: ref.Start, Issue: in.Issue}
			for i := len(history) - 1; i >= 0; i-- {
				if e := history[i].StateEnteredEventDetails; e != nil {
					f.State, f.Since = aws.ToString(e.Name), aws.ToTime(history[i].Timestamp)
					break
				}
			}
			_, f.AwaitingApproval = PendingApproval(history)
			us.InFlight = f
		}
		if needReceipts {
			r := watch.NewReport(&watch.Ended{Execution: d, History: history}, nil)
			if len(r.Receipts) > 0 {
				us.TargetsFrom = ref
				us.targets = r.Receipts
			}
		}
		return nil
	}
	for _, filter := range []types.ExecutionStatus{types.ExecutionStatusRunning, ""} {
		p := sfn.NewListExecutionsPaginator(s.sfn, &sfn.ListExecutionsInput{StateMachineArn: aws.String(s.machine), StatusFilter: filter})
		for p.HasMorePages() && scanned < s.scan {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, scanned, fmt.Errorf("states: list executions of %s: %w", s.machine, err)
			}
			for _, item := range page.Executions {
				if scanned >= s.scan {
					break
				}
				if err := visit(item); err != nil {
					return nil, scanned, err
				}
			}
		}
	}
	return scheduled, scanned, nil
}

// holdings is which key each target holds: from the newest receipts, else
// the config's targets with the key unknown.
func holdings(us *userStatus, rots rotationsFile) []targetStatus {
	status := func(id string) string {
		if id == "" {
			return "unknown"
		}
		for _, k := range us.Keys {
			if k.ID == id {
				return k.Status
			}
		}
		return "deleted"
	}
	out := []targetStatus{}
	if len(us.targets) > 0 {
		for _, r := range us.targets {
			out = append(out, targetStatus{Name: r.Target, Type: r.Type, Where: r.Where, KeyID: r.NewKeyID, KeyStatus: status(r.NewKeyID)})
		}
		return out
	}
	seen := map[string]bool{} // two rotations of one user name the same targets
	for _, rot := range rots.forUser(us.User) {
		for _, raw := range rot.Input.Targets {
			var t rotation.Target
			if json.Unmarshal(raw, &t) == nil && !seen[t.Name] {
				seen[t.Name] = true
				out = append(out, targetStatus{Name: t.Name, Type: t.Type, KeyStatus: "unknown"})
			}
		}
	}
	return out
}

// schedules says when each of a user's rotations runs next.
func schedules(rots []scheduledRotation, lastScheduled, now time.Time) []scheduleStatus {
	out := []scheduleStatus{}
	for _, r := range rots {
		st := scheduleStatus{Rotation: r.Name, Expression: r.Schedule, TimeZone: r.TimeZone, Enabled: r.enabled()}
		if st.TimeZone == "" {
			st.TimeZone = "UTC"
		}
		sch, err := schedule.Parse(r.Schedule)
		loc, lerr := time.LoadLocation(st.TimeZone)
		switch {
		case !st.Enabled:
			st.Note = "disabled"
		case r.Schedule == "sweep": // issue 15
			st.Note = "started by the fleet sweep when due (its own schedule)"
		case errors.Is(err, schedule.ErrUnsupported):
			st.Note = "cannot tell: " + err.Error()
		case err != nil:
			st.Note = "invalid: " + err.Error()
		case lerr != nil:
			st.Note = fmt.Sprintf("unknown time zone %q", st.TimeZone)
		default:
			if sch.Rate() > 0 {
				st.Every = sch.Describe()
			}
			if next, ok := sch.Next(now, loc, lastScheduled); ok {
				n := next.In(loc)
				st.Next = &n
			} else if sch.Rate() > 0 {
				st.Note = "no scheduled run seen yet: " + st.Every + " from the schedule's start"
			} else {
				st.Note = "no run left in the schedule's years"
			}
		}
		out = append(out, st)
	}
	return out
}

// write prints status for people.
func (d *statusDoc) write(out io.Writer) {
	if len(d.Users) == 0 {
		fmt.Fprintln(out, "no managed users: no rotation record under keyrotator/users/ and no rotation in the config")
		return
	}
	for i, us := range d.Users {
		if i > 0 {
			fmt.Fprintln(out)
		}
		us.write(out, d.Now)
	}
}

// key is the user across accounts (rotation.UserKey).
func (us userStatus) key() string { return rotation.UserKey(us.Account, us.User) }

func (us userStatus) write(out io.Writer, now time.Time) {
	head := rotation.UserIn(us.Account, us.User)
	switch {
	case us.Record != nil:
		head += "  (record " + us.Record.Name + ")"
	default:
		head += "  (no rotation record yet)"
	}
	fmt.Fprintln(out, head)
	if us.Account != "" {
		fmt.Fprintln(out, "  keys: in member account "+us.Account+" (keyrotator audit, or aws iam list-access-keys --user-name "+us.User+" with that account's credentials)")
	} else if !us.IAMUser {
		fmt.Fprintln(out, "  IAM user not found")
	} else {
		fmt.Fprintln(out, "  keys:")
		tw := table(out)
		fmt.Fprintln(tw, "    ACCESS KEY\tSTATUS\tAGE\tLAST USED")
		for _, k := range us.Keys {
			used := "never"
			if u := k.LastUsed; u != nil {
				used = ago(u.At, now)
				if where := strings.Trim(u.Service+", "+u.Region, ", "); where != "" {
					used += " (" + where + ")"
				}
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", k.ID, k.Status, plural(float64(k.AgeDays), "day", 0), used)
		}
		if len(us.Keys) == 0 {
			fmt.Fprintln(tw, "    none\t\t\t")
		}
		tw.Flush()
	}
	if len(us.Targets) > 0 {
		if f := us.TargetsFrom; f != nil {
			fmt.Fprintf(out, "  targets (as of %s, %s):\n", f.Name, f.Status)
		} else {
			fmt.Fprintln(out, "  targets (from the config; no run seen):")
		}
		tw := table(out)
		fmt.Fprintln(tw, "    TARGET\tTYPE\tHOLDS\tWHERE")
		for _, t := range us.Targets {
			holds := t.KeyStatus
			if t.KeyID != "" {
				holds = t.KeyID + " (" + t.KeyStatus + ")"
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", t.Name, t.Type, holds, t.Where)
		}
		tw.Flush()
	}
	if f := us.InFlight; f != nil {
		fmt.Fprintf(out, "  in flight: %s%s in %s since %s (%s)\n", f.Name, issueMark(f.Issue), f.State, f.Since.Format(time.RFC3339), humanDuration(now.Sub(f.Since)))
		if f.AwaitingApproval {
			fmt.Fprintf(out, "    awaiting approval: keyrotator approve %s (or reject)\n", f.Name)
		}
	} else if r := us.Record; r != nil && r.PendingVersion != "" {
		fmt.Fprintf(out, "  lock: the record's AWSPENDING is held (version %s) with no run in flight: a run that did not finish; the next one takes it over\n", r.PendingVersion)
	}
	if r := us.LastRun; r != nil && (us.InFlight == nil || us.InFlight.Execution != r.Execution) {
		fmt.Fprintf(out, "  last run: %s%s %s (%s)\n", r.Name, issueMark(r.Issue), r.Status, ago(r.Start, now))
	}
	for _, s := range us.Schedules {
		line := "  next scheduled run: "
		switch {
		case s.Next != nil:
			line += fmt.Sprintf("%s (%s)", s.Next.Format("2006-01-02 15:04 MST"), ago(*s.Next, now))
		case s.Note != "":
			line += s.Note
		}
		fmt.Fprintf(out, "%s — %s: %s %s\n", line, s.Rotation, s.Expression, s.TimeZone)
	}
}

// issueMark says, after a run's name, that it issues a first key (Issuance).
func issueMark(issue bool) string {
	if issue {
		return " (an issue: a first key, nothing retired)"
	}
	return ""
}
