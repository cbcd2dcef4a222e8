// Package sigv4 verifies AWS Signature Version 4 on incoming requests, the way
// AWS does, so the sandbox refuses what AWS would refuse.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Auth is what the Authorization header (or presigned query) says about a request.
type Auth struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	Time          time.Time // X-Amz-Date
	SecurityToken string
}

// Errors the caller maps to AWS error codes.
var (
	// ErrMissing means the request carries no SigV4 authentication at all.
	ErrMissing = errors.New("missing authentication token")
	// ErrIncomplete means the Authorization header is malformed.
	ErrIncomplete = errors.New("incomplete signature")
	// ErrMismatch means the signature does not match the one computed with the key's secret.
	ErrMismatch = errors.New("signature does not match")
	// ErrExpired means the request time is too far from the server's.
	ErrExpired = errors.New("signature expired")
)

const algorithm = "AWS4-HMAC-SHA256"

// Parse reads the SigV4 authentication of r without checking it.
func Parse(r *http.Request) (Auth, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Get("X-Amz-Algorithm") != "" {
			return parsePresigned(r)
		}
		return Auth{}, ErrMissing
	}
	if !strings.HasPrefix(h, algorithm+" ") {
		return Auth{}, fmt.Errorf("%w: unsupported algorithm", ErrIncomplete)
	}
	var a Auth
	for part := range strings.SplitSeq(strings.TrimPrefix(h, algorithm+" "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Auth{}, fmt.Errorf("%w: %q", ErrIncomplete, part)
		}
		switch k {
		case "Credential":
			if err := a.setCredential(v); err != nil {
				return Auth{}, err
			}
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		}
	}
	if a.AccessKeyID == "" || len(a.SignedHeaders) == 0 || a.Signature == "" {
		return Auth{}, fmt.Errorf("%w: Authorization header requires Credential, SignedHeaders and Signature", ErrIncomplete)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		amzDate = r.Header.Get("Date")
	}
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return Auth{}, fmt.Errorf("%w: X-Amz-Date %q", ErrIncomplete, amzDate)
	}
	a.Time = t
	a.SecurityToken = r.Header.Get("X-Amz-Security-Token")
	return a, nil
}

func parsePresigned(r *http.Request) (Auth, error) {
	q := r.URL.Query()
	var a Auth
	if q.Get("X-Amz-Algorithm") != algorithm {
		return Auth{}, fmt.Errorf("%w: unsupported algorithm", ErrIncomplete)
	}
	if err := a.setCredential(q.Get("X-Amz-Credential")); err != nil {
		return Auth{}, err
	}
	a.SignedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	a.Signature = q.Get("X-Amz-Signature")
	t, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return Auth{}, fmt.Errorf("%w: X-Amz-Date", ErrIncomplete)
	}
	a.Time = t
	a.SecurityToken = q.Get("X-Amz-Security-Token")
	return a, nil
}

func (a *Auth) setCredential(v string) error {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return fmt.Errorf("%w: credential %q is not <key>/<date>/<region>/<service>/aws4_request", ErrIncomplete, v)
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// MaxSkew is how far a request's time may be from the server's, as in AWS.
const MaxSkew = 15 * time.Minute

// Verify checks a's signature over r and body with secret. now is the
// server's wall clock (real time: clients sign with theirs).
func Verify(r *http.Request, body []byte, a Auth, secret string, now time.Time) error {
	if d := now.Sub(a.Time); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: request time %s is more than %s from server time %s",
			ErrExpired, a.Time.Format(time.RFC3339), MaxSkew, now.UTC().Format(time.RFC3339))
	}
	if declared := r.Header.Get("X-Amz-Content-Sha256"); isHash(declared) && declared != hexSHA256(body) {
		// The header declares a payload other than the one that came: AWS
		// hashes what it received, so the signature cannot match.
		return ErrMismatch
	}
	want := Sign(r, body, a, secret)
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return ErrMismatch
	}
	return nil
}

// Sign computes the signature a client holding secret would have sent for r.
func Sign(r *http.Request, body []byte, a Auth, secret string) string {
	scope := strings.Join([]string{a.Date, a.Region, a.Service, "aws4_request"}, "/")
	creq := canonicalRequest(r, body, a)
	sts := strings.Join([]string{algorithm, a.Time.UTC().Format("20060102T150405Z"), scope, hexSHA256([]byte(creq))}, "\n")
	k := hmacSHA256([]byte("AWS4"+secret), a.Date)
	k = hmacSHA256(k, a.Region)
	k = hmacSHA256(k, a.Service)
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, sts))
}

func canonicalRequest(r *http.Request, body []byte, a Auth) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r, a.Service))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, name := range a.SignedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(a.SignedHeaders, ";"))
	b.WriteByte('\n')
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		if r.URL.Query().Get("X-Amz-Signature") != "" {
			payload = "UNSIGNED-PAYLOAD"
		} else {
			payload = hexSHA256(body)
		}
	}
	b.WriteString(payload)
	return b.String()
}

// canonicalURI is the path as sent, escaped once more: every service but S3
// double-encodes (the SDKs' DisableURIPathEscaping=false).
func canonicalURI(r *http.Request, service string) string {
	p := r.URL.EscapedPath()
	if p == "" {
		return "/"
	}
	if service == "s3" {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = escape(s)
	}
	return strings.Join(segs, "/")
}

func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		if k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, kv{escape(k), escape(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return fmt.Sprint(r.ContentLength)
	}
	vals := r.Header.Values(name)
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

// escape is RFC 3986 percent-encoding of everything but unreserved characters.
func escape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// isHash says whether s is a hex SHA-256 (not UNSIGNED-PAYLOAD or a
// streaming marker).
func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
