package secretsmanager

import (
	"context"
	"encoding/base64"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

const resourceType = "AWS::SecretsManager::Secret"

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "CreateSecret":
		return s.createSecret(c)
	case "DescribeSecret":
		return s.describeSecret(c)
	case "GetSecretValue":
		return s.getSecretValue(c)
	case "PutSecretValue":
		return s.putSecretValue(c)
	case "UpdateSecretVersionStage":
		return s.updateSecretVersionStage(c)
	case "ListSecretVersionIds":
		return s.listSecretVersionIds(c)
	case "ListSecrets":
		return s.listSecrets(c)
	case "DeleteSecret":
		return s.deleteSecret(c)
	case "RestoreSecret":
		return s.restoreSecret(c)
	case "TagResource":
		return s.tagResource(c)
	case "UntagResource":
		return s.untagResource(c)
	}
	return nil, sandbox.Errorf(400, "UnknownOperationException", "Operation %s is not supported by the sandbox's Secrets Manager", c.Action)
}

// requireSecretID refuses a request without a SecretId, as AWS does.
func requireSecretID(id string) error {
	if id == "" {
		return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null")
	}
	return nil
}

type idResult struct {
	ARN  string `json:"ARN"`
	Name string `json:"Name"`
}

type versionResult struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId,omitempty"`
	VersionStages []string `json:"VersionStages,omitempty"`
}

