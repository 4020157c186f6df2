package password

import (
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery", OWASP)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "correct horse") {
		t.Fatalf("hash %q", h)
	}
	if ok, err := Verify("correct horse battery", h); !ok || err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if ok, _ := Verify("correct horse batterY", h); ok {
		t.Fatal("wrong password accepted")
	}
	h2, _ := Hash("correct horse battery", OWASP)
	if h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA", "$argon2id$v=19$m=8,t=1,p=1$!!$AA"} {
		if _, err := Verify("x", bad); err == nil {
			t.Errorf("%q read as a hash", bad)
		}
	}
}

func TestGenerate(t *testing.T) {
	a, err := Generate(16)
	if err != nil || len(a) != 16 {
		t.Fatalf("%q %v", a, err)
	}
	b, _ := Generate(16)
	if a == b || strings.ContainsAny(a+b, "0O1lI") {
		t.Fatalf("generated %q and %q", a, b)
	}
}
