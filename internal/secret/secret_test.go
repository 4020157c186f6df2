package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

func testBox(t *testing.T) *Box {
	t.Helper()
	b, err := NewBox(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	b := testBox(t)
	sealed, err := b.Seal("EAAG-token", "channel:a:access_token")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "EAAG") {
		t.Fatalf("ciphertext leaks plaintext: %s", sealed)
	}
	got, err := b.Open(sealed, "channel:a:access_token")
	if err != nil || got != "EAAG-token" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := b.Seal("EAAG-token", "channel:a:access_token")
	if again == sealed {
		t.Fatal("two seals of one value must differ (random nonce)")
	}
}

func TestOpenRejects(t *testing.T) {
	b := testBox(t)
	sealed, _ := b.Seal("tok", "channel:a:access_token")
	other, _ := NewBox(bytes.Repeat([]byte{8}, KeySize))
	tampered := sealed[:len(sealed)-2] + "AA"
	cases := map[string]func() (string, error){
		"other row":  func() (string, error) { return b.Open(sealed, "channel:b:access_token") },
		"other key":  func() (string, error) { return other.Open(sealed, "channel:a:access_token") },
		"tampered":   func() (string, error) { return b.Open(tampered, "channel:a:access_token") },
		"no prefix":  func() (string, error) { return b.Open("tok", "channel:a:access_token") },
		"bad base64": func() (string, error) { return b.Open("v1:!!!", "x") },
		"too short":  func() (string, error) { return b.Open("v1:AAAA", "x") },
	}
	for name, f := range cases {
		if _, err := f(); err != ErrDecrypt {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
	}
}

func TestKeys(t *testing.T) {
	if _, err := NewBox([]byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
	path := filepath.Join(t.TempDir(), "sub", "secret.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("key not stable across loads: %v", err)
	}
	hex := fmt.Sprintf("%x", k1)
	if k3, err := ParseKey(hex); err != nil || !bytes.Equal(k3, k1) {
		t.Fatalf("hex key: %v", err)
	}
	if _, err := ParseKey("not a key"); err == nil {
		t.Fatal("garbage key accepted")
	}
}

func TestStringRedacts(t *testing.T) {
	s := String("EAAG-secret")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", s)
	j, _ := json.Marshal(struct{ T String }{s})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v", s, s, s), buf.String(), string(j)} {
		if strings.Contains(out, "EAAG") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	if s.Reveal() != "EAAG-secret" {
		t.Fatal("Reveal lost the value")
	}
}
