package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// NewID returns prefix followed by n characters of the alphabet AWS uses in
// key and principal ids (AKIA…, AIDA…, ASIA…).
func NewID(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	var s strings.Builder
	s.WriteString(prefix)
	for _, c := range b {
		s.WriteByte(idAlphabet[int(c)%len(idAlphabet)])
	}
	return s.String()
}

// NewSecret returns a 40-character secret access key.
func NewSecret() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, 40)
	_, _ = rand.Read(b)
	for i, c := range b {
		b[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(b)
}

// NewUUID returns a random RFC 4122 version 4 UUID, the shape of AWS request ids.
func NewUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ISOTime marshals as AWS's Query-protocol timestamps: 2006-01-02T15:04:05Z.
type ISOTime time.Time

// MarshalText implements encoding.TextMarshaler.
func (t ISOTime) MarshalText() ([]byte, error) {
	return []byte(time.Time(t).UTC().Format("2006-01-02T15:04:05Z")), nil
}

// EpochTime marshals as JSON-protocol timestamps: seconds since the epoch.
type EpochTime time.Time

// MarshalJSON implements json.Marshaler.
func (t EpochTime) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(time.Time(t).UnixMilli())/1000, 'f', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *EpochTime) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("epoch time %s: %w", b, err)
	}
	*t = EpochTime(time.UnixMilli(int64(f * 1000)).UTC())
	return nil
}
