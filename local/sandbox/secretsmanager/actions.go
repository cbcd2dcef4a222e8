package secretsmanager

import (
	"context"
	"encoding/base64"
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
	}
	return nil, sandbox.Errorf(400, "UnknownOperationException", "Operation %s is not supported by the sandbox's Secrets Manager", c.Action)
}

func secretID(id string) (string, error) {
	if id == "" {
		return "", sandbox.Errorf(400, "ValidationException", "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null")
	}
	return id, nil
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
	if _, err := secretID(in.SecretID); err != nil {
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
	ARN                string              `json:"ARN"`
	Name               string              `json:"Name"`
	Description        string              `json:"Description,omitempty"`
	KmsKeyID           string              `json:"KmsKeyId,omitempty"`
	RotationEnabled    bool                `json:"RotationEnabled"`
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
	if _, err := secretID(in.SecretID); err != nil {
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
		if in.VersionStage != "" && !hasStage(v, in.VersionStage) {
			return nil, sandbox.Errorf(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s and staging label: %s", in.VersionID, in.VersionStage)
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
	if _, err := secretID(in.SecretID); err != nil {
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
	sec.Versions[id] = v
	for _, stage := range in.VersionStages {
		sec.attach(v, stage)
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
	if _, err := secretID(in.SecretID); err != nil {
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
	if _, err := secretID(in.SecretID); err != nil {
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

func (s *Service) listSecrets(c *sandbox.Call) (any, error) {
	var in struct {
		IncludePlannedDeletion bool
		MaxResults             int
		NextToken              string
		Filters                []struct {
			Key    string
			Values []string
		}
	}
	if err := c.DecodeJSON(&in); err != nil {
		return nil, err
	}
	for _, f := range in.Filters {
		switch f.Key {
		case "name", "description", "tag-key", "tag-value", "all":
		default:
			return nil, sandbox.Errorf(400, "InvalidParameterException", "Invalid filter key: %s", f.Key)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for k, sec := range s.st.Secrets {
		if sec.Region == c.Region {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	list := []description{}
	for _, k := range names {
		sec, err := s.find(c.Region, s.st.Secrets[k].Name)
		if err != nil || (sec.Deletion != nil && !in.IncludePlannedDeletion) || !matches(sec, in.Filters) {
			continue
		}
		d := s.describe(sec)
		d.VersionIDsToStages = nil
		list = append(list, d)
	}
	start, end, next, err := page(len(list), in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	type entry struct {
		description
		SecretVersionsToStages map[string][]string `json:"SecretVersionsToStages,omitempty"`
	}
	out := []entry{}
	for _, d := range list[start:end] {
		out = append(out, entry{description: d, SecretVersionsToStages: s.st.Secrets[key(c.Region, d.Name)].versionsToStages()})
	}
	return struct {
		SecretList []entry `json:"SecretList"`
		NextToken  string  `json:"NextToken,omitempty"`
	}{out, next}, nil
}

// matches applies ListSecrets filters: every filter must match one of its
// values, by prefix, as Secrets Manager does.
func matches(sec *Secret, filters []struct {
	Key    string
	Values []string
}) bool {
	for _, f := range filters {
		var fields []string
		switch f.Key {
		case "name":
			fields = []string{sec.Name}
		case "description":
			fields = []string{sec.Description}
		case "tag-key", "tag-value":
			for _, t := range sec.Tags {
				if f.Key == "tag-key" {
					fields = append(fields, t.Key)
				} else {
					fields = append(fields, t.Value)
				}
			}
		case "all":
			fields = []string{sec.Name, sec.Description}
			for _, t := range sec.Tags {
				fields = append(fields, t.Key, t.Value)
			}
		}
		ok := false
		for _, v := range f.Values {
			for _, field := range fields {
				if strings.HasPrefix(field, v) {
					ok = true
				}
			}
		}
		if !ok {
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
	if _, err := secretID(in.SecretID); err != nil {
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
	if _, err := secretID(in.SecretID); err != nil {
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
