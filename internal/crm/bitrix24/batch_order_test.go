package bitrix24

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Bitrix24 runs batch commands in the order of the cmd object's keys; a
// command named "comment0" must still run after "entity" when it was given
// after it.
func TestBatchKeepsCommandOrder(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"result":{"result":{"entity":5,"comment0":7},"result_error":[],"result_total":[],"result_next":[],"result_time":[]}}`)
	}))
	defer srv.Close()
	tokens := NewMemoryTokenStore()
	tokens.Put(Credentials{IntegrationID: "i1", ClientEndpoint: srv.URL + "/rest/", AccessToken: "a", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)})
	c := NewClient(ClientOptions{HTTP: srv.Client(), Tokens: tokens, AllowInsecure: true})
	_, err := c.Batch(context.Background(), "i1", []BatchCommand{
		{Name: "entity", Method: "crm.deal.add", Params: map[string]any{"fields": map[string]any{"TITLE": "x"}}},
		{Name: "comment0", Method: "crm.timeline.comment.add", Params: map[string]any{"fields": map[string]any{"ENTITY_ID": "$result[entity]"}}},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	e, c0 := strings.Index(body, `"entity"`), strings.Index(body, `"comment0"`)
	if e < 0 || c0 < 0 || e > c0 {
		t.Fatalf("commands out of order in the request: %s", body)
	}
}
