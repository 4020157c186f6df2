package b24sim

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newToken returns a 70-hex-digit token shaped like Bitrix24's: the issue
// time as little-endian hex, a portal-specific part, the user id and random
// tail. The shape is kept so that gateways storing tokens in fixed-size
// columns, or logging prefixes, see realistic values.
func newToken(now time.Time, memberID string, userID int) string {
	var ts [4]byte
	binary.LittleEndian.PutUint32(ts[:], uint32(now.Unix()))
	portal := memberID
	if len(portal) < 16 {
		portal = randomHex(8)
	}
	return hex.EncodeToString(ts[:]) + portal[:16] + fmt.Sprintf("%08x", uint32(userID)) + randomHex(19)
}
