package graph

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SignatureHeader is the header Meta signs webhook deliveries with.
const SignatureHeader = "X-Hub-Signature-256"

// VerifySignature checks an X-Hub-Signature-256 header ("sha256=<hex>")
// against the HMAC-SHA256 of body keyed with the app secret. The body must
// be the bytes exactly as received: Meta escapes non-ASCII and '/', so
// re-encoded JSON never matches. A missing or malformed header, or an empty
// secret, fails verification.
func VerifySignature(appSecret string, body []byte, header string) bool {
	if appSecret == "" {
		return false
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || len(hexSig) != sha256.Size*2 {
		return false
	}
	// Meta sends lowercase hex, but nothing is gained by refusing uppercase.
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns the X-Hub-Signature-256 value for body; simulators and tests
// use it to sign deliveries the way Meta does.
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
