package moto

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// walkSteps is how many random operations TestSecretsManagerStageWalk makes.
const walkSteps = 300

// TestSecretsManagerStageWalk is a random walk, with a fixed seed, over
// Secrets Manager's version and stage operations — PutSecretValue with and
// without a token and with each set of stages, retries of a token with the
// same and another value, UpdateSecretVersionStage with every combination of
// MoveToVersionId and RemoveFromVersionId (held, not held, missing),
// GetSecretValue by stage, by version, by both and by default,
// ListSecretVersionIds, and now and then a fresh secret — sent to both
// sides, with the stage map (DescribeSecret's VersionIdsToStages) compared
// after every step.
//
// The few moves after which moto's state parts from AWS's for good (moving a
// label without RemoveFromVersionId while another version holds it, onto
// the version that holds it, removing AWSCURRENT, a call naming no version)
// are not made here: TestSecretsManager makes each once, last, and lists
// it. The walk counts them as skipped.
func TestSecretsManagerStageWalk(t *testing.T) {
	t.Parallel()
	w := start(t)
	wk := &walk{p: w.pair(t), c: ctx(t), r: rand.New(rand.NewPCG(2026, 13)), classes: map[string]int{}}
	wk.newSecret()
	for i := range walkSteps {
		wk.step()
		if t.Failed() {
			// Once the sides disagree, every later step would too.
			t.Fatalf("the walk stops at step %d of %d: the sides disagree after\n\t%s", i+1, walkSteps, strings.Join(wk.trail[max(0, len(wk.trail)-4):], "\n\t"))
		}
	}
	var names []string
	for k := range wk.classes {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "\n\t%4d  %s", wk.classes[k], k)
	}
	t.Logf("%d random steps over %d secrets, by kind:%s", walkSteps, wk.secrets, b.String())
}

type walk struct {
	p       *pair
	c       context.Context
	r       *rand.Rand
	classes map[string]int // steps made (or skipped), by kind

	secrets  int
	secret   string
	versions []string            // symbols of the secret's versions, oldest first
	values   map[string]string   // symbol → the value written
	stages   map[string][]string // the agreed stage map: symbol → labels
	tokens   map[string]bool     // symbols that are tokens both sides were given
	next     int                 // the next version number
	trail    []string            // the steps made, for a failure's message
	// motoDefault is the version moto reads when GetSecretValue names
	// neither version nor stage, and demotes when PutSecretValue moves
	// AWSCURRENT: the last one written with AWSCURRENT, wherever
	// UpdateSecretVersionStage has since moved the label.
	motoDefault string
}

var walkLabels = []string{"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS", "blue", "green"}

// missing is a version id that exists on neither side.
const missing = "99999999-0000-4000-8000-000000000000"

// do runs a step of the walk, remembering it with its details (what each
// id stands for is the symbols') for the failure message.
func (wk *walk) do(class, detail string, f func(s *side) (any, error)) [2]answer {
	wk.classes[class]++
	wk.trail = append(wk.trail, fmt.Sprintf("%s on %s: %s", class, wk.secret, detail))
	return wk.p.do(class, f)
}

func (wk *walk) skip(class string) { wk.classes["skipped: "+class]++ }

// version makes a new version symbol; with a token, both sides get the
// same id.
func (wk *walk) version(withToken bool) (sym, tok string) {
	wk.next++
	sym = fmt.Sprintf("v%d", wk.next)
	if withToken {
		tok = fmt.Sprintf("%08d-0000-4000-8000-%012d", wk.secrets, wk.next)
		for _, s := range wk.p.sides {
			s.bind(sym, tok)
		}
		wk.tokens[sym] = true
	}
	return sym, tok
}

func (wk *walk) newSecret() {
	if wk.secret != "" {
		wk.do("DeleteSecret without recovery", "", func(s *side) (any, error) {
			return s.sm.DeleteSecret(wk.c, &sm.DeleteSecretInput{SecretId: aws.String(wk.secret), ForceDeleteWithoutRecovery: aws.Bool(true)})
		})
	}
	wk.secrets++
	wk.secret = fmt.Sprintf("walk/%d", wk.secrets)
	wk.versions, wk.values, wk.stages, wk.tokens = nil, map[string]string{}, map[string][]string{}, map[string]bool{}
	sym, tok := wk.version(wk.r.IntN(2) == 0)
	value := "value of " + sym
	wk.do("CreateSecret", fmt.Sprintf("version %s, token %t", sym, tok != ""), func(s *side) (any, error) {
		in := &sm.CreateSecretInput{Name: aws.String(wk.secret), SecretString: aws.String(value)}
		if tok != "" {
			in.ClientRequestToken = aws.String(tok)
		}
		out, err := s.sm.CreateSecret(wk.c, in)
		if err == nil && tok == "" {
			s.bind(sym, aws.ToString(out.VersionId))
		}
		return out, err
	})
	wk.versions = append(wk.versions, sym)
	wk.values[sym] = value
	wk.motoDefault = sym
	wk.describe()
}

