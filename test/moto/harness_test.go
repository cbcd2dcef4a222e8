// Package moto is a differential test of the sandbox's IAM, STS, Secrets
// Manager and KMS HMAC keys against moto (github.com/getmoto/moto), an AWS
// emulator nobody here wrote: the same request sequences go to both through aws-sdk-go-v2
// clients, and what they answer — error codes and HTTP status, stage maps,
// key status, which fields are present — must agree once ids, random ARN
// suffixes, accounts and times are normalised. Every difference is either a
// sandbox bug (fixed) or listed in knownDiffs with the AWS documentation that
// settles which side is right. The test skips, saying why, where python3 or
// moto's server mode is missing.
package moto

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

//go:embed testdata/motoserver.py
var motoServerPy string

// startMoto runs moto's server until the test ends and returns its URL, or
// skips the test saying what is missing.
func startMoto(t *testing.T) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("moto differential skipped: no python3 on PATH (%v); it needs moto 5.2 with its server extras (pip install 'moto[server]==5.2.1')", err)
	}
	// Not the test's context: the cleanup stops moto by closing its input
	// (and kills it only if that fails), after the test's context ends.
	cmd := exec.CommandContext(context.Background(), python, "-c", motoServerPy)
	// moto reads no credentials, but a developer's AWS_ or MOTO_ variables
	// (MOTO_ACCOUNT_ID, MOTO_ALLOW_NONEXISTENT_REGION…) would change its answers.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "MOTO_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("moto stdin: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("moto stdout: %v", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("moto differential skipped: cannot run python3: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close() // the launcher stops its server when its input ends
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		first <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(30 * time.Second):
		t.Fatalf("moto did not start in 30 s; stderr: %s", stderr.String())
	}
	var version string
	var port int
	if _, err := fmt.Sscanf(line, "moto %s port %d", &version, &port); err != nil {
		if strings.HasPrefix(line, "missing") {
			t.Skipf("moto differential skipped: python3 cannot start moto's server (%s); it needs moto 5.2 with its server extras (pip install 'moto[server]==5.2.1')", line)
		}
		t.Fatalf("moto launcher said %q (%v); stderr: %s", line, err, stderr.String())
	}
	if !strings.HasPrefix(version, "5.") {
		t.Skipf("moto differential skipped: moto %s found, the known differences below are moto 5.2's", version)
	}
	t.Logf("moto %s on port %d", version, port)
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// side is one implementation under test: its clients and the ids it made,
// each bound to a symbol that both sides share ("key1", "v7").
type side struct {
	name string
	iam  *iam.Client
	sm   *secretsmanager.Client
	kms  *kms.Client
	org  *organizations.Client
	as   func(id, secret string) aws.Config // a config with another key
	// asSession is a config with temporary credentials (an AssumeRole's).
	asSession func(id, secret, token string) aws.Config

	mu  sync.Mutex
	sym map[string]string // value → symbol
	val map[string]string // symbol → value
}

// bind records that this side's value stands for sym.
func (s *side) bind(sym, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sym[value] = sym
	s.val[sym] = value
}

// id is this side's value for sym, or sym itself if it stands for nothing
// (a name both sides share, or an id that exists on neither).
func (s *side) id(sym string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.val[sym]; ok {
		return v
	}
	return sym
}

func (s *side) symbol(v string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sym, ok := s.sym[v]
	return sym, ok
}

// noRetry: a refusal must reach the comparison as it was answered, not
// retried into something else.
func noRetry() aws.Retryer { return aws.NopRetryer{} }

// world is a sandbox and a moto server, both running until the test ends.
type world struct {
	sb   *sandboxtest.Sandbox
	moto string
}

func start(t *testing.T) *world {
	t.Helper()
	url := startMoto(t)
	// IAM reports a key's use at once here: moto has no reporting lag, and the
	// lag (iam.DefaultLag) is the sandbox's own tests' business.
	sb := sandboxtest.Start(t, fullsandbox.Options{IAMLag: fullsandbox.NoIAMLag})
	return &world{sb: sb, moto: url}
}

