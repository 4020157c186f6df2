package crmhttp

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestReadCapped(t *testing.T) {
	got, err := ReadCapped(strings.NewReader("12345"), 5)
	if err != nil || string(got) != "12345" {
		t.Fatalf("at the cap: %q %v", got, err)
	}
	got, err = ReadCapped(strings.NewReader("123456"), 5)
	if err == nil || string(got) != "12345" {
		t.Fatalf("over the cap: %q %v", got, err)
	}
}

func TestStripURLHidesTheURL(t *testing.T) {
	_, err := http.Get("http://127.0.0.1:1/rest/crm.contact.list?auth=secret-token")
	if err == nil {
		t.Skip("something answers on port 1")
	}
	if !strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("the test needs an error that carries the URL: %v", err)
	}
	if s := StripURL(err).Error(); strings.Contains(s, "secret-token") {
		t.Fatalf("the token survived: %s", s)
	}
	plain := errors.New("plain")
	if StripURL(plain) != plain {
		t.Fatal("an error without a URL changed")
	}
}
