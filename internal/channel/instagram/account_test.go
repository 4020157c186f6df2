package instagram

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

func TestVerifyAccount(t *testing.T) {
	const igID = "17841405822304914"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer "+token:
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100,"error_subcode":33}}`)
		case r.URL.Path == "/v25.0/"+igID && r.URL.Query().Get("fields") == "id,username":
			io.WriteString(w, `{"id":"`+igID+`","username":"shop"}`)
		case r.URL.Path == "/v25.0/555":
			// An id that resolves to something else (a Page).
			io.WriteString(w, `{"id":"556"}`)
		default:
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	c := NewClient(graph.NewClient(srv.URL, "v25.0", srv.Client()))
	ctx := context.Background()
	acc, err := c.VerifyAccount(ctx, channel.Credentials{AccountID: igID, AccessToken: token}, "")
	if err != nil || acc.ID != igID || acc.Name != "shop" {
		t.Fatalf("%+v %v", acc, err)
	}
	for _, creds := range []channel.Credentials{{AccountID: igID, AccessToken: "IGAA-other"}, {AccountID: "555", AccessToken: token}} {
		if _, err := c.VerifyAccount(ctx, creds, ""); !errors.Is(err, channel.ErrAccountNotProven) {
			t.Errorf("%s: %v, want ErrAccountNotProven", creds.AccountID, err)
		}
	}
	if _, err := c.VerifyAccount(ctx, channel.Credentials{AccountID: "777", AccessToken: token}, ""); err == nil || errors.Is(err, channel.ErrAccountNotProven) {
		t.Errorf("a 500 gave %v; want an error that is not a refusal", err)
	}
}