// pair makes a fresh sandbox side and moto side for one test, with symbol
// tables of their own.
func (w *world) pair(t *testing.T) *pair {
	t.Helper()
	region := w.sb.Server.Region()
	sbSession := func(id, secret, token string) aws.Config {
		cfg := w.sb.ConfigAs(t, id, secret, token)
		cfg.Retryer = noRetry
		return cfg
	}
	sbAs := func(id, secret string) aws.Config { return sbSession(id, secret, "") }
	motoSession := func(id, secret, token string) aws.Config {
		cfg, err := config.LoadDefaultConfig(context.Background(),
			config.WithRegion(region),
			config.WithBaseEndpoint(w.moto),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, token)),
			config.WithSharedConfigFiles([]string{}),
			config.WithSharedCredentialsFiles([]string{}),
			config.WithRetryer(noRetry),
		)
		if err != nil {
			t.Fatalf("moto config: %v", err)
		}
		return cfg
	}
	motoAs := func(id, secret string) aws.Config { return motoSession(id, secret, "") }
	mk := func(name string, cfg aws.Config, as func(id, secret string) aws.Config, asSession func(id, secret, token string) aws.Config) *side {
		return &side{name: name, iam: iam.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg), org: organizations.NewFromConfig(cfg), as: as, asSession: asSession,
			sym: map[string]string{}, val: map[string]string{}}
	}
	// moto takes any key; the sandbox checks SigV4 against its admin's.
	p := &pair{t: t, sides: [2]*side{
		mk("sandbox", sbAs(w.sb.Admin.AccessKeyID, w.sb.Admin.Secret), sbAs, sbSession),
		mk("moto", motoAs("AKIAMOTODIFFERENTIAL", "moto-accepts-any-secret"), motoAs, motoSession),
	}, seen: map[string]int{}}
	t.Cleanup(p.checkKnown)
	return p
}

// pair sends each step to both sides and compares the answers.
type pair struct {
	t     *testing.T
	sides [2]*side
	steps int
	seen  map[string]int // known differences met, by step
}

// answer is a side's answer to a step, normalised.
type answer struct {
	Err *apiError `json:"error,omitempty"`
	Out any       `json:"out,omitempty"`
}

type apiError struct {
	Code   string `json:"code"`
	Status int    `json:"status"`
}

// do runs step on both sides, compares what they answered and returns the
// two answers (sandbox first). A difference fails the test unless
// knownDiffs lists it for this step.
func (p *pair) do(step string, f func(s *side) (any, error)) [2]answer {
	p.t.Helper()
	p.steps++
	var got [2]answer
	for i, s := range p.sides {
		out, err := f(s)
		got[i] = s.answer(out, err)
	}
	p.forgive(step, &got)
	a, b := encode(got[0]), encode(got[1])
	if bytes.Equal(a, b) {
		return got
	}
	if k, ok := known(p.t.Name(), step); ok {
		p.seen[step]++
		if p.seen[step] == 1 {
			p.t.Logf("known difference at %q (%s: %s)\n\tsandbox: %s\n\tmoto:    %s", step, k.right, k.doc, a, b)
		}
		return got
	}
	p.t.Errorf("%s differs:\n\tsandbox: %s\n\tmoto:    %s", step, a, b)
	return got
}

// encode is an answer as JSON, <placeholders> left readable.
func encode(a answer) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(a)
	return bytes.TrimSpace(buf.Bytes())
}

