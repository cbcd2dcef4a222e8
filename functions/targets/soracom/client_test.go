package soracom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI is the smallest SORACOM that exercises the client's wire
// handling: /auth, one authenticated route, scripted answers.
type fakeAPI struct {
	auths   atomic.Int32
	calls   atomic.Int32
	token   atomic.Value // the token /auth last issued
	answers []func(w http.ResponseWriter, r *http.Request) bool
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/auth" {
		var in struct {
			AuthKeyID, AuthKey  string
			TokenTimeoutSeconds int64
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.AuthKey != "secret-good" || in.TokenTimeoutSeconds != 900 {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":"AUM0001","message":"Invalid authKeyId or authKey"}`))
			return
		}
		n := f.auths.Add(1)
		tok := fmt.Sprintf("token-%d", n)
		f.token.Store(tok)
		_ = json.NewEncoder(w).Encode(map[string]string{"apiKey": "api-key", "token": tok, "operatorId": "OP0000000001"})
		return
	}
	if r.Header.Get("X-Soracom-API-Key") != "api-key" || r.Header.Get("X-Soracom-Token") != f.token.Load() {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"code":"SEM0001","message":"invalid token"}`))
		return
	}
	n := int(f.calls.Add(1)) - 1
	if n < len(f.answers) && f.answers[n](w, r) {
		return
	}
	_, _ = w.Write([]byte(`[]`))
}

func client(t *testing.T, f *fakeAPI, key string, maxWait time.Duration) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return NewClient(srv.URL+"/v1", "keyId-test", key, 15*time.Minute, maxWait)
}

func status(code int, body string, headers ...string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, _ *http.Request) bool {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
		return true
	}
}

func TestClientWire(t *testing.T) {
	t.Parallel()
	expire := func(f *fakeAPI) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			f.token.Store("expired") // SORACOM forgot the token: 401, then a new /auth
			return status(401, `{"code":"SEM0001","message":"token expired"}`)(w, r)
		}
	}
	tests := []struct {
		name      string
		key       string
		maxWait   time.Duration
		answers   func(f *fakeAPI) []func(http.ResponseWriter, *http.Request) bool
		wantAuths int32
		wantErr   string // "" = success
		wantOp    string
		minTime   time.Duration
	}{
		{name: "one token serves every call", key: "secret-good", wantAuths: 1},
		{name: "an expired token is renewed once", key: "secret-good", wantAuths: 2,
			answers: func(f *fakeAPI) []func(http.ResponseWriter, *http.Request) bool {
				return []func(http.ResponseWriter, *http.Request) bool{expire(f)}
			}},
		{name: "a bad auth key fails at once", key: "secret-bad", wantErr: "401 AUM0001", wantOp: "Auth:auth"},
		{name: "a 429 is waited out for the seconds SORACOM says", key: "secret-good", maxWait: 3 * time.Second, wantAuths: 1, minTime: time.Second,
			answers: func(*fakeAPI) []func(http.ResponseWriter, *http.Request) bool {
				return []func(http.ResponseWriter, *http.Request) bool{status(429, `{"code":"COM0009","message":"rate limit"}`,
					"X-Soracom-Ratelimit-Limit", "60", "X-Soracom-Ratelimit-Remaining", "0", "X-Soracom-Ratelimit-Seconds-Before-Refresh", "1")}
			}},
		{name: "a 429 past the budget is returned", key: "secret-good", maxWait: 500 * time.Millisecond, wantErr: "429 COM0009", wantOp: "Credential:listCredentials",
			answers: func(*fakeAPI) []func(http.ResponseWriter, *http.Request) bool {
				return []func(http.ResponseWriter, *http.Request) bool{status(429, `{"code":"COM0009","message":"rate limit"}`, "X-Soracom-Ratelimit-Seconds-Before-Refresh", "30")}
			}},
		{name: "a load balancer's plain text is UNK0001", key: "secret-good", wantErr: "502 UNK0001: Bad Gateway", wantOp: "Credential:listCredentials",
			answers: func(*fakeAPI) []func(http.ResponseWriter, *http.Request) bool {
				return []func(http.ResponseWriter, *http.Request) bool{status(502, "Bad Gateway")}
			}},
		{name: "a 403 names the operation", key: "secret-good", wantErr: "403 SEM0049", wantOp: "Credential:listCredentials",
			answers: func(*fakeAPI) []func(http.ResponseWriter, *http.Request) bool {
				return []func(http.ResponseWriter, *http.Request) bool{status(403, `{"code":"SEM0049","message":"not allowed"}`)}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPI{}
			if tt.answers != nil {
				f.answers = tt.answers(f)
			}
			c := client(t, f, tt.key, tt.maxWait)
			start := time.Now()
			_, err := c.ListCredentials(context.Background())
			if err == nil {
				_, err = c.ListCredentials(context.Background()) // the token is kept
			}
			took := time.Since(start)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			} else {
				var ae *APIError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.wantErr) || ae.Operation != tt.wantOp {
					t.Fatalf("err = %v, want %q from %s", err, tt.wantErr, tt.wantOp)
				}
			}
			if tt.wantErr == "" && f.auths.Load() != tt.wantAuths {
				t.Errorf("%d /auth calls, want %d", f.auths.Load(), tt.wantAuths)
			}
			if took < tt.minTime {
				t.Errorf("took %s, want at least %s (the rate limit's wait)", took, tt.minTime)
			}
			if strings.Contains(fmt.Sprint(err), "secret-") || strings.Contains(c.String(), "secret-") {
				t.Errorf("the auth key leaks: %v / %s", err, c)
			}
		})
	}
}

func TestListGroupsFollowsNextKey(t *testing.T) {
	t.Parallel()
	var seen []string
	page := func(ids ...string) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			seen = append(seen, r.URL.Query().Get("limit")+"/"+r.URL.Query().Get("last_evaluated_key"))
			var groups []map[string]any
			for _, id := range ids {
				groups = append(groups, map[string]any{"groupId": id, "configuration": map[string]any{}})
			}
			if len(ids) == 2 {
				w.Header().Set("X-Soracom-Next-Key", ids[1])
			}
			_ = json.NewEncoder(w).Encode(groups)
			return true
		}
	}
	f := &fakeAPI{answers: []func(http.ResponseWriter, *http.Request) bool{page("g1", "g2"), page("g3", "g4"), page("g5")}}
	groups, err := client(t, f, "secret-good", 0).ListGroups(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range groups {
		ids = append(ids, g.GroupID)
	}
	if got := strings.Join(ids, ","); got != "g1,g2,g3,g4,g5" {
		t.Errorf("groups %s", got)
	}
	if got := strings.Join(seen, " "); got != "2/ 2/g2 2/g4" {
		t.Errorf("pages asked for: %s", got)
	}
}

func TestListGroupsRefusesALoopingNextKey(t *testing.T) {
	t.Parallel()
	same := func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("X-Soracom-Next-Key", "g1")
		_, _ = w.Write([]byte(`[{"groupId":"g1","configuration":{}}]`))
		return true
	}
	f := &fakeAPI{answers: []func(http.ResponseWriter, *http.Request) bool{same, same, same}}
	if _, err := client(t, f, "secret-good", 0).ListGroups(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "repeats") {
		t.Fatalf("err = %v", err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("%d calls before giving up, want 2", n)
	}
}

func TestCredentialRefKeepsItsShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stored any
		want   string
	}{
		{"old-cred", `"new-cred"`},
		{map[string]any{"$credentialsId": "old-cred"}, `{"$credentialsId":"new-cred"}`},
		{map[string]any{"$credentialsId": "old-cred", "note": "x"}, `{"$credentialsId":"new-cred","note":"x"}`},
	}
	for _, tt := range tests {
		if got := credentialRef(tt.stored); got != "old-cred" {
			t.Errorf("credentialRef(%v) = %q", tt.stored, got)
		}
		b, _ := json.Marshal(withRef(tt.stored, "new-cred"))
		if string(b) != tt.want {
			t.Errorf("withRef(%v) = %s, want %s", tt.stored, b, tt.want)
		}
	}
	if credentialRef(42) != "" || credentialRef(map[string]any{"id": "x"}) != "" {
		t.Error("a value that names no credential must give none")
	}
}

func TestFreeID(t *testing.T) {
	t.Parallel()
	taken := map[string]bool{"p-20261201": true, "p-20261201-2": true}
	if got := freeID("p-20261201", taken); got != "p-20261201-3" {
		t.Errorf("freeID = %s", got)
	}
	if got := freeID("p-20261202", taken); got != "p-20261202" {
		t.Errorf("freeID = %s", got)
	}
}