// describe compares the stage map and takes it as the agreed one.
func (wk *walk) describe() {
	got := wk.p.do("DescribeSecret", func(s *side) (any, error) {
		return s.sm.DescribeSecret(wk.c, &sm.DescribeSecretInput{SecretId: aws.String(wk.secret)})
	})
	wk.stages = map[string][]string{}
	out, _ := got[0].Out.(map[string]any)
	m, _ := out["VersionIdsToStages"].(map[string]any)
	for k, v := range m {
		var labels []string
		for _, l := range v.([]any) {
			labels = append(labels, l.(string))
		}
		wk.stages[strings.Trim(k, "<>")] = labels
	}
}

// holder is the version holding label, or "".
func (wk *walk) holder(label string) string {
	for v, ls := range wk.stages {
		if slices.Contains(ls, label) {
			return v
		}
	}
	return ""
}

func (wk *walk) pick(xs []string) string { return xs[wk.r.IntN(len(xs))] }

func (wk *walk) step() {
	switch n := wk.r.IntN(100); {
	case n < 2:
		wk.newSecret()
		return
	case n < 27:
		wk.put()
	case n < 35:
		wk.retry()
	case n < 75:
		wk.moveStage()
	case n < 93:
		wk.get()
	default:
		wk.do("ListSecretVersionIds", "IncludeDeprecated", func(s *side) (any, error) {
			return s.sm.ListSecretVersionIds(wk.c, &sm.ListSecretVersionIdsInput{SecretId: aws.String(wk.secret), IncludeDeprecated: aws.Bool(true)})
		})
	}
	wk.describe()
}

var walkStageSets = [][]string{nil, {"AWSPENDING"}, {"AWSCURRENT"}, {"blue"}, {"AWSCURRENT", "AWSPENDING"}, {"AWSPREVIOUS"}, {"green", "AWSPENDING"}}

func (wk *walk) put() {
	withToken := wk.r.IntN(2) == 0
	stages := walkStageSets[wk.r.IntN(len(walkStageSets))]
	current := len(stages) == 0 || slices.Contains(stages, "AWSCURRENT")
	if current {
		// Where moto's PutSecretValue parts from AWS's for good
		// (TestSecretsManager makes each once and lists it).
		holder := wk.holder("AWSCURRENT")
		switch {
		case holder != wk.motoDefault:
			wk.skip("PutSecretValue to AWSCURRENT after UpdateSecretVersionStage moved it")
			return
		case len(wk.stages[holder]) > 1:
			wk.skip("PutSecretValue moving AWSCURRENT off a version with other labels")
			return
		}
		for _, l := range stages {
			if l != "AWSCURRENT" && wk.holder(l) != "" {
				wk.skip("PutSecretValue to AWSCURRENT and a label another version holds")
				return
			}
		}
	}
	sym, tok := wk.version(withToken)
	value := "value of " + sym
	class := fmt.Sprintf("PutSecretValue to %v", stages)
	if withToken {
		class += " with a token"
	}
	wk.do(class, "version "+sym, func(s *side) (any, error) {
		in := &sm.PutSecretValueInput{SecretId: aws.String(wk.secret), SecretString: aws.String(value), VersionStages: stages}
		if tok != "" {
			in.ClientRequestToken = aws.String(tok)
		}
		out, err := s.sm.PutSecretValue(wk.c, in)
		if err == nil && tok == "" {
			s.bind(sym, aws.ToString(out.VersionId))
		}
		return out, err
	})
	wk.versions = append(wk.versions, sym)
	wk.values[sym] = value
	if current {
		wk.motoDefault = sym
	}
}

// retry sends a token again: with its value (nothing happens) or another
// (refused).
func (wk *walk) retry() {
	var withToken []string
	for _, v := range wk.versions {
		if wk.tokens[v] {
			withToken = append(withToken, v)
		}
	}
	if len(withToken) == 0 {
		wk.skip("retry without a token to reuse")
		return
	}
	sym := wk.pick(withToken)
	if slices.Contains(wk.stages[sym], "AWSPENDING") {
		wk.skip("PutSecretValue retrying the token of an AWSPENDING version")
		return
	}
	value, class := wk.values[sym], "PutSecretValue retried with its token and value"
	if wk.r.IntN(2) == 0 {
		value, class = "another value", "PutSecretValue with a used token and another value"
	}
	wk.do(class, "version "+sym, func(s *side) (any, error) {
		return s.sm.PutSecretValue(wk.c, &sm.PutSecretValueInput{SecretId: aws.String(wk.secret), SecretString: aws.String(value), ClientRequestToken: aws.String(s.id(sym))})
	})
}

