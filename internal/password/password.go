// Package password hashes and checks the cabinet's passwords with
// argon2id, kept as PHC strings ($argon2id$v=19$m=…,t=…,p=…$salt$hash) so
// that stronger parameters later still read the hashes made before.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's costs.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// OWASP is the OWASP Password Storage Cheat Sheet's argon2id minimum:
// 19 MiB, 2 passes, 1 lane.
var OWASP = Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// ErrMalformed is a stored hash that is not an argon2id PHC string.
var ErrMalformed = errors.New("password: malformed hash")

var b64 = base64.RawStdEncoding

// Hash returns the PHC string of plain with a fresh salt.
func Hash(plain string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key := argon2.IDKey([]byte(plain), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether plain matches the PHC string, comparing in
// constant time with the parameters the hash was made with.
func Verify(plain, phc string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, ErrMalformed
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrMalformed
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Threads == 0 {
		return false, ErrMalformed
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, ErrMalformed
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, ErrMalformed
	}
	got := argon2.IDKey([]byte(plain), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummy is a hash of nothing anyone types, checked when the e-mail is
// unknown so that the answer takes as long as a wrong password's.
var dummy = sync.OnceValue(func() string {
	h, err := Hash("\x00no such user\x00", OWASP)
	if err != nil {
		panic(err) // only crypto/rand failing, which Go treats as fatal
	}
	return h
})

// Waste spends the time of one Verify, for a sign-in whose e-mail matched
// nobody.
func Waste(plain string) {
	_, _ = Verify(plain, dummy())
}

// Generate returns a random password of n characters from an alphabet
// without look-alikes (no 0/O, 1/l/I), for a user created without one.
func Generate(n int) (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
	// Bytes from 220 up are dropped: 220 is 4×55, so every character
	// is equally likely.
	const limit = 256 / len(alphabet) * len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("password: generate: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
