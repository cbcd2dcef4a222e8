package iam

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/keyrotator/keyrotator/local/sandbox"
)

type userXML struct {
	Path       string          `xml:"Path"`
	UserName   string          `xml:"UserName"`
	UserID     string          `xml:"UserId"`
	Arn        string          `xml:"Arn"`
	CreateDate sandbox.ISOTime `xml:"CreateDate"`
	Tags       *tagsXML        `xml:"Tags,omitempty"`
}

type tagsXML struct {
	Members []tagXML `xml:"member"`
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type keyMetaXML struct {
	UserName    string          `xml:"UserName"`
	AccessKeyID string          `xml:"AccessKeyId"`
	Status      string          `xml:"Status"`
	CreateDate  sandbox.ISOTime `xml:"CreateDate"`
}

// Handle implements sandbox.Service.
func (s *Service) Handle(_ context.Context, c *sandbox.Call) (any, error) {
	switch c.Action {
	case "GetUser":
		return s.getUser(c)
	case "CreateUser":
		return s.createUser(c)
	case "ListUsers":
		return s.listUsers(c)
	case "ListAccessKeys":
		return s.listAccessKeys(c)
	case "CreateAccessKey":
		return s.createAccessKey(c)
	case "UpdateAccessKey":
		return s.updateAccessKey(c)
	case "DeleteAccessKey":
		return s.deleteAccessKey(c)
	case "GetAccessKeyLastUsed":
		return s.getAccessKeyLastUsed(c)
	case "TagUser":
		return s.tagUser(c)
	case "ListUserTags":
		return s.listUserTags(c)
	case "SimulatePrincipalPolicy":
		return s.simulatePrincipalPolicy(c)
	case "GenerateCredentialReport":
		return s.generateCredentialReport()
	case "GetCredentialReport":
		return s.getCredentialReport()
	}
	return nil, sandbox.Errorf(400, "InvalidAction", "Could not find operation %s for version 2010-05-08", c.Action)
}

// userName is the named user, or the caller when the parameter is omitted (as IAM does).
func userName(c *sandbox.Call) (string, error) {
	if n := c.Params.Get("UserName"); n != "" {
		return n, nil
	}
	if c.Principal.Type != "IAMUser" {
		return "", sandbox.Errorf(400, "ValidationError", "Must specify userName when calling with non-User credentials")
	}
	return c.Principal.UserName, nil
}

func (s *Service) userXML(u *User, withTags bool) userXML {
	x := userXML{Path: u.Path, UserName: u.Name, UserID: u.ID, Arn: s.userARN(u), CreateDate: sandbox.ISOTime(u.Created)}
	if withTags && len(u.TagKeys) > 0 {
		x.Tags = tagList(u)
	}
	return x
}

func tagList(u *User) *tagsXML {
	t := &tagsXML{}
	for _, k := range u.TagKeys {
		t.Members = append(t.Members, tagXML{Key: k, Value: u.Tags[k]})
	}
	return t
}

func (s *Service) getUser(c *sandbox.Call) (any, error) {
	name, err := userName(c)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.st.Users[name]
	if !ok {
		return nil, noSuchUser(name)
	}
	c.Touch("AWS::IAM::User", name)
	return struct {
		User userXML `xml:"User"`
	}{s.userXML(u, true)}, nil
}

func (s *Service) createUser(c *sandbox.Call) (any, error) {
	name, err := sandbox.Required(c.Params, "UserName")
	if err != nil {
		return nil, err
	}
	var tags [][2]string
	for _, m := range sandbox.Members(c.Params, "Tags.member", "Key", "Value") {
		tags = append(tags, [2]string{m["Key"], m["Value"]})
	}
	u, err := s.CreateUser(name, c.Params.Get("Path"), tags)
	if err != nil {
		return nil, err
	}
	c.Touch("AWS::IAM::User", name)
	c.RequestParameters(map[string]any{"userName": name})
	s.mu.RLock()
	defer s.mu.RUnlock()
	return struct {
		User userXML `xml:"User"`
	}{s.userXML(u, true)}, nil
}

// listUsers lists the users whose path starts with PathPrefix ("/" by
// default: all), by name
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUsers.html).
// One page: the sandbox does not paginate it.
func (s *Service) listUsers(c *sandbox.Call) (any, error) {
	prefix := c.Params.Get("PathPrefix")
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out struct {
		Users       []userXML `xml:"Users>member"`
		IsTruncated bool      `xml:"IsTruncated"`
	}
	out.Users = []userXML{}
	for _, name := range slices.Sorted(maps.Keys(s.st.Users)) {
		u := s.st.Users[name]
		if prefix != "" && !strings.HasPrefix(u.Path, prefix) {
			continue
		}
		out.Users = append(out.Users, s.userXML(u, false))
	}
	return out, nil
}

func (s *Service) listAccessKeys(c *sandbox.Call) (any, error) {
	name, err := userName(c)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.st.Users[name]; !ok {
		return nil, noSuchUser(name)
	}
	var out struct {
		AccessKeyMetadata struct {
			Members []keyMetaXML `xml:"member"`
		} `xml:"AccessKeyMetadata"`
		IsTruncated bool `xml:"IsTruncated"`
	}
	for _, k := range s.keysOf(name) {
		out.AccessKeyMetadata.Members = append(out.AccessKeyMetadata.Members, keyMetaXML{UserName: name, AccessKeyID: k.ID, Status: k.Status, CreateDate: sandbox.ISOTime(k.Created)})
	}
	return out, nil
}