func (s *Service) createSecret(c *sandbox.Call) (any, error) {
	var in struct {
		Name               string
		ClientRequestToken string
		Description        string
		KmsKeyID           string `json:"KmsKeyId"`
		SecretString       *string
		SecretBinary       []byte
		Tags               []Tag
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := validName(in.Name); err != nil {
		return nil, err
	}
	if err := validToken(in.ClientRequestToken); err != nil {
		return nil, err
	}
	if err := value(in.SecretString, in.SecretBinary, false); err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"name": in.Name, "clientRequestToken": in.ClientRequestToken})
	s.mu.Lock()
	defer s.mu.Unlock()
	hasValue := in.SecretString != nil || in.SecretBinary != nil
	if old, err := s.find(c.Region, in.Name); err == nil {
		c.Touch(resourceType, old.ARN)
		if old.Deletion != nil {
			return nil, sandbox.Errorf(400, "InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		// A retried CreateSecret (same token, same value) is answered again.
		if v, ok := old.Versions[in.ClientRequestToken]; ok && hasValue {
			if !sameValue(v, in.SecretString, in.SecretBinary) {
				return nil, sandbox.Errorf(400, "ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
			}
			return versionResult{ARN: old.ARN, Name: old.Name, VersionID: v.ID}, nil
		}
		return nil, sandbox.Errorf(400, "ResourceExistsException", "The operation failed because the secret %s already exists.", in.Name)
	}
	now := s.srv.Clock().Now()
	sec := &Secret{Name: in.Name, Region: c.Region, ARN: s.newARN(c.Region, in.Name), Description: in.Description, KmsKeyID: in.KmsKeyID,
		Tags: in.Tags, Created: now, Changed: now, Versions: map[string]*Version{}}
	out := versionResult{ARN: sec.ARN, Name: sec.Name}
	if hasValue {
		id := in.ClientRequestToken
		if id == "" {
			id = sandbox.NewUUID()
		}
		sec.Versions[id] = &Version{ID: id, String: in.SecretString, Binary: in.SecretBinary, Stages: []string{Current}, Created: now}
		out.VersionID = id
	}
	s.st.Secrets[key(c.Region, in.Name)] = sec
	c.Touch(resourceType, sec.ARN)
	return out, nil
}

func (s *Service) describeSecret(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID string `json:"SecretId"`
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.find(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	return s.describe(sec), nil
}

type description struct {
	ARN         string `json:"ARN"`
	Name        string `json:"Name"`
	Description string `json:"Description,omitempty"`
	KmsKeyID    string `json:"KmsKeyId,omitempty"`
	// RotationEnabled is absent: "If the secret has never been configured
	// for rotation, Secrets Manager returns null", and the sandbox rotates
	// nothing (found by test/moto):
	// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html
	RotationEnabled    *bool               `json:"RotationEnabled,omitempty"`
	CreatedDate        *sandbox.EpochTime  `json:"CreatedDate"`
	LastChangedDate    *sandbox.EpochTime  `json:"LastChangedDate"`
	LastAccessedDate   *sandbox.EpochTime  `json:"LastAccessedDate,omitempty"`
	DeletedDate        *sandbox.EpochTime  `json:"DeletedDate,omitempty"`
	Tags               []Tag               `json:"Tags,omitempty"`
	VersionIDsToStages map[string][]string `json:"VersionIdsToStages,omitempty"`
	PrimaryRegion      string              `json:"PrimaryRegion,omitempty"`
}

func (s *Service) describe(sec *Secret) description {
	return description{
		ARN: sec.ARN, Name: sec.Name, Description: sec.Description, KmsKeyID: sec.KmsKeyID,
		CreatedDate: epoch(&sec.Created), LastChangedDate: epoch(&sec.Changed), LastAccessedDate: epoch(sec.Accessed),
		DeletedDate: epoch(sec.Deletion), Tags: sec.Tags, VersionIDsToStages: sec.versionsToStages(),
	}
}

func (s *Service) getSecretValue(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID     string `json:"SecretId"`
		VersionID    string `json:"VersionId"`
		VersionStage string
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID, "versionId": in.VersionID, "versionStage": in.VersionStage})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	var v *Version
	switch {
	case in.VersionID != "":
		v = sec.Versions[in.VersionID]
		if v == nil {
			return nil, sandbox.Errorf(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", in.VersionID)
		}
		// A VersionId and a VersionStage that do not meet: the API reference
		// names no error for it; moto and LocalStack (whose Secrets Manager
		// tests are recorded against AWS) both answer InvalidRequestException
		// with this message, and test/moto compares the sandbox with moto.
		// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
		if in.VersionStage != "" && !hasStage(v, in.VersionStage) {
			return nil, sandbox.Errorf(400, "InvalidRequestException", "You provided a VersionStage that is not associated to the provided VersionId.")
		}
	default:
		stage := in.VersionStage
		if stage == "" {
			stage = Current
		}
		if v = sec.withStage(stage); v == nil {
			return nil, sandbox.Errorf(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: %s", stage)
		}
	}
	day := c.Time.Truncate(24 * time.Hour)
	sec.Accessed, v.Accessed = &day, &day
	return struct {
		ARN           string             `json:"ARN"`
		Name          string             `json:"Name"`
		VersionID     string             `json:"VersionId"`
		SecretString  *string            `json:"SecretString,omitempty"`
		SecretBinary  []byte             `json:"SecretBinary,omitempty"`
		VersionStages []string           `json:"VersionStages"`
		CreatedDate   *sandbox.EpochTime `json:"CreatedDate"`
	}{sec.ARN, sec.Name, v.ID, v.String, v.Binary, slices.Clone(v.Stages), epoch(&v.Created)}, nil
}

func (s *Service) putSecretValue(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID           string `json:"SecretId"`
		ClientRequestToken string
		SecretString       *string
		SecretBinary       []byte
		VersionStages      []string
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	if err := validToken(in.ClientRequestToken); err != nil {
		return nil, err
	}
	if err := value(in.SecretString, in.SecretBinary, true); err != nil {
		return nil, err
	}
	if len(in.VersionStages) == 0 {
		in.VersionStages = []string{Current}
	}
	if len(in.VersionStages) > 20 {
		return nil, sandbox.Errorf(400, "LimitExceededException", "You can't attach more than 20 staging labels to a version.")
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID, "clientRequestToken": in.ClientRequestToken, "versionStages": in.VersionStages})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	if v, ok := sec.Versions[in.ClientRequestToken]; ok {
		if !sameValue(v, in.SecretString, in.SecretBinary) {
			return nil, sandbox.Errorf(400, "ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
		}
		return versionResult{ARN: sec.ARN, Name: sec.Name, VersionID: v.ID, VersionStages: slices.Clone(v.Stages)}, nil
	}
	id := in.ClientRequestToken
	if id == "" {
		id = sandbox.NewUUID()
	}
	v := &Version{ID: id, String: in.SecretString, Binary: in.SecretBinary, Stages: []string{}, Created: c.Time}
	first := len(sec.Versions) == 0
	sec.Versions[id] = v
	for _, stage := range in.VersionStages {
		sec.attach(v, stage)
	}
	// "If this operation creates the first version for the secret, then
	// Secrets Manager automatically attaches the staging label AWSCURRENT to
	// it", whatever VersionStages says (found by test/moto):
	// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
	if first {
		sec.attach(v, Current)
	}
	sec.Changed = c.Time
	return versionResult{ARN: sec.ARN, Name: sec.Name, VersionID: id, VersionStages: slices.Clone(v.Stages)}, nil
}

func (s *Service) updateSecretVersionStage(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID            string `json:"SecretId"`
		VersionStage        string
		MoveToVersionID     string `json:"MoveToVersionId"`
		RemoveFromVersionID string `json:"RemoveFromVersionId"`
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	if in.VersionStage == "" {
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value null at 'versionStage' failed to satisfy constraint: Member must not be null")
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID, "versionStage": in.VersionStage,
		"moveToVersionId": in.MoveToVersionID, "removeFromVersionId": in.RemoveFromVersionID})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	if in.MoveToVersionID == "" && in.RemoveFromVersionID == "" {
		return nil, sandbox.Errorf(400, "InvalidParameterException", "You must specify MoveToVersionId or RemoveFromVersionId.")
	}
	holder := sec.withStage(in.VersionStage)
	var from, to *Version
	if in.RemoveFromVersionID != "" {
		if from = sec.Versions[in.RemoveFromVersionID]; from == nil {
			return nil, sandbox.Errorf(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", in.RemoveFromVersionID)
		}
		if from != holder {
			return nil, sandbox.Errorf(400, "InvalidParameterException", "The staging label %s is not currently attached to version %s, so you can't remove it from that version.", in.VersionStage, in.RemoveFromVersionID)
		}
	}
	if in.MoveToVersionID != "" {
		if to = sec.Versions[in.MoveToVersionID]; to == nil {
			return nil, sandbox.Errorf(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", in.MoveToVersionID)
		}
		if holder != nil && holder != to && from == nil {
			return nil, sandbox.Errorf(400, "InvalidParameterException", "The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", in.VersionStage, holder.ID)
		}
		sec.attach(to, in.VersionStage)
	} else {
		if in.VersionStage == Current {
			return nil, sandbox.Errorf(400, "InvalidParameterException", "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.")
		}
		removeStage(from, in.VersionStage)
	}
	sec.Changed = c.Time
	return idResult{ARN: sec.ARN, Name: sec.Name}, nil
}

type versionEntry struct {
	VersionID        string             `json:"VersionId"`
	VersionStages    []string           `json:"VersionStages,omitempty"`
	CreatedDate      *sandbox.EpochTime `json:"CreatedDate"`
	LastAccessedDate *sandbox.EpochTime `json:"LastAccessedDate,omitempty"`
}

// page cuts items at an opaque token (the index to start at) and a page size.
func page(n int, token string, maxResults, defaultMax int) (start, end int, next string, err error) {
	if maxResults == 0 {
		maxResults = defaultMax
	}
	if maxResults < 1 || maxResults > 100 {
		return 0, 0, "", sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", maxResults)
	}
	if token != "" {
		b, derr := base64.RawURLEncoding.DecodeString(token)
		var i int
		if derr == nil {
			i, derr = strconv.Atoi(string(b))
		}
		if derr != nil || i < 0 || i > n {
			return 0, 0, "", sandbox.Errorf(400, "InvalidNextTokenException", "The NextToken value is invalid.")
		}
		start = i
	}
	end = min(n, start+maxResults)
	if end < n {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	return start, end, next, nil
}

func (s *Service) listSecretVersionIds(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID          string `json:"SecretId"`
		IncludeDeprecated bool
		MaxResults        int
		NextToken         string
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID, "includeDeprecated": in.IncludeDeprecated})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.find(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	versions := []versionEntry{}
	for _, v := range sec.sortedVersions() {
		if len(v.Stages) == 0 && !in.IncludeDeprecated {
			continue
		}
		versions = append(versions, versionEntry{VersionID: v.ID, VersionStages: slices.Clone(v.Stages), CreatedDate: epoch(&v.Created), LastAccessedDate: epoch(v.Accessed)})
	}
	start, end, next, err := page(len(versions), in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	return struct {
		ARN       string         `json:"ARN"`
		Name      string         `json:"Name"`
		Versions  []versionEntry `json:"Versions"`
		NextToken string         `json:"NextToken,omitempty"`
	}{sec.ARN, sec.Name, versions[start:end], next}, nil
}

// filter is one of ListSecrets' Filters.
type filter struct {
	Key    string
	Values []string
}

// filterValue is what AWS allows in a filter value: an optional leading
// "!" (negation), then letters, digits, spaces and :_@/+=.-!
var filterValue = regexp.MustCompile(`^!?[a-zA-Z0-9 :_@/+=.\-!]*$`)

func checkFilters(filters []filter) error {
	if len(filters) > 10 {
		return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value at 'filters' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	for _, f := range filters {
		switch f.Key {
		case "name", "description", "tag-key", "tag-value", "primary-region", "owning-service", "all":
		default:
			return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'filters.member.key' failed to satisfy constraint: Member must satisfy enum value set: [all, name, tag-key, description, tag-value, primary-region, owning-service]", f.Key)
		}
		if len(f.Values) < 1 || len(f.Values) > 10 {
			return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value at 'filters.member.values' failed to satisfy constraint: Member must have length between 1 and 10")
		}
		for _, v := range f.Values {
			if len(v) > 512 || !filterValue.MatchString(v) {
				return sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'filters.member.values' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$", v)
			}
		}
	}
	return nil
}

// listSecrets is ListSecrets: every secret of the region (none scheduled
// for deletion unless asked), filtered, sorted (by CreatedDate unless
// SortBy says otherwise) and paged. Never a value: an entry is what
// DescribeSecret says, with SecretVersionsToStages.
func (s *Service) listSecrets(c *sandbox.Call) (any, error) {
	var in struct {
		IncludePlannedDeletion bool
		MaxResults             int
		NextToken              string
		Filters                []filter
		SortOrder              string
		SortBy                 string
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := checkFilters(in.Filters); err != nil {
		return nil, err
	}
	switch in.SortOrder {
	case "", "asc", "desc":
	default:
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]", in.SortOrder)
	}
	switch in.SortBy {
	case "", "created-date", "last-accessed-date", "last-changed-date", "name":
	default:
		return nil, sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value '%s' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]", in.SortBy)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var secrets []*Secret
	for _, x := range s.st.Secrets {
		if x.Region != c.Region {
			continue
		}
		sec, err := s.find(c.Region, x.Name) // purges a secret whose recovery window passed
		if err != nil || (sec.Deletion != nil && !in.IncludePlannedDeletion) || !matches(sec, c.Region, in.Filters) {
			continue
		}
		secrets = append(secrets, sec)
	}
	sortSecrets(secrets, in.SortBy, in.SortOrder == "desc")
	start, end, next, err := page(len(secrets), in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	type entry struct {
		description
		SecretVersionsToStages map[string][]string `json:"SecretVersionsToStages,omitempty"`
	}
	out := []entry{}
	for _, sec := range secrets[start:end] {
		d := s.describe(sec)
		d.VersionIDsToStages = nil
		out = append(out, entry{description: d, SecretVersionsToStages: sec.versionsToStages()})
	}
	return struct {
		SecretList []entry `json:"SecretList"`
		NextToken  string  `json:"NextToken,omitempty"`
	}{out, next}, nil
}

// sortSecrets orders secrets by the SortBy key (CreatedDate by default),
// the name breaking ties so that pages stay stable.
func sortSecrets(secrets []*Secret, by string, desc bool) {
	at := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	}
	key := func(sec *Secret) time.Time {
		switch by {
		case "last-accessed-date":
			return at(sec.Accessed)
		case "last-changed-date":
			return sec.Changed
		}
		return sec.Created
	}
	slices.SortStableFunc(secrets, func(a, b *Secret) int {
		c := 0
		if by != "name" {
			c = key(a).Compare(key(b))
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		if desc {
			c = -c
		}
		return c
	})
}

func tagStrings(tags []Tag) []string {
	var out []string
	for _, t := range tags {
		out = append(out, t.Key, t.Value)
	}
	return out
}

// matches applies ListSecrets filters as Secrets Manager documents them:
// every filter must match; a filter matches if one of its values does, by
// prefix (name, tag-key, tag-value, primary-region and owning-service
// case-sensitively, description not), and none of its negated values
// ("!prefix") does. "all" breaks its value into words, each of which must
// prefix some attribute or some word of one, not case-sensitively.
func matches(sec *Secret, region string, filters []filter) bool {
	for _, f := range filters {
		var fields []string
		fold := false
		switch f.Key {
		case "name":
			fields = []string{sec.Name}
		case "description":
			fields, fold = []string{sec.Description}, true
		case "tag-key", "tag-value":
			for _, t := range sec.Tags {
				if f.Key == "tag-key" {
					fields = append(fields, t.Key)
				} else {
					fields = append(fields, t.Value)
				}
			}
		case "primary-region":
			fields = []string{region}
		case "owning-service":
			// The sandbox's secrets are all the caller's own: no service owns one.
		case "all":
			fold = true
			for _, attr := range append([]string{sec.Name, sec.Description, region}, tagStrings(sec.Tags)...) {
				fields = append(fields, attr)
				fields = append(fields, strings.FieldsFunc(attr, func(r rune) bool { return strings.ContainsRune(" /_+=.@:-", r) })...)
			}
		}
		hasPrefix := func(p string) bool {
			for _, field := range fields {
				if fold && strings.HasPrefix(strings.ToLower(field), strings.ToLower(p)) || !fold && strings.HasPrefix(field, p) {
					return true
				}
			}
			return false
		}
		positive, matched := false, false
		for _, v := range f.Values {
			if neg, ok := strings.CutPrefix(v, "!"); ok {
				if hasPrefix(neg) {
					return false
				}
				continue
			}
			positive = true
			words := []string{v}
			if f.Key == "all" {
				words = strings.Fields(v)
			}
			all := true
			for _, w := range words {
				all = all && hasPrefix(w)
			}
			matched = matched || all
		}
		if positive && !matched {
			return false
		}
	}
	return true
}

func (s *Service) deleteSecret(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID                   string `json:"SecretId"`
		RecoveryWindowInDays       *int64
		ForceDeleteWithoutRecovery bool
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	if in.ForceDeleteWithoutRecovery && in.RecoveryWindowInDays != nil {
		return nil, sandbox.Errorf(400, "InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, sandbox.Errorf(400, "InvalidParameterException", "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID, "recoveryWindowInDays": days, "forceDeleteWithoutRecovery": in.ForceDeleteWithoutRecovery})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.find(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	when := c.Time
	switch {
	case in.ForceDeleteWithoutRecovery:
		delete(s.st.Secrets, key(sec.Region, sec.Name))
	case sec.Deletion != nil:
		return nil, sandbox.Errorf(400, "InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	default:
		when = c.Time.Add(time.Duration(days) * 24 * time.Hour)
		sec.Deletion = &when
	}
	return struct {
		ARN          string             `json:"ARN"`
		Name         string             `json:"Name"`
		DeletionDate *sandbox.EpochTime `json:"DeletionDate"`
	}{sec.ARN, sec.Name, epoch(&when)}, nil
}

func (s *Service) restoreSecret(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID string `json:"SecretId"`
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.find(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	sec.Deletion = nil
	sec.Changed = c.Time
	return idResult{ARN: sec.ARN, Name: sec.Name}, nil
}

// tagResource appends tags to the secret's list ("This operation appends
// tags to the existing list of tags", API_TagResource in the Secrets Manager
// API reference), a key it already has taking the new value; the answer is
// empty. UntagResource is the only way to remove one.
func (s *Service) tagResource(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID string `json:"SecretId"`
		Tags     []Tag
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.find(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	for _, t := range in.Tags {
		i := slices.IndexFunc(sec.Tags, func(old Tag) bool { return old.Key == t.Key })
		if i >= 0 {
			sec.Tags[i].Value = t.Value
		} else {
			sec.Tags = append(sec.Tags, t)
		}
	}
	return struct{}{}, nil
}

// untagResource removes the tags with the given keys; the answer is empty.
func (s *Service) untagResource(c *sandbox.Call) (any, error) {
	var in struct {
		SecretID string `json:"SecretId"`
		TagKeys  []string
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	if err := requireSecretID(in.SecretID); err != nil {
		return nil, err
	}
	c.RequestParameters(map[string]any{"secretId": in.SecretID})
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.find(c.Region, in.SecretID)
	if err != nil {
		return nil, err
	}
	c.Touch(resourceType, sec.ARN)
	sec.Tags = slices.DeleteFunc(sec.Tags, func(t Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
	return struct{}{}, nil
}
