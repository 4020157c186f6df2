package metasim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestAccountReads(t *testing.T) {
	e := newSim(t, Options{})
	// A second business in another WABA, with its own token.
	e.sim.AddWhatsAppNumber("200000000000001", "300000000000001", "+7 916 000 00 01", "other-token")

	t.Run("own number", func(t *testing.T) {
		st, body := e.call(t, http.MethodGet, "/v25.0/"+testPhoneID+"?fields=id,display_phone_number,verified_name", testWAToken, nil)
		if st != http.StatusOK {
			t.Fatalf("%d %s", st, body)
		}
		var n map[string]string
		if err := json.Unmarshal(body, &n); err != nil {
			t.Fatal(err)
		}
		if n["id"] != testPhoneID || n["display_phone_number"] != "+77012345678" || n["verified_name"] == "" {
			t.Fatalf("phone number node: %s", body)
		}
	})
	t.Run("own WABA lists the number", func(t *testing.T) {
		st, body := e.call(t, http.MethodGet, "/v25.0/"+testWABA+"/phone_numbers", testWAToken, nil)
		if st != http.StatusOK {
			t.Fatalf("%d %s", st, body)
		}
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			Paging struct {
				Cursors struct{ Before, After string } `json:"cursors"`
			} `json:"paging"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Data) != 1 || list.Data[0].ID != testPhoneID || list.Paging.Cursors.After == "" {
			t.Fatalf("WABA phone numbers: %s", body)
		}
	})
	t.Run("own Instagram account", func(t *testing.T) {
		st, body := e.call(t, http.MethodGet, "/v25.0/"+testIGUser+"?fields=id,username", testIGToken, nil)
		if st != http.StatusOK || !strings.Contains(string(body), `"id":"`+testIGUser+`"`) || !strings.Contains(string(body), `"username":"`) {
			t.Fatalf("%d %s", st, body)
		}
	})

	// Another business's token, and ids that do not exist, get the same
	// answer: Graph does not say which it is.
	refused := []struct{ name, path, token string }{
		{"number with another token", "/v25.0/" + testPhoneID, "other-token"},
		{"unknown number", "/v25.0/999999999999999", testWAToken},
		{"WABA with another token", "/v25.0/" + testWABA + "/phone_numbers", "other-token"},
		{"unknown WABA", "/v25.0/999999999999998/phone_numbers", testWAToken},
		{"Instagram account with the WhatsApp token", "/v25.0/" + testIGUser, "other-token"},
	}
	for _, c := range refused {
		st, body := e.call(t, http.MethodGet, c.path, c.token, nil)
		ge := decodeError(t, body)
		if st != http.StatusBadRequest || ge.Error.Code != 100 || ge.Error.Subcode != 33 ||
			!strings.HasPrefix(ge.Error.Message, "Unsupported get request. Object with ID '") || ge.Error.Type != "GraphMethodException" {
			t.Errorf("%s: %d %s", c.name, st, body)
		}
	}
	st, body := e.call(t, http.MethodGet, "/v25.0/"+testPhoneID, "EAAG-made-up", nil)
	if ge := decodeError(t, body); st != http.StatusUnauthorized || ge.Error.Code != 190 {
		t.Errorf("unknown token: %d %s", st, body)
	}
}
