package instagram

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

func TestFetchMedia(t *testing.T) {
	file := bytes.Repeat([]byte("x"), 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("token sent to the CDN")
		}
		switch r.URL.Path {
		case "/ig_messaging_cdn/":
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write(file)
		default:
			w.WriteHeader(403)
			w.Write([]byte("URL signature expired"))
		}
	}))
	defer srv.Close()
	c := NewClient(graph.NewClient("https://graph.instagram.com", "v25.0", srv.Client()))
	ctx := context.Background()
	m := &channel.Media{URL: srv.URL + "/ig_messaging_cdn/?asset_id=18012345678901234&signature=FakeSig_Abc123"}

	d, err := c.FetchMedia(ctx, creds, m, 100)
	if err != nil || !bytes.Equal(d.Data, file) || d.MimeType != "image/jpeg" {
		t.Errorf("fetch: %v %+v", err, d)
	}
	if _, err := c.FetchMedia(ctx, creds, m, 99); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("over the cap: %v", err)
	}
	var se *channel.SendError
	if _, err := c.FetchMedia(ctx, creds, &channel.Media{URL: srv.URL + "/expired"}, 100); !errors.As(err, &se) || se.Outcome != channel.OutcomeFailed {
		t.Errorf("expired link: %v", err)
	}
	if _, err := c.FetchMedia(ctx, creds, &channel.Media{ProviderID: "1"}, 100); err == nil {
		t.Error("no URL accepted")
	}
}

func TestUploadMediaUnsupported(t *testing.T) {
	c := NewClient(graph.NewClient("", "", nil))
	if _, err := c.UploadMedia(context.Background(), creds, "image/jpeg", "a.jpg", []byte("x")); !errors.Is(err, channel.ErrUnsupported) {
		t.Errorf("got %v", err)
	}
}
