package metasim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// GET /{waba-id}/message_templates pages with the after cursor while a
// next link is given, and refuses another business's token and unknown
// tokens the way Graph does.
func TestMessageTemplates(t *testing.T) {
	e := newSim(t, Options{})
	e.sim.AddWhatsAppNumber("200000000000001", "300000000000001", "+7 916 000 00 01", "other-token")

	type page struct {
		Data   []Template `json:"data"`
		Paging struct {
			Cursors struct{ After string } `json:"cursors"`
			Next    string                 `json:"next"`
		} `json:"paging"`
	}
	var names []string
	path := "/v25.0/" + testWABA + "/message_templates?limit=3"
	for i := 0; ; i++ {
		st, body := e.call(t, http.MethodGet, path, testWAToken, nil)
		if st != http.StatusOK {
			t.Fatalf("page %d: %d %s", i, st, body)
		}
		var p page
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		for _, d := range p.Data {
			names = append(names, d.Name+":"+d.Status)
		}
		if p.Paging.Next == "" {
			if i != 1 {
				t.Fatalf("%d pages of 3 for 4 templates", i+1)
			}
			break
		}
		u, err := url.Parse(p.Paging.Next)
		if err != nil || u.Query().Get("after") != p.Paging.Cursors.After || strings.Contains(p.Paging.Next, testWAToken) {
			t.Fatalf("next link %q", p.Paging.Next)
		}
		path = "/v25.0/" + testWABA + "/message_templates?limit=3&after=" + url.QueryEscape(p.Paging.Cursors.After)
	}
	if got := strings.Join(names, ","); got != "order_update:APPROVED,spring_sale:APPROVED,appointment_reminder:PENDING,win_back:REJECTED" {
		t.Fatalf("templates: %s", got)
	}

	st, body := e.call(t, http.MethodGet, "/v25.0/"+testWABA+"/message_templates", "other-token", nil)
	if ge := decodeError(t, body); st != http.StatusBadRequest || ge.Error.Code != 100 || ge.Error.Type != "GraphMethodException" {
		t.Errorf("another business's token: %d %s", st, body)
	}
	st, body = e.call(t, http.MethodGet, "/v25.0/"+testWABA+"/message_templates", "EAAG-made-up", nil)
	if ge := decodeError(t, body); st != http.StatusUnauthorized || ge.Error.Code != 190 {
		t.Errorf("unknown token: %d %s", st, body)
	}
}