func (wk *walk) moveStage() {
	label := wk.pick(walkLabels)
	holder := wk.holder(label)
	// MoveToVersionId is mostly some version, RemoveFromVersionId mostly the
	// label's holder, so that most moves succeed; the rest probe refusals.
	choice := func(none, lost, held int) string {
		switch n := wk.r.IntN(100); {
		case n < none:
			return ""
		case n < none+lost:
			return missing
		case n < none+lost+held && holder != "":
			return holder
		default:
			return wk.pick(wk.versions)
		}
	}
	to, from := choice(20, 5, 0), choice(15, 5, 65)
	var class string
	switch {
	case to == "" && from == "":
		wk.skip("UpdateSecretVersionStage without a version")
		return
	case to == missing && from != "" && from == holder:
		wk.skip("UpdateSecretVersionStage to a missing version from the label's holder")
		return
	case to == missing:
		class = "UpdateSecretVersionStage to a missing version"
	case from == missing:
		class = "UpdateSecretVersionStage from a missing version"
	case from == "" && holder == "":
		class = "UpdateSecretVersionStage of an unattached label"
	case from == "" && holder == to:
		wk.skip("UpdateSecretVersionStage onto the version holding the label")
		return
	case from == "" && label == "AWSCURRENT":
		class = "UpdateSecretVersionStage AWSCURRENT without RemoveFromVersionId"
	case from == "":
		wk.skip("UpdateSecretVersionStage of a held label without RemoveFromVersionId")
		return
	case from != holder:
		class = "UpdateSecretVersionStage removing a label the version lacks"
	case to == "" && label == "AWSCURRENT":
		wk.skip("UpdateSecretVersionStage removing AWSCURRENT")
		return
	case to == "":
		class = "UpdateSecretVersionStage removing a label"
	case to == from && label == "AWSCURRENT":
		wk.skip("UpdateSecretVersionStage moving AWSCURRENT from and to its holder")
		return
	case to == from:
		class = "UpdateSecretVersionStage moving a label from and to its holder"
	default:
		class = "UpdateSecretVersionStage moving " + label
		if !strings.HasPrefix(label, "AWS") {
			class = "UpdateSecretVersionStage moving a custom label"
		}
	}
	wk.do(class, fmt.Sprintf("%s to %q from %q (held by %q)", label, to, from, holder), func(s *side) (any, error) {
		in := &sm.UpdateSecretVersionStageInput{SecretId: aws.String(wk.secret), VersionStage: aws.String(label)}
		if to != "" {
			in.MoveToVersionId = aws.String(s.id(to))
		}
		if from != "" {
			in.RemoveFromVersionId = aws.String(s.id(from))
		}
		return s.sm.UpdateSecretVersionStage(wk.c, in)
	})
}

func (wk *walk) get() {
	label, version := wk.pick(walkLabels), wk.pick(wk.versions)
	var class string
	in := func(s *side) *sm.GetSecretValueInput {
		return &sm.GetSecretValueInput{SecretId: aws.String(wk.secret)}
	}
	switch wk.r.IntN(4) {
	case 0:
		class = "GetSecretValue by default"
		if wk.holder("AWSCURRENT") != wk.motoDefault {
			class = "GetSecretValue by default after UpdateSecretVersionStage moved AWSCURRENT"
		}
	case 1:
		class = "GetSecretValue by VersionStage"
		in = func(*side) *sm.GetSecretValueInput {
			return &sm.GetSecretValueInput{SecretId: aws.String(wk.secret), VersionStage: aws.String(label)}
		}
	case 2:
		class = "GetSecretValue by VersionId"
		in = func(s *side) *sm.GetSecretValueInput {
			return &sm.GetSecretValueInput{SecretId: aws.String(wk.secret), VersionId: aws.String(s.id(version))}
		}
	default:
		class = "GetSecretValue by VersionId and its stage"
		if !slices.Contains(wk.stages[version], label) {
			class = "GetSecretValue by VersionId and a stage it lacks"
		}
		in = func(s *side) *sm.GetSecretValueInput {
			return &sm.GetSecretValueInput{SecretId: aws.String(wk.secret), VersionId: aws.String(s.id(version)), VersionStage: aws.String(label)}
		}
	}
	wk.do(class, fmt.Sprintf("stage %s, version %s", label, version), func(s *side) (any, error) { return s.sm.GetSecretValue(wk.c, in(s)) })
}
