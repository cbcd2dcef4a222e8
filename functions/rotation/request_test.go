package rotation

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The digest is over the input's value without its request: re-encoding
// (key order, spacing, 7.0 for 7, escaping) keeps it, any change of value
// does not.
func TestInputDigest(t *testing.T) {
	t.Parallel()
	base := `{"user":"app","waitDays":7,"targets":[{"type":"secret","name":"a","secretId":"app/k"}]}`
	same := []string{
		`{"targets":[{"name":"a","secretId":"app/k","type":"secret"}],"waitDays":7,"user":"app"}`,
		"{\n  \"user\": \"app\", \"waitDays\": 7.0,\n  \"targets\": [{\"type\":\"secret\",\"name\":\"a\",\"secretId\":\"app\\/k\"}]}",
		`{"user":"\u0061pp","waitDays":7e0,"targets":[{"type":"secret","name":"a","secretId":"app/k"}],"request":{"mac":"x"}}`,
	}
	other := []string{
		`{"user":"app","waitDays":8,"targets":[{"type":"secret","name":"a","secretId":"app/k"}]}`,
		`{"user":"app","waitDays":7,"targets":[{"type":"secret","name":"a","secretId":"app/k2"}]}`,
		`{"user":"app","waitDays":7,"dryRun":false,"targets":[{"type":"secret","name":"a","secretId":"app/k"}]}`,
	}
	want, err := InputDigest([]byte(base))
	if err != nil || len(want) != 64 {
		t.Fatalf("%q %v", want, err)
	}
	for _, s := range same {
		if got, err := InputDigest([]byte(s)); got != want || err != nil {
			t.Errorf("%s: %s (%v), want the same digest", s, got, err)
		}
	}
	for _, s := range other {
		if got, _ := InputDigest([]byte(s)); got == want {
			t.Errorf("%s: the same digest as a different input", s)
		}
	}
	if _, err := InputDigest([]byte(`[1]`)); err == nil {
		t.Error("an array has a digest")
	}
}

func TestSignedRequestRoundTrip(t *testing.T) {
	t.Parallel()
	r := Request{Purpose: RequestPurpose, Execution: "app-1", RequestedBy: "arn:aws:iam::111122223333:user/a", InputSHA256: strings.Repeat("a", 64), At: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)}
	in, err := WithRequest([]byte(`{"user":"app","request":{"old":1}}`), SignedRequest{Request: r, MAC: "bWFj"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := ParseSignedRequest(in)
	if err != nil || !ok || got.MAC != "bWFj" || !bytes.Equal(got.Message(), r.Message()) {
		t.Fatalf("%+v %v %v", got, ok, err)
	}
	if want := `{"purpose":"keyrotator/request/v1","execution":"app-1","requestedBy":"arn:aws:iam::111122223333:user/a","inputSha256":"` + strings.Repeat("a", 64) + `","at":"2026-03-01T03:00:00Z"}`; string(r.Message()) != want {
		t.Errorf("message %s, want the fixed field order %s", r.Message(), want)
	}
	out, _ := WithoutRequest(in)
	if _, ok, _ := ParseSignedRequest(out); ok {
		t.Error("WithoutRequest left the request")
	}
	if n := NewExecutionName("a.b@c", r.At, bytes.NewReader([]byte{1, 2, 3, 4})); n != "a-b-c-20260301T030000Z-01020304" || CheckExecutionName(n) != nil {
		t.Errorf("name %q", n)
	}
	if n := NewExecutionName(strings.Repeat("u", 64), r.At, bytes.NewReader([]byte{1, 2, 3, 4})); len(n) > 80 || CheckExecutionName(n) != nil {
		t.Errorf("long name %q (%d)", n, len(n))
	}
}
