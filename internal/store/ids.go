package store

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// IDs are 26-character, time-ordered strings (ULID layout: 48 bits of
// milliseconds, 80 random bits, Crockford base32). Ordering by id orders by
// creation, which gives cursor pagination for free on both engines.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

type idGen struct {
	mu     sync.Mutex
	lastMs uint64
	hi     uint16
	lo     uint64
}

// ids is the process-wide generator: monotonic ids need one shared "last
// value", which is the reason this is package state.
var ids idGen

// NewID returns a fresh id, greater than every id this process made before.
func NewID() string {
	ms := uint64(time.Now().UnixMilli())
	ids.mu.Lock()
	if ms <= ids.lastMs {
		ms = ids.lastMs
		ids.lo++
		if ids.lo == 0 {
			ids.hi++
		}
	} else {
		var b [10]byte
		rand.Read(b[:])
		ids.hi = binary.BigEndian.Uint16(b[:2]) & 0x7fff // headroom for increments
		ids.lo = binary.BigEndian.Uint64(b[2:])
		ids.lastMs = ms
	}
	hi, lo := ids.hi, ids.lo
	ids.mu.Unlock()

	var raw [16]byte
	raw[0], raw[1], raw[2], raw[3], raw[4], raw[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	binary.BigEndian.PutUint16(raw[6:8], hi)
	binary.BigEndian.PutUint64(raw[8:], lo)
	return encode(raw)
}

func encode(r [16]byte) string {
	var out [26]byte
	// 128 bits into 26 five-bit groups, most significant first (2 pad bits).
	hi := binary.BigEndian.Uint64(r[:8])
	lo := binary.BigEndian.Uint64(r[8:])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidID reports whether s looks like an id this package makes; handlers
// use it to answer 404 without a query for junk.
func ValidID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') || c == 'I' || c == 'L' || c == 'O' || c == 'U' {
			return false
		}
	}
	return true
}

// IDAt is the smallest id made at moment t: ids compare as strings in time
// order, so "id >= IDAt(t)" selects what was made from t on.
func IDAt(t time.Time) string {
	var raw [16]byte
	ms := uint64(t.UnixMilli())
	raw[0], raw[1], raw[2], raw[3], raw[4], raw[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	return encode(raw)
}
