package secretsmanager

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox/cfn"
)

const typeSecret = "AWS::SecretsManager::Secret"

// Types implements cfn.Provisioner.
func (s *Service) Types() []string { return []string{typeSecret} }

// Create implements cfn.Provisioner: CreateSecret (as the deployer, through
// the service's API) with Name (or CloudFormation's generated one),
// Description, KmsKeyId, Tags, and SecretString or a value made as
// GenerateSecretString says; neither makes a secret without a value. Ref
// and Fn::GetAtt Id are the secret's ARN.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-secret.html
func (s *Service) Create(ctx context.Context, r cfn.Resource) (cfn.Provisioned, error) {
	if r.Type != typeSecret {
		return cfn.Provisioned{}, fmt.Errorf("secretsmanager: no provisioner for %s", r.Type)
	}
	if _, ok := r.Properties["ReplicaRegions"]; ok {
		return cfn.Provisioned{}, errors.New("property ReplicaRegions: the sandbox has one region")
	}
	if r.Previous != nil {
		// A stack update keeps the secret and its value (CloudFormation
		// does not generate a value again); the sandbox leaves its
		// description, key and tags as they were.
		s.mu.Lock()
		_, err := s.find(r.Region, r.Previous.Ref)
		s.mu.Unlock()
		if err == nil {
			return *r.Previous, nil
		}
	}
	in := map[string]any{}
	name, err := r.Str("Name")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if name == "" {
		name = cfn.PhysicalName(r, 512-7)
	}
	in["Name"] = name
	for _, p := range []string{"Description", "KmsKeyId"} {
		v, err := r.Str(p)
		if err != nil {
			return cfn.Provisioned{}, err
		}
		if v != "" {
			in[p] = v
		}
	}
	tags, err := r.Tags("Tags")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	if len(tags) > 0 {
		var ts []Tag
		for _, t := range tags {
			ts = append(ts, Tag{Key: t[0], Value: t[1]})
		}
		in["Tags"] = ts
	}
	_, hasString := r.Properties["SecretString"]
	gen, err := r.Object("GenerateSecretString")
	if err != nil {
		return cfn.Provisioned{}, err
	}
	switch {
	case hasString && gen != nil:
		return cfn.Provisioned{}, errors.New("properties SecretString and GenerateSecretString: give one, not both")
	case hasString:
		v, err := r.Str("SecretString")
		if err != nil {
			return cfn.Provisioned{}, err
		}
		in["SecretString"] = v
	case gen != nil:
		v, err := generateSecretString(cfn.Resource{Properties: gen})
		if err != nil {
			return cfn.Provisioned{}, fmt.Errorf("property GenerateSecretString: %w", err)
		}
		in["SecretString"] = v
	}
	body, err := json.Marshal(in)
	if err != nil {
		return cfn.Provisioned{}, err
	}
	res, err := s.srv.Internal(ctx, "secretsmanager", "CreateSecret", "", r.Caller, body)
	if err != nil {
		return cfn.Provisioned{}, err
	}
	arn := res.(versionResult).ARN
	return cfn.Provisioned{Ref: arn, Attrs: map[string]string{"Id": arn}}, nil
}

// punctuation is what GetRandomPassword counts as punctuation.
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetRandomPassword.html
const punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// generateSecretString makes a password as Secrets Manager's
// GetRandomPassword does (32 characters of letters, digits and punctuation
// by default, one of each included type unless RequireEachIncludedType is
// false), put under GenerateStringKey of SecretStringTemplate if given.
func generateSecretString(g cfn.Resource) (string, error) {
	flag := func(name string, def bool) bool {
		if b, ok := g.Properties[name].(bool); ok {
			return b
		}
		return def
	}
	length, given, err := g.Int("PasswordLength")
	if err != nil {
		return "", err
	}
	if !given {
		length = 32
	}
	if length < 1 || length > 4096 {
		return "", fmt.Errorf("PasswordLength %d: must be 1 to 4096", length)
	}
	exclude, err := g.Str("ExcludeCharacters")
	if err != nil {
		return "", err
	}
	keep := func(set string) string {
		return strings.Map(func(r rune) rune {
			if strings.ContainsRune(exclude, r) {
				return -1
			}
			return r
		}, set)
	}
	var sets []string
	for _, c := range []struct {
		flag string
		set  string
	}{
		{"ExcludeLowercase", "abcdefghijklmnopqrstuvwxyz"},
		{"ExcludeUppercase", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
		{"ExcludeNumbers", "0123456789"},
		{"ExcludePunctuation", punctuation},
	} {
		if !flag(c.flag, false) {
			if set := keep(c.set); set != "" {
				sets = append(sets, set)
			}
		}
	}
	if flag("IncludeSpace", false) && !strings.Contains(exclude, " ") {
		sets = append(sets, " ")
	}
	if len(sets) == 0 {
		return "", errors.New("every character is excluded")
	}
	pick := func(set string) byte {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		return set[n.Int64()]
	}
	all := strings.Join(sets, "")
	out := make([]byte, length)
	for i := range out {
		out[i] = pick(all)
	}
	if flag("RequireEachIncludedType", true) && length >= len(sets) {
		// One of each type at distinct random places.
		used := map[int]bool{}
		for _, set := range sets {
			for {
				n, _ := rand.Int(rand.Reader, big.NewInt(int64(length)))
				if i := int(n.Int64()); !used[i] {
					used[i] = true
					out[i] = pick(set)
					break
				}
			}
		}
	}
	password := string(out)
	tmpl, err := g.Str("SecretStringTemplate")
	if err != nil {
		return "", err
	}
	key, err := g.Str("GenerateStringKey")
	if err != nil {
		return "", err
	}
	if (tmpl == "") != (key == "") {
		return "", errors.New("SecretStringTemplate and GenerateStringKey go together")
	}
	if tmpl == "" {
		return password, nil
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(tmpl), &doc); err != nil {
		return "", errors.New("SecretStringTemplate: not a JSON object")
	}
	doc[key] = password
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

var _ cfn.Provisioner = (*Service)(nil)
