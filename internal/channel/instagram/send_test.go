package instagram

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

const token = "IGAA-test-token"

var creds = channel.Credentials{AccountID: account, AccessToken: token}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return v
}

type recorder struct {
	method, path, query, auth string
	body                      []byte
	status                    int
	resp                      []byte
}

func (r *recorder) serve(t *testing.T) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.method, r.path, r.query, r.auth = req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Get("Authorization")
		r.body, _ = io.ReadAll(req.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.status != 0 {
			w.WriteHeader(r.status)
		}
		w.Write(r.resp)
	}))
	t.Cleanup(srv.Close)
	return NewClient(graph.NewClient(srv.URL, "v25.0", srv.Client()))
}

func TestSendFixtures(t *testing.T) {
	sent := channel.SendResult{ExternalID: mid("yOQ"), RecipientID: igsid}
	tests := []struct {
		name  string
		creds channel.Credentials
		msg   channel.Outbound
		path  string
		want  string // a request fixture, or literal JSON
	}{
		{"text", creds, channel.Outbound{To: igsid, Type: channel.MsgText, Text: "Да, размер M есть в наличии."},
			"/v25.0/" + account + "/messages", "ig-send-text-request.json"},
		{"human agent", creds, channel.Outbound{To: igsid, Type: channel.MsgText, Text: "Менеджер на связи: ваш возврат оформлен.", HumanAgent: true},
			"/v25.0/" + account + "/messages", "ig-send-human-agent-request.json"},
		{"image by url", creds, channel.Outbound{To: igsid, Type: channel.MsgImage, Media: &channel.Media{URL: "https://cdn.example.kz/catalog/jacket-m.jpg"}},
			"/v25.0/" + account + "/messages", "ig-send-image-request.json"},
		{"no account id: me", channel.Credentials{AccessToken: token}, channel.Outbound{To: igsid, Type: channel.MsgText, Text: "Да, размер M есть в наличии."},
			"/v25.0/me/messages", "ig-send-text-request.json"},
		{"document as file, quoted", creds, channel.Outbound{To: igsid, Type: channel.MsgDocument, QuotedExternalID: "m1", Media: &channel.Media{URL: "https://cdn/f.pdf"}},
			"/v25.0/" + account + "/messages",
			`{"recipient":{"id":"` + igsid + `"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"file","payload":{"url":"https://cdn/f.pdf"}},"reply_to":{"mid":"m1"}}}`},
		{"voice as audio", creds, channel.Outbound{To: igsid, Type: channel.MsgVoice, Media: &channel.Media{URL: "https://cdn/v.ogg"}},
			"/v25.0/" + account + "/messages",
			`{"recipient":{"id":"` + igsid + `"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"audio","payload":{"url":"https://cdn/v.ogg"}}}}`},
		{"quoted text", creds, channel.Outbound{To: igsid, Type: channel.MsgText, Text: "ok", QuotedExternalID: "m2"},
			"/v25.0/" + account + "/messages",
			`{"recipient":{"id":"` + igsid + `"},"messaging_type":"RESPONSE","message":{"text":"ok","reply_to":{"mid":"m2"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{resp: fixture(t, "ig-send-response.json")}
			res, err := rec.serve(t).Send(context.Background(), tt.creds, &tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if rec.method != http.MethodPost || rec.path != tt.path || rec.auth != "Bearer "+token {
				t.Errorf("request %s %s %q", rec.method, rec.path, rec.auth)
			}
			want := []byte(tt.want)
			if strings.HasSuffix(tt.want, ".json") {
				want = fixture(t, tt.want)
			}
			if got := decodeJSON(t, rec.body); !reflect.DeepEqual(got, decodeJSON(t, want)) {
				t.Errorf("body\n got: %s\nwant: %s", rec.body, want)
			}
			if *res != sent {
				t.Errorf("result %+v", *res)
			}
		})
	}
}

func TestSendReaction(t *testing.T) {
	rec := &recorder{resp: []byte(`{"recipient_id":"` + igsid + `"}`)}
	c := rec.serve(t)
	tests := []struct {
		emoji string
		want  string
	}{
		{"😂", `{"recipient":{"id":"` + igsid + `"},"sender_action":"react","payload":{"message_id":"m1","reaction":"love"}}`},
		{"", `{"recipient":{"id":"` + igsid + `"},"sender_action":"unreact","payload":{"message_id":"m1"}}`},
	}
	for _, tt := range tests {
		res, err := c.Send(context.Background(), creds, &channel.Outbound{To: igsid, Type: channel.MsgReaction, Reaction: &channel.Reaction{TargetExternalID: "m1", Emoji: tt.emoji}})
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeJSON(t, rec.body); !reflect.DeepEqual(got, decodeJSON(t, []byte(tt.want))) {
			t.Errorf("body %s", rec.body)
		}
		if res.ExternalID != "" || res.RecipientID != igsid {
			t.Errorf("result %+v", res)
		}
	}
}

func TestSendErrorFixtures(t *testing.T) {
	tests := []struct {
		file    string
		outcome channel.Outcome
		code    int
		subcode int
	}{
		{"ig-error-outside-window.json", channel.OutcomeFailed, 10, 2534022},
		{"ig-error-551-unavailable.json", channel.OutcomeFailed, 551, 1545041},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rec := &recorder{status: 400, resp: fixture(t, tt.file)}
			_, err := rec.serve(t).Send(context.Background(), creds, &channel.Outbound{To: igsid, Type: channel.MsgText, Text: "x"})
			var se *channel.SendError
			if !errors.As(err, &se) {
				t.Fatalf("want SendError, got %v", err)
			}
			if se.Outcome != tt.outcome || se.Err.Code != tt.code || se.Err.Subcode != tt.subcode {
				t.Errorf("got %d %d/%d", se.Outcome, se.Err.Code, se.Err.Subcode)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("token in error: %v", err)
			}
		})
	}
}

func TestSendRefusesBadMessages(t *testing.T) {
	rec := &recorder{resp: fixture(t, "ig-send-response.json")}
	c := rec.serve(t)
	for name, msg := range map[string]*channel.Outbound{
		"nil":                nil,
		"no recipient":       {Type: channel.MsgText, Text: "x"},
		"empty text":         {To: igsid, Type: channel.MsgText},
		"media by id":        {To: igsid, Type: channel.MsgImage, Media: &channel.Media{ProviderID: "1"}},
		"template":           {To: igsid, Type: channel.MsgTemplate, Template: &channel.Template{Name: "t", Language: "ru"}},
		"sticker":            {To: igsid, Type: channel.MsgSticker, Media: &channel.Media{URL: "https://cdn/s.webp"}},
		"reaction no target": {To: igsid, Type: channel.MsgReaction, Reaction: &channel.Reaction{Emoji: "❤️"}},
	} {
		rec.method = ""
		_, err := c.Send(context.Background(), creds, msg)
		var se *channel.SendError
		if !errors.As(err, &se) || se.Outcome != channel.OutcomeFailed {
			t.Errorf("%s: got %v", name, err)
		}
		if rec.method != "" {
			t.Errorf("%s: a request was made", name)
		}
	}
}

func TestSendAcceptedWithoutID(t *testing.T) {
	rec := &recorder{resp: []byte(`{"recipient_id":"` + igsid + `"}`)}
	_, err := rec.serve(t).Send(context.Background(), creds, &channel.Outbound{To: igsid, Type: channel.MsgText, Text: "x"})
	var se *channel.SendError
	if err == nil || errors.As(err, &se) {
		t.Errorf("got %v", err)
	}
}

func TestProfile(t *testing.T) {
	rec := &recorder{resp: fixture(t, "ig-user-profile-response.json")}
	p, err := rec.serve(t).Profile(context.Background(), creds, igsid)
	if err != nil {
		t.Fatal(err)
	}
	if rec.method != http.MethodGet || rec.path != "/v25.0/"+igsid || rec.query != "fields=name%2Cusername%2Cprofile_pic" || rec.auth != "Bearer "+token {
		t.Errorf("request %s %s?%s %q", rec.method, rec.path, rec.query, rec.auth)
	}
	want := Profile{
		ID: igsid, Name: "Айгерим", Username: "aigerim.shop.fan",
		ProfilePic: "https://scontent.cdninstagram.com/v/t51.2885-19/fake_profile_pic.jpg?oh=00_Fake&oe=6A000000",
	}
	if *p != want {
		t.Errorf("profile %+v", *p)
	}
}

func TestProfileWithoutConsent(t *testing.T) {
	rec := &recorder{status: 400, resp: []byte(`{"error":{"message":"User consent is required to access user profile","type":"IGApiException","code":230}}`)}
	_, err := rec.serve(t).Profile(context.Background(), creds, igsid)
	var se *channel.SendError
	if !errors.As(err, &se) || se.Err.Code != 230 || se.Outcome != channel.OutcomeFailed {
		t.Errorf("got %v", err)
	}
}

func TestNewProvider(t *testing.T) {
	c := NewClient(graph.NewClient("", "", nil))
	p := NewProvider(c)
	if p.Type != channel.Instagram || p.WebhookObject != "instagram" || p.Sender != c || p.Fetcher != c || p.Parser == nil {
		t.Errorf("provider %+v", p)
	}
	r := channel.NewRegistry()
	r.Register(p)
	if b, err := r.ParseWebhook(fixture(t, "ig-inbound-text.json")); err != nil || len(b.Envelopes) != 1 {
		t.Errorf("registry parse: %v %+v", err, b)
	}
}
