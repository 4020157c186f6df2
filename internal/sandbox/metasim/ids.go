package metasim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// NewWAMID returns a fresh WhatsApp message id. Real wamids are base64 of a
// small protobuf that embeds the customer's number; mimicking that keeps ids
// the same length and alphabet (including '=' padding and '+' '/') as
// production, which matters for gateways that store or index them.
func NewWAMID(waID string) string {
	var b strings.Builder
	b.WriteString("\x1c\x18")
	b.WriteByte(byte(len(waID)))
	b.WriteString(waID)
	b.WriteString("\x15\x02\x00\x12\x18\x14")
	b.WriteString("3A" + strings.ToUpper(randomHex(9)))
	b.WriteString("\x00")
	return "wamid." + base64.StdEncoding.EncodeToString([]byte(b.String()))
}

// newIGMID returns an Instagram message id shaped like production ones:
// unpadded base64 of "ig_item:1:IGMessageID:<account>:<random digits>".
func newIGMID(igUserID string) string {
	raw := "ig_item:1:IGMessageID:" + igUserID + ":" + randomDigits(39)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// newMediaID returns a numeric media id. Graph ids are numeric strings but
// must never be treated as integers by clients, so 16 digits (beyond what a
// float64 represents exactly) is a useful trap.
func newMediaID() string { return randomDigits(16) }

func newFBTraceID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [23]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomDigits returns n random decimal digits without a leading zero.
func randomDigits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if n > 0 && b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}
