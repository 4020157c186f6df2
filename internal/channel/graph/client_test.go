package graph

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
)

const secretToken = "EAAG-super-secret-token"

func TestClientPostJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v25.0/123/messages" {
			t.Errorf("got %s %s", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+secretToken {
			t.Errorf("Authorization = %q", got)
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type = %q", got)
		}
		b, _ := io.ReadAll(r.Body)
		if string(b) != `{"a":1}` {
			t.Errorf("body = %s", b)
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()

	c := NewClient(srv.URL+"/", "/v25.0", srv.Client())
	var out struct{ OK bool }
	if err := c.PostJSON(context.Background(), secretToken, "123/messages", map[string]int{"a": 1}, &out); err != nil {
		t.Fatal(err)
	}
	if !out.OK {
		t.Error("response not decoded")
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		sendError bool
		tooLarge  bool
	}{
		{"graph error", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"(#100) Invalid parameter","code":100}}`)
		}, true, false},
		{"bad json on 200", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `<html>`)
		}, false, false},
		{"huge 200", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"x":"`+strings.Repeat("a", MaxJSONBytes)+`"}`)
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := NewClient(srv.URL, "v25.0", srv.Client())
			var out map[string]any
			err := c.GetJSON(context.Background(), secretToken, "me", nil, &out)
			if err == nil {
				t.Fatal("no error")
			}
			var se *channel.SendError
			if errors.As(err, &se) != tt.sendError {
				t.Errorf("SendError = %v, want %v (%v)", !tt.sendError, tt.sendError, err)
			}
			if errors.Is(err, channel.ErrTooLarge) != tt.tooLarge {
				t.Errorf("ErrTooLarge mismatch: %v", err)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("token leaked into error: %v", err)
			}
		})
	}
}

func TestClientNetworkErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // connection refused from now on
	c := NewClient(srv.URL, "v25.0", nil)
	err := c.GetJSON(context.Background(), secretToken, "123", nil, nil)
	if err == nil {
		t.Fatal("no error")
	}
	var se *channel.SendError
	if errors.As(err, &se) {
		t.Errorf("network error must not be a SendError: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "graph: get 123: ") || strings.Contains(err.Error(), secretToken) {
		t.Errorf("error = %v", err)
	}

	_, err = c.Download(context.Background(), "", srv.URL+"/file?signature=abc", 10)
	if err == nil || strings.Contains(err.Error(), "signature") {
		t.Errorf("download error = %v", err)
	}
}

func TestDownload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth":
			if r.Header.Get("Authorization") != "Bearer "+secretToken {
				w.WriteHeader(401)
				return
			}
			w.Header().Set("Content-Type", "image/jpeg")
			io.WriteString(w, "0123456789")
		case "/public":
			if r.Header.Get("Authorization") != "" {
				t.Error("token sent to a public link")
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			io.WriteString(w, "abc")
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length
			io.WriteString(w, "0123456789")
		case "/gone":
			w.WriteHeader(404)
			io.WriteString(w, "URL signature expired")
		}
	}))
	defer srv.Close()
	c := NewClient(srv.URL, "v25.0", srv.Client())
	ctx := context.Background()

	d, err := c.Download(ctx, secretToken, srv.URL+"/auth", 10)
	if err != nil || string(d.Data) != "0123456789" || d.MimeType != "image/jpeg" {
		t.Errorf("auth download: %v %+v", err, d)
	}
	d, err = c.Download(ctx, "", srv.URL+"/public", 10)
	if err != nil || string(d.Data) != "abc" || d.MimeType != "" {
		t.Errorf("public download: %v %+v", err, d)
	}
	for _, p := range []string{"/auth", "/chunked"} {
		if _, err := c.Download(ctx, secretToken, srv.URL+p, 9); !errors.Is(err, channel.ErrTooLarge) {
			t.Errorf("%s over the cap: %v", p, err)
		}
	}
	var se *channel.SendError
	if _, err := c.Download(ctx, "", srv.URL+"/auth", 10); !errors.As(err, &se) || se.Outcome != channel.OutcomeChannelError {
		t.Errorf("401 download: %v", err)
	}
	if _, err := c.Download(ctx, "", srv.URL+"/gone", 10); !errors.As(err, &se) || se.Outcome != channel.OutcomeFailed || se.Err.Message != "URL signature expired" {
		t.Errorf("404 download: %v", err)
	}
	if _, err := c.Download(ctx, "", srv.URL+"/auth", 0); err == nil {
		t.Error("zero limit accepted")
	}
}
