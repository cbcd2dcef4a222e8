package rotation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Credential is an access key with its secret. It lives only between the
// calls that read and write it: it never prints, logs or marshals its
// secret (I1), so a careless %v, slog attribute or json.Marshal cannot leak.
type Credential struct {
	AccessKeyID string
	secret      SecretValue
}

// NewCredential pairs a key id with its secret.
func NewCredential(id, secret string) Credential {
	return Credential{AccessKeyID: id, secret: NewSecretValue(secret)}
}

// Secret is the secret access key, for the one call that needs it.
func (c Credential) Secret() string { return c.secret.Reveal() }

// SecretValue is the secret access key, unprintable.
func (c Credential) SecretValue() SecretValue { return c.secret }

// Valid reports whether both halves are present.
func (c Credential) Valid() bool { return c.AccessKeyID != "" && !c.secret.Empty() }

// String implements fmt.Stringer without the secret.
func (c Credential) String() string { return c.AccessKeyID + " (secret redacted)" }

// GoString implements fmt.GoStringer without the secret.
func (c Credential) GoString() string { return "rotation.Credential{" + c.String() + "}" }

// Format implements fmt.Formatter without the secret, for every verb.
func (c Credential) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(c.GoString()))
		return
	}
	_, _ = f.Write([]byte(c.String()))
}

// MarshalText implements encoding.TextMarshaler without the secret.
func (c Credential) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// LogValue implements slog.LogValuer without the secret.
func (c Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON writes the key id only.
func (c Credential) MarshalJSON() ([]byte, error) {
	return []byte(`{"accessKeyId":"` + c.AccessKeyID + `"}`), nil
}

// Token derives a stable idempotency token (a UUID-shaped string, as Secrets
// Manager's ClientRequestToken wants) from the execution and the step, so a
// retried step repeats the same write instead of making a second one (I5).
func Token(execution, step string) string {
	sum := sha256.Sum256([]byte(execution + "\x00" + step))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
