package steps

import (
	"context"
	"errors"
	"time"

	"github.com/keyrotator/keyrotator/functions/aws/iamkeys"
	"github.com/keyrotator/keyrotator/functions/rotation"
)

// fakeKeys is IAM as the steps see it, in memory.
type fakeKeys struct {
	keys     []iamkeys.Key
	lastUsed map[string]rotation.KeyUse
}

func (f *fakeKeys) UserARN(context.Context, string) (string, error) {
	return "arn:aws:iam::1:user/u", nil
}
func (f *fakeKeys) List(context.Context, string) ([]iamkeys.Key, error) {
	return append([]iamkeys.Key(nil), f.keys...), nil
}
func (f *fakeKeys) Create(context.Context, string) (rotation.Credential, time.Time, error) {
	panic("not used")
}
func (f *fakeKeys) CreateOnce(context.Context, string) (rotation.Credential, time.Time, error) {
	panic("not used")
}
func (f *fakeKeys) SetStatus(_ context.Context, _, id string, active bool) error {
	for i := range f.keys {
		if f.keys[i].ID == id {
			f.keys[i].Status = map[bool]string{true: "Active", false: "Inactive"}[active]
		}
	}
	return nil
}
func (f *fakeKeys) Delete(_ context.Context, _, id string) (bool, error) {
	for i, k := range f.keys {
		if k.ID == id {
			f.keys = append(f.keys[:i], f.keys[i+1:]...)
			return true, nil
		}
	}
	return false, nil
}
func (f *fakeKeys) LastUsed(_ context.Context, id string) (rotation.KeyUse, error) {
	if u, ok := f.lastUsed[id]; ok {
		return u, nil
	}
	return rotation.KeyUse{KeyID: id}, nil
}

type fakeTrail struct{ uses []rotation.TrailUse }

func (f fakeTrail) UsesSince(context.Context, string, time.Time, time.Time) ([]rotation.TrailUse, error) {
	return f.uses, nil
}

type fakeTopic struct{ subject, body string }

func (f *fakeTopic) Publish(_ context.Context, subject, body string) (string, error) {
	f.subject, f.body = subject, body
	return "msg-1", nil
}

func at(t time.Time) *time.Time { return &t }

// failingKeys is fakeKeys with one call failing, for one run per failing call.
type failingKeys struct {
	*fakeKeys
	fail  string // List, SetStatus, Delete or LastUsed
	calls []string
}

var errFake = errors.New("fake IAM failure")

func (f *failingKeys) call(name string) error {
	f.calls = append(f.calls, name)
	if f.fail == name {
		return errFake
	}
	return nil
}
func (f *failingKeys) List(ctx context.Context, u string) ([]iamkeys.Key, error) {
	if err := f.call("List"); err != nil {
		return nil, err
	}
	return f.fakeKeys.List(ctx, u)
}
func (f *failingKeys) SetStatus(ctx context.Context, u, id string, active bool) error {
	if err := f.call("SetStatus"); err != nil {
		return err
	}
	return f.fakeKeys.SetStatus(ctx, u, id, active)
}
func (f *failingKeys) Delete(ctx context.Context, u, id string) (bool, error) {
	if err := f.call("Delete"); err != nil {
		return false, err
	}
	return f.fakeKeys.Delete(ctx, u, id)
}
func (f *failingKeys) LastUsed(ctx context.Context, id string) (rotation.KeyUse, error) {
	if err := f.call("LastUsed"); err != nil {
		return rotation.KeyUse{}, err
	}
	return f.fakeKeys.LastUsed(ctx, id)
}

// fakeApprovals is the record's approval request, in memory.
type fakeApprovals struct {
	req rotation.ApprovalRequest
	ok  bool
}

func (f *fakeApprovals) PutApprovalRequest(_ context.Context, _, _ string, req rotation.ApprovalRequest) (string, error) {
	f.req, f.ok = req, true
	return "v-approval", nil
}

func (f *fakeApprovals) PendingApproval(context.Context, string, string) (rotation.ApprovalRequest, bool, error) {
	return f.req, f.ok, nil
}
