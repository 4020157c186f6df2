package whatsapp

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

const wabaID = "104857392017465"

// accountServer plays Graph's number node and a WABA whose numbers come in
// two pages, the second holding phoneID; status 500 answers everything
// with a server error when set.
func accountServer(t *testing.T, status *int) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *status != 0 {
			w.WriteHeader(*status)
			io.WriteString(w, `{"error":{"message":"An unexpected error has occurred.","type":"OAuthException","code":2}}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190}}`)
			return
		}
		switch {
		case r.URL.Path == "/v25.0/"+phoneID:
			io.WriteString(w, `{"verified_name":"Shop","display_phone_number":"+7 701-234-5678","id":"`+phoneID+`"}`)
		case r.URL.Path == "/v25.0/"+wabaID+"/phone_numbers" && r.URL.Query().Get("after") == "":
			io.WriteString(w, `{"data":[{"id":"100000000000001"}],"paging":{"cursors":{"before":"QQ","after":"QUZU"},"next":"https://graph.facebook.com/next"}}`)
		case r.URL.Path == "/v25.0/"+wabaID+"/phone_numbers" && r.URL.Query().Get("after") == "QUZU":
			io.WriteString(w, `{"data":[{"id":"`+phoneID+`"}],"paging":{"cursors":{"before":"QUZU","after":"QUZV"}}}`)
		case r.URL.Path == "/v25.0/300000000000001/phone_numbers":
			io.WriteString(w, `{"data":[{"id":"100000000000009"}],"paging":{"cursors":{"before":"QQ","after":"QQ"}}}`)
		default:
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"Unsupported get request. Object with ID 'x' does not exist, cannot be loaded due to missing permissions, or does not support this operation.","type":"GraphMethodException","code":100,"error_subcode":33}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return NewClient(graph.NewClient(srv.URL, "v25.0", srv.Client()))
}

func TestVerifyAccount(t *testing.T) {
	var status int
	c := accountServer(t, &status)
	ctx := context.Background()
	acc, err := c.VerifyAccount(ctx, channel.Credentials{AccountID: phoneID, AccessToken: token}, wabaID)
	if err != nil {
		t.Fatal(err)
	}
	if acc.ID != phoneID || acc.Owner != wabaID || acc.DisplayPhone != "+7 701-234-5678" || acc.Name != "Shop" {
		t.Fatalf("account %+v", acc)
	}
	refused := []struct {
		name  string
		creds channel.Credentials
		waba  string
	}{
		{"another token", channel.Credentials{AccountID: phoneID, AccessToken: "EAAG-other"}, wabaID},
		{"unknown number", channel.Credentials{AccountID: "999", AccessToken: token}, wabaID},
		{"number not in the WABA", channel.Credentials{AccountID: phoneID, AccessToken: token}, "300000000000001"},
		{"unknown WABA", channel.Credentials{AccountID: phoneID, AccessToken: token}, "999"},
		{"no WABA", channel.Credentials{AccountID: phoneID, AccessToken: token}, ""},
	}
	for _, r := range refused {
		if _, err := c.VerifyAccount(ctx, r.creds, r.waba); !errors.Is(err, channel.ErrAccountNotProven) {
			t.Errorf("%s: %v, want ErrAccountNotProven", r.name, err)
		}
	}
	// Meta not answering proves nothing either way.
	status = 503
	if _, err := c.VerifyAccount(ctx, channel.Credentials{AccountID: phoneID, AccessToken: token}, wabaID); err == nil || errors.Is(err, channel.ErrAccountNotProven) {
		t.Errorf("a 503 gave %v; want an error that is not a refusal", err)
	}
}
