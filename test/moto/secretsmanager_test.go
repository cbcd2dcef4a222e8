package moto

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// token is a ClientRequestToken (a version id) both sides are given: 32
// characters or more, as Secrets Manager requires.
func token(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// smOps are the Secrets Manager calls of a test, on one secret id.
type smOps struct {
	p *pair
	c context.Context
}

func (o smOps) create(step, name, tok string, value *string) {
	o.p.do(step, func(s *side) (any, error) {
		in := &sm.CreateSecretInput{Name: aws.String(name), SecretString: value}
		if tok != "" {
			in.ClientRequestToken = aws.String(tok)
		}
		out, err := s.sm.CreateSecret(o.c, in)
		if err == nil {
			s.bind(name+".arn", aws.ToString(out.ARN))
			if tok == "" && out.VersionId != nil {
				s.bind(name+".v0", aws.ToString(out.VersionId))
			}
		}
		return out, err
	})
}

// put is PutSecretValue; sym names the version it makes when no token is given.
func (o smOps) put(step, id, tok, sym, value string, stages ...string) {
	o.p.do(step, func(s *side) (any, error) {
		in := &sm.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value), VersionStages: stages}
		if tok != "" {
			in.ClientRequestToken = aws.String(tok)
		}
		out, err := s.sm.PutSecretValue(o.c, in)
		if err == nil && tok == "" && sym != "" {
			s.bind(sym, aws.ToString(out.VersionId))
		}
		return out, err
	})
}

func (o smOps) get(step, id, version, stage string) {
	o.p.do(step, func(s *side) (any, error) {
		in := &sm.GetSecretValueInput{SecretId: aws.String(id)}
		if version != "" {
			in.VersionId = aws.String(s.id(version))
		}
		if stage != "" {
			in.VersionStage = aws.String(stage)
		}
		return s.sm.GetSecretValue(o.c, in)
	})
}

func (o smOps) stage(step, id, stage, moveTo, removeFrom string) {
	o.p.do(step, func(s *side) (any, error) {
		in := &sm.UpdateSecretVersionStageInput{SecretId: aws.String(id), VersionStage: aws.String(stage)}
		if moveTo != "" {
			in.MoveToVersionId = aws.String(s.id(moveTo))
		}
		if removeFrom != "" {
			in.RemoveFromVersionId = aws.String(s.id(removeFrom))
		}
		return s.sm.UpdateSecretVersionStage(o.c, in)
	})
}

func (o smOps) describe(step, id string) {
	o.p.do(step, func(s *side) (any, error) {
		return s.sm.DescribeSecret(o.c, &sm.DescribeSecretInput{SecretId: aws.String(id)})
	})
}

func (o smOps) versions(step, id string, deprecated bool) {
	o.p.do(step, func(s *side) (any, error) {
		return s.sm.ListSecretVersionIds(o.c, &sm.ListSecretVersionIdsInput{SecretId: aws.String(id), IncludeDeprecated: aws.Bool(deprecated)})
	})
}

func (o smOps) delete(step, id string, days int64, force bool) {
	o.p.do(step, func(s *side) (any, error) {
		in := &sm.DeleteSecretInput{SecretId: aws.String(id)}
		if days > 0 {
			in.RecoveryWindowInDays = aws.Int64(days)
		}
		if force {
			in.ForceDeleteWithoutRecovery = aws.Bool(true)
		}
		return s.sm.DeleteSecret(o.c, in)
	})
}

