package graph

import (
	"os"
	"testing"
)

func TestVerifySignature(t *testing.T) {
	wa, err := os.ReadFile("testdata/wa-inbound-text.json")
	if err != nil {
		t.Fatal(err)
	}
	ig, err := os.ReadFile("testdata/ig-inbound-text.json")
	if err != nil {
		t.Fatal(err)
	}
	const (
		secret = "test_app_secret"
		waSig  = "sha256=b0a71c18faa4863d31eb94b261908282013da831fdde602ca7236d3012b6b486"
		igSig  = "sha256=95982ab87250ec7c7fc4f357f3804449b960b08a34250ceb172e38c1149b6b51"
	)
	if len(wa) != 1028 || len(ig) != 606 {
		t.Fatalf("fixtures changed: %d and %d bytes", len(wa), len(ig))
	}
	tampered := append([]byte{}, wa...)
	tampered[100] ^= 1

	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"wa vector", secret, wa, waSig, true},
		{"ig vector", secret, ig, igSig, true},
		{"surrounding space", secret, wa, " " + waSig + " ", true},
		{"uppercase hex", secret, wa, "sha256=B0A71C18FAA4863D31EB94B261908282013DA831FDDE602CA7236D3012B6B486", true},
		{"wrong secret", "other", wa, waSig, false},
		{"empty secret", "", wa, waSig, false},
		{"tampered body", secret, tampered, waSig, false},
		{"signature of other body", secret, wa, igSig, false},
		{"missing header", secret, wa, "", false},
		{"no prefix", secret, wa, waSig[len("sha256="):], false},
		{"sha1 prefix", secret, wa, "sha1=" + waSig[len("sha256="):], false},
		{"short", secret, wa, waSig[:len(waSig)-2], false},
		{"not hex", secret, wa, "sha256=" + string(make([]byte, 64)), false},
		{"prefix only", secret, wa, "sha256=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSignRoundTrip(t *testing.T) {
	body := []byte(`{"object":"instagram","entry":[]}`)
	if !VerifySignature("s3cret", body, Sign("s3cret", body)) {
		t.Fatal("Sign output does not verify")
	}
}
