package rotation

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
)

// Redacted is what a SecretValue prints, marshals and logs as.
const Redacted = "[redacted]"

// SecretValue is a value read from a secret: a secret access key, an Auth0
// client secret, a SORACOM auth key, any field of an application secret. It
// cannot print (I1): every fmt verb, slog, encoding/json and encoding.TextMarshaler
// yield Redacted. Reveal is the one way to the raw value, for the call that
// must send it.
//
// The value sits behind a pointer: a SecretValue (or a Credential) in an
// unexported field of some struct is printed by fmt through reflection,
// without its methods, and reflection prints a nested pointer as an
// address, never what it points to. Compare with Equal, not ==.
type SecretValue struct{ p *string }

// NewSecretValue wraps a value read from a secret.
func NewSecretValue(v string) SecretValue { return SecretValue{p: &v} }

// Reveal is the raw value, for the one call that sends it.
func (s SecretValue) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// Empty reports whether no value is held.
func (s SecretValue) Empty() bool { return s.Reveal() == "" }

// Equal compares two values without revealing either.
func (s SecretValue) Equal(o SecretValue) bool { return s.Reveal() == o.Reveal() }

// String implements fmt.Stringer.
func (SecretValue) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (SecretValue) GoString() string { return "rotation.SecretValue{" + Redacted + "}" }

// Format implements fmt.Formatter: every verb, flag and width prints Redacted.
func (SecretValue) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte("rotation.SecretValue{" + Redacted + "}"))
		return
	}
	_, _ = f.Write([]byte(Redacted))
}

// MarshalJSON implements json.Marshaler.
func (SecretValue) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// UnmarshalJSON reads a JSON string (a connection secret's field).
func (s *SecretValue) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("a secret's field is not a string") // never the value
	}
	s.p = &v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (SecretValue) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue implements slog.LogValuer.
func (SecretValue) LogValue() slog.Value { return slog.StringValue(Redacted) }

var accessKeyIDShape = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(AKIA|ASIA)[A-Z0-9]{16}$`) })

// ShownKeyID is v if it has the shape of an access key id (AKIA or ASIA and
// 16 upper-case alphanumerics, which a 40-character secret access key never
// has), and "" otherwise: the only value read from a secret that may be shown.
func ShownKeyID(v SecretValue) string {
	if s := v.Reveal(); accessKeyIDShape().MatchString(s) {
		return s
	}
	return ""
}