// TestSecretsManager: a secret's versions, tokens and stages, reads by
// stage and by version, and deletion, on both sides.
func TestSecretsManager(t *testing.T) {
	t.Parallel()
	w := start(t)
	p := w.pair(t)
	for _, s := range p.sides {
		for i := range 40 {
			s.bind(fmt.Sprintf("t%d", i), token(i))
		}
	}
	o := smOps{p: p, c: ctx(t)}
	const name = "app/creds"

	// Creation, idempotent with its token; the name taken.
	o.create("CreateSecret with a token", name, token(0), aws.String("v0"))
	o.create("CreateSecret retried with its token and value", name, token(0), aws.String("v0"))
	o.create("CreateSecret retried with its token and another value", name, token(0), aws.String("other"))
	o.create("CreateSecret of an existing name", name, "", aws.String("v0"))
	o.create("CreateSecret with an invalid name", "bad name", "", aws.String("v"))
	o.p.do("CreateSecret with a string and a binary", func(s *side) (any, error) {
		return s.sm.CreateSecret(o.c, &sm.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("s"), SecretBinary: []byte("b")})
	})
	o.describe("DescribeSecret after CreateSecret", name)
	// A SecretId may be the ARN, or the ARN without its random suffix.
	o.p.do("DescribeSecret by ARN", func(s *side) (any, error) {
		return s.sm.DescribeSecret(o.c, &sm.DescribeSecretInput{SecretId: aws.String(s.id(name + ".arn"))})
	})
	o.p.do("GetSecretValue by partial ARN", func(s *side) (any, error) {
		arn := s.id(name + ".arn")
		return s.sm.GetSecretValue(o.c, &sm.GetSecretValueInput{SecretId: aws.String(arn[:len(arn)-7])})
	})

	// PutSecretValue: without a token, with one (retried, reused with another value).
	o.put("PutSecretValue without a token", name, "", "v1", "v1")
	o.describe("DescribeSecret after PutSecretValue", name)
	o.put("PutSecretValue with a token", name, token(2), "", "v2")
	o.put("PutSecretValue retried with its token and value", name, token(2), "", "v2")
	o.put("PutSecretValue with a used token and another value", name, token(2), "", "changed")
	o.put("PutSecretValue to AWSPENDING", name, token(3), "", "v3", "AWSPENDING")
	o.describe("DescribeSecret with AWSPENDING", name)
	o.versions("ListSecretVersionIds", name, false)
	o.versions("ListSecretVersionIds with deprecated", name, true)

	// Reads by stage, by version, both, and the misses.
	o.get("GetSecretValue AWSCURRENT by default", name, "", "")
	o.get("GetSecretValue AWSPREVIOUS", name, "", "AWSPREVIOUS")
	o.get("GetSecretValue AWSPENDING", name, "", "AWSPENDING")
	o.get("GetSecretValue by VersionId", name, "t3", "")
	o.get("GetSecretValue by VersionId and its stage", name, "t3", "AWSPENDING")
	o.get("GetSecretValue by VersionId and a stage it lacks", name, "t3", "AWSCURRENT")
	o.get("GetSecretValue of a deprecated version", name, "t0", "")
	o.get("GetSecretValue of a missing version", name, "t9", "")
	o.get("GetSecretValue of a missing stage", name, "", "NOSUCHSTAGE")

	// Stage moves and the refusals when the stage is not where the call says.
	o.stage("UpdateSecretVersionStage AWSCURRENT without RemoveFromVersionId", name, "AWSCURRENT", "t3", "")
	o.stage("UpdateSecretVersionStage removing a stage the version lacks", name, "AWSCURRENT", "t3", "v1")
	o.stage("UpdateSecretVersionStage without a version", name, "AWSPENDING", "", "")
	o.stage("UpdateSecretVersionStage AWSCURRENT to AWSPENDING's version", name, "AWSCURRENT", "t3", "t2")
	o.describe("DescribeSecret after promoting", name)
	o.stage("UpdateSecretVersionStage removing AWSPENDING", name, "AWSPENDING", "", "t3")
	o.describe("DescribeSecret after removing AWSPENDING", name)
	o.stage("UpdateSecretVersionStage to a missing version", name, "AWSPENDING", "t9", "")
	o.stage("UpdateSecretVersionStage from a missing version", name, "AWSPENDING", "", "t9")
	o.stage("UpdateSecretVersionStage a custom label", name, "blue", "t0", "")
	o.versions("ListSecretVersionIds after the moves", name, true)

	// Secrets that are not there.
	const ghost = "app/ghost"
	o.describe("DescribeSecret of a missing secret", ghost)
	o.get("GetSecretValue of a missing secret", ghost, "", "")
	o.put("PutSecretValue of a missing secret", ghost, "", "", "x")
	o.stage("UpdateSecretVersionStage of a missing secret", ghost, "AWSCURRENT", "t0", "")
	o.versions("ListSecretVersionIds of a missing secret", ghost, false)
	o.delete("DeleteSecret of a missing secret", ghost, 0, false)

	// Deletion with a recovery window, restore, deletion without one.
	o.delete("DeleteSecret with a window too short", name, 3, false)
	o.p.do("DeleteSecret with a window and force", func(s *side) (any, error) {
		return s.sm.DeleteSecret(o.c, &sm.DeleteSecretInput{SecretId: aws.String(name), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	o.delete("DeleteSecret with a recovery window", name, 7, false)
	o.describe("DescribeSecret of a secret scheduled for deletion", name)
	o.get("GetSecretValue of a secret scheduled for deletion", name, "", "")
	o.create("CreateSecret of a name scheduled for deletion", name, "", aws.String("again"))
	o.delete("DeleteSecret of a secret scheduled for deletion", name, 7, false)
	o.p.do("RestoreSecret", func(s *side) (any, error) {
		return s.sm.RestoreSecret(o.c, &sm.RestoreSecretInput{SecretId: aws.String(name)})
	})
	o.describe("DescribeSecret after RestoreSecret", name)
	o.get("GetSecretValue after RestoreSecret", name, "", "")
	// Writes to a secret scheduled for deletion come last: moto takes them.
	o.delete("DeleteSecret again", name, 30, false)
	o.put("PutSecretValue to a secret scheduled for deletion", name, token(4), "", "v4")
	o.stage("UpdateSecretVersionStage of a secret scheduled for deletion", name, "AWSPENDING", "t0", "")
	o.delete("DeleteSecret without recovery", name, 0, true)
	o.describe("DescribeSecret after DeleteSecret without recovery", name)
	o.create("CreateSecret of a name deleted without recovery", name, "", aws.String("again"))

	// A secret created without a value: its first version becomes AWSCURRENT.
	o.create("CreateSecret without a value", "app/empty", "", nil)
	o.describe("DescribeSecret of a secret without a value", "app/empty")
	o.get("GetSecretValue of a secret without a value", "app/empty", "", "")
	o.put("PutSecretValue as the first version, to AWSPENDING", "app/empty", token(5), "", "first", "AWSPENDING")
	o.describe("DescribeSecret after the first version", "app/empty")

	// Last, as moto takes it and the secret has no AWSCURRENT after.
	o.stage("UpdateSecretVersionStage removing AWSCURRENT", name, "AWSCURRENT", "", name+".v0")

	// Where moto's state parts from AWS's for good, each on a secret of its
	// own (the walk does not make these moves).
	diverge := func(secret string, first int, steps func(n string)) {
		o.create("CreateSecret of "+secret, secret, token(first), aws.String("first"))
		steps(secret)
	}
	diverge("labels/held", 20, func(n string) {
		o.put("PutSecretValue to AWSPENDING on "+n, n, token(21), "", "second", "AWSPENDING")
		o.stage("UpdateSecretVersionStage moving a held label without RemoveFromVersionId", n, "AWSPENDING", "t20", "")
	})
	diverge("labels/onto", 22, func(n string) {
		o.put("PutSecretValue to AWSPENDING on "+n, n, token(23), "", "second", "AWSPENDING")
		o.stage("UpdateSecretVersionStage moving a label onto its holder", n, "AWSPENDING", "t23", "")
		o.describe("DescribeSecret after moving a label onto its holder", n)
	})
	diverge("labels/current-holder", 24, func(n string) {
		o.put("PutSecretValue on "+n, n, token(25), "", "second")
		o.stage("UpdateSecretVersionStage moving AWSCURRENT from and to its holder", n, "AWSCURRENT", "t25", "t25")
		o.describe("DescribeSecret after moving AWSCURRENT from and to its holder", n)
	})
	diverge("labels/others", 26, func(n string) {
		o.put("PutSecretValue to AWSCURRENT and AWSPENDING on "+n, n, token(27), "", "second", "AWSCURRENT", "AWSPENDING")
		o.put("PutSecretValue on "+n, n, token(28), "", "third")
		o.describe("DescribeSecret after PutSecretValue moved AWSCURRENT off a version with other labels", n)
	})
	diverge("labels/moved", 29, func(n string) {
		o.put("PutSecretValue on "+n, n, token(30), "", "second")
		o.stage("UpdateSecretVersionStage AWSCURRENT back on "+n, n, "AWSCURRENT", "t29", "t30")
		o.get("GetSecretValue by default after UpdateSecretVersionStage moved AWSCURRENT", n, "", "")
		o.put("PutSecretValue after UpdateSecretVersionStage on "+n, n, token(31), "", "third")
		o.describe("DescribeSecret after PutSecretValue following UpdateSecretVersionStage", n)
	})
	diverge("labels/dup", 32, func(n string) {
		o.put("PutSecretValue to AWSPENDING on "+n, n, token(33), "", "second", "AWSPENDING")
		o.put("PutSecretValue to AWSCURRENT and AWSPENDING on "+n, n, token(34), "", "third", "AWSCURRENT", "AWSPENDING")
		o.describe("DescribeSecret after PutSecretValue to AWSCURRENT and a held label", n)
	})
	diverge("labels/pending-retry", 35, func(n string) {
		o.put("PutSecretValue to AWSPENDING on "+n, n, token(36), "", "second", "AWSPENDING")
		o.put("PutSecretValue retried with the token of an AWSPENDING version", n, token(36), "", "second")
		o.describe("DescribeSecret after retrying an AWSPENDING version's token", n)
	})
	diverge("labels/partial", 37, func(n string) {
		o.put("PutSecretValue to AWSPENDING on "+n, n, token(38), "", "second", "AWSPENDING")
		o.stage("UpdateSecretVersionStage to a missing version from the label's holder", n, "AWSPENDING", "t39", "t38")
		o.describe("DescribeSecret after a refused UpdateSecretVersionStage", n)
	})
}