// forgive takes out of both answers the differences knownFields and
// knownStatuses list, recording each one met, so the rest must still agree.
func (p *pair) forgive(step string, got *[2]answer) {
	for _, k := range knownStatuses {
		e0, e1 := got[0].Err, got[1].Err
		if e0 != nil && e1 != nil && e0.Code == k.code && e1.Code == k.code && e0.Status == k.aws && e1.Status == k.moto {
			e1.Status = k.aws
			p.seen["status "+k.code]++
		}
	}
	for _, k := range knownFields {
		if !slices.Contains(k.tests, p.t.Name()) || !strings.Contains(step, k.op) {
			continue
		}
		var found [2]map[string]any
		for i := range got {
			found[i] = map[string]any{}
			collect(got[i].Out, k, "", found[i])
			got[i].Out = strip(got[i].Out, k)
		}
		if a, b := mustJSON(found[0]), mustJSON(found[1]); a != b {
			p.seen[k.op+" "+k.field]++
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// drops says whether strip takes out field k's value x (or, with
// emptyEntries, the empty entries of x).
func drops(k knownField, name string, x any) bool {
	if name != k.field || k.emptyEntries {
		return false
	}
	l, isList := x.([]any)
	return !k.emptyOnly || isList && len(l) == 0
}

// emptyEntries splits an object into its entries holding an empty list and the rest.
func emptyEntries(x any) (empty, rest map[string]any, ok bool) {
	m, ok := x.(map[string]any)
	if !ok {
		return nil, nil, false
	}
	empty, rest = map[string]any{}, map[string]any{}
	for k, v := range m {
		if l, isList := v.([]any); isList && len(l) == 0 {
			empty[k] = v
		} else {
			rest[k] = v
		}
	}
	return empty, rest, true
}

// collect gathers, by path, every value strip would remove.
func collect(v any, k knownField, path string, out map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		for name, x := range v {
			empty, _, isObject := emptyEntries(x)
			switch {
			case drops(k, name, x):
				out[path+"."+name] = x
				continue
			case k.emptyEntries && name == k.field && isObject:
				for e, ev := range empty {
					out[path+"."+name+"."+e] = ev
				}
			}
			collect(x, k, path+"."+name, out)
		}
	case []any:
		for i, x := range v {
			collect(x, k, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// strip removes from every object in v what knownField k forgives.
func strip(v any, k knownField) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for name, x := range v {
			if drops(k, name, x) {
				continue
			}
			if _, rest, ok := emptyEntries(x); ok && k.emptyEntries && name == k.field {
				x = rest
			}
			out[name] = strip(x, k)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = strip(x, k)
		}
		return sortList(out)
	}
	return v
}

// sortList orders a list by its elements' JSON, since none of these APIs
// documents an order.
func sortList(l []any) []any {
	keys := make(map[int]string, len(l))
	idx := make([]int, len(l))
	for i, x := range l {
		idx[i] = i
		keys[i] = mustJSON(x)
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	out := make([]any, len(l))
	for i, j := range idx {
		out[i] = l[j]
	}
	return out
}

// answer normalises one side's output or error.
func (s *side) answer(out any, err error) answer {
	if err != nil {
		var ae smithy.APIError
		var re *awshttp.ResponseError
		e := &apiError{}
		if errors.As(err, &ae) {
			e.Code = ae.ErrorCode()
		}
		if errors.As(err, &re) {
			e.Status = re.HTTPStatusCode()
		}
		if e.Code == "" {
			e.Code = "not an API error: " + err.Error()
		}
		return answer{Err: e}
	}
	if out == nil {
		return answer{}
	}
	raw, merr := json.Marshal(out)
	if merr != nil {
		return answer{Out: "cannot encode: " + merr.Error()}
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return answer{Out: "cannot decode: " + err.Error()}
	}
	return answer{Out: s.normalise(v)}
}

var (
	account     = regexp.MustCompile(`^\d{12}$`)
	arnAccount  = regexp.MustCompile(`^(arn:aws:[a-z0-9-]+:[a-z0-9-]*:)\d{12}(:.*)$`)
	secretARN   = regexp.MustCompile(`^(arn:aws:secretsmanager:[^:]*:[^:]*:secret:.*)-[A-Za-z0-9]{6}$`)
	rfc3339Time = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
)

// normalise rewrites v (decoded JSON of an SDK output) so that what may
// differ between two correct implementations does not: each id a side made
// becomes its symbol, an ARN's account and a secret ARN's random suffix a
// placeholder, a time "<time>"; the SDK's ResultMetadata and absent (null)
// fields go, and lists are sorted, since none of these APIs documents an order.
func (s *side) normalise(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if k == "ResultMetadata" || x == nil {
				continue
			}
			if sym, ok := s.symbol(k); ok {
				k = "<" + sym + ">"
			}
			out[k] = s.normalise(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = s.normalise(x)
		}
		return sortList(out)
	case string:
		if sym, ok := s.symbol(v); ok {
			return "<" + sym + ">"
		}
		switch {
		case account.MatchString(v):
			return "<account>"
		case rfc3339Time.MatchString(v):
			return "<time>"
		}
		if m := arnAccount.FindStringSubmatch(v); m != nil {
			v = m[1] + "<account>" + m[2]
		}
		if m := secretARN.FindStringSubmatch(v); m != nil {
			v = m[1] + "-<suffix>"
		}
		return v
	}
	return v
}

// knownDiff is a difference between the sandbox and moto at one step that
// stays, with the AWS documentation that says which side is right.
type knownDiff struct {
	test  string // the test's name
	step  string // the step's name in that test
	right string // "sandbox is right" (moto differs from AWS), or silent
	why   string
	doc   string // the AWS page that settles it
}

// knownField is a field that differs in every answer of an operation (a
// field moto omits or fills where AWS does not): it is taken out of both
// answers before they are compared, so the rest must still agree.
type knownField struct {
	tests     []string
	op        string // steps whose name contains this
	field     string // a JSON field name, at any depth
	emptyOnly bool   // only where it is an empty list
	// emptyEntries: not the field, but the entries of the object it holds
	// whose value is an empty list.
	emptyEntries bool
	right        string
	why          string
	doc          string
}

// knownStatus is an error both sides name alike but answer with another
// HTTP status.
type knownStatus struct {
	code      string
	aws, moto int
	right     string
	doc       string
}

func known(test, step string) (knownDiff, bool) {
	for _, k := range knownDiffs {
		if k.test == test && k.step == step {
			return k, true
		}
	}
	return knownDiff{}, false
}

// checkKnown fails a test whose listed differences no longer occur, so the
// list cannot go stale, and logs those that did.
func (p *pair) checkKnown() {
	if p.t.Skipped() {
		return
	}
	stale := func(what string) {
		p.t.Errorf("known difference %s no longer occurs: remove it from the list", what)
	}
	for _, k := range knownDiffs {
		if k.test == p.t.Name() && p.seen[k.step] == 0 {
			stale(fmt.Sprintf("%q", k.step))
		}
	}
	for _, k := range knownFields {
		if !slices.Contains(k.tests, p.t.Name()) {
			continue
		}
		where := "answers to " + k.op
		if k.op == "" {
			where = "all answers"
		}
		if n := p.seen[k.op+" "+k.field]; n == 0 {
			stale(fmt.Sprintf("in the field %s of %s", k.field, where))
		} else {
			p.t.Logf("known difference in the field %s of %s, at %d steps (%s: %s)", k.field, where, n, k.right, k.doc)
		}
	}
	for _, k := range knownStatuses {
		if n := p.seen["status "+k.code]; n > 0 {
			p.t.Logf("known difference: moto answers %s with HTTP %d, AWS with %d, at %d steps (%s)", k.code, k.moto, k.aws, n, k.doc)
		}
	}
	p.t.Logf("%d steps compared", p.steps)
}

// ctx is the context of a step: the test's, so a hung side ends with it.
func ctx(t *testing.T) context.Context { return t.Context() }