func (s *Service) createAccessKey(c *sandbox.Call) (any, error) {
	name, err := userName(c)
	if err != nil {
		return nil, err
	}
	k, err := s.CreateAccessKey(name)
	if err != nil {
		return nil, err
	}
	c.Touch("AWS::IAM::AccessKey", k.AccessKeyID)
	c.Touch("AWS::IAM::User", name)
	c.RequestParameters(map[string]any{"userName": name})
	c.ResponseElements(map[string]any{"accessKey": map[string]any{
		"userName": name, "accessKeyId": k.AccessKeyID, "status": "Active", "createDate": k.CreateDate,
	}})
	return struct {
		AccessKey AccessKey `xml:"AccessKey"`
	}{k}, nil
}

// ownedKey finds a key of the named user; IAM answers NoSuchEntity for a key
// that exists but belongs to someone else.
func (s *Service) ownedKey(c *sandbox.Call) (*Key, string, error) {
	name, err := userName(c)
	if err != nil {
		return nil, "", err
	}
	id, err := sandbox.Required(c.Params, "AccessKeyId")
	if err != nil {
		return nil, "", err
	}
	if _, ok := s.st.Users[name]; !ok {
		return nil, "", noSuchUser(name)
	}
	k, ok := s.st.Keys[id]
	if !ok || k.User != name {
		return nil, "", noSuchKey(id)
	}
	return k, name, nil
}

func (s *Service) updateAccessKey(c *sandbox.Call) (any, error) {
	status, err := sandbox.Required(c.Params, "Status")
	if err != nil {
		return nil, err
	}
	if status != "Active" && status != "Inactive" {
		return nil, sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value '%s' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, name, err := s.ownedKey(c)
	if err != nil {
		return nil, err
	}
	k.Status = status
	c.Touch("AWS::IAM::AccessKey", k.ID)
	c.RequestParameters(map[string]any{"userName": name, "accessKeyId": k.ID, "status": status})
	return nil, nil
}

func (s *Service) deleteAccessKey(c *sandbox.Call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, name, err := s.ownedKey(c)
	if err != nil {
		return nil, err
	}
	delete(s.st.Keys, k.ID)
	c.Touch("AWS::IAM::AccessKey", k.ID)
	c.RequestParameters(map[string]any{"userName": name, "accessKeyId": k.ID})
	return nil, nil
}

func (s *Service) getAccessKeyLastUsed(c *sandbox.Call) (any, error) {
	id, err := sandbox.Required(c.Params, "AccessKeyId")
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.st.Keys[id]
	if !ok {
		// IAM does not say whether a key exists to someone who cannot see it.
		return nil, sandbox.Errorf(403, "AccessDenied", "User: %s is not authorized to perform: iam:GetAccessKeyLastUsed on resource: access key %s", c.Principal.ARN, id)
	}
	type lastUsed struct {
		LastUsedDate *sandbox.ISOTime `xml:"LastUsedDate,omitempty"`
		ServiceName  string           `xml:"ServiceName"`
		Region       string           `xml:"Region"`
	}
	out := struct {
		UserName          string   `xml:"UserName"`
		AccessKeyLastUsed lastUsed `xml:"AccessKeyLastUsed"`
	}{UserName: k.User, AccessKeyLastUsed: lastUsed{ServiceName: "N/A", Region: "N/A"}}
	// IAM shows a use only once its reporting lag has passed.
	if u := k.reported(s.srv.Clock().Now(), s.lag); u != nil {
		t := sandbox.ISOTime(u.At)
		out.AccessKeyLastUsed = lastUsed{LastUsedDate: &t, ServiceName: u.Service, Region: u.Region}
	}
	return out, nil
}

func (s *Service) tagUser(c *sandbox.Call) (any, error) {
	name, err := sandbox.Required(c.Params, "UserName")
	if err != nil {
		return nil, err
	}
	tags := sandbox.Members(c.Params, "Tags.member", "Key", "Value")
	if len(tags) == 0 {
		return nil, sandbox.Errorf(400, "ValidationError", "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	pairs := make([][2]string, 0, len(tags))
	for _, t := range tags {
		pairs = append(pairs, [2]string{t["Key"], t["Value"]})
	}
	if err := checkTags(pairs); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.Users[name]
	if !ok {
		return nil, noSuchUser(name)
	}
	if len(u.Tags)+len(tags) > 50 {
		return nil, sandbox.Errorf(409, "LimitExceeded", "Cannot exceed quota for TagsPerUser: 50")
	}
	for _, t := range tags {
		setTag(u, t["Key"], t["Value"])
	}
	c.Touch("AWS::IAM::User", name)
	return nil, nil
}

func (s *Service) listUserTags(c *sandbox.Call) (any, error) {
	name, err := sandbox.Required(c.Params, "UserName")
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.st.Users[name]
	if !ok {
		return nil, noSuchUser(name)
	}
	return struct {
		Tags        tagsXML `xml:"Tags"`
		IsTruncated bool    `xml:"IsTruncated"`
	}{Tags: *tagList(u)}, nil
}
