package whatsapp

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

const token = "EAAG-test-token"

var creds = channel.Credentials{AccountID: phoneID, AccessToken: token}

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

// recorder is a fake Graph endpoint that keeps the last request and answers
// with a fixed status and body.
type recorder struct {
	method, path, auth, ctype string
	body                      []byte
	status                    int
	resp                      []byte
}

func (r *recorder) serve(t *testing.T) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.method, r.path, r.auth, r.ctype = req.Method, req.URL.Path, req.Header.Get("Authorization"), req.Header.Get("Content-Type")
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

// templateBodyOnly is the template fixture cut down to what channel.Template
// can say: name, language and body text parameters.
func templateBodyOnly(t *testing.T) any {
	v := decodeJSON(t, fixture(t, "wa-send-template-request.json")).(map[string]any)
	tmpl := v["template"].(map[string]any)
	var keep []any
	for _, c := range tmpl["components"].([]any) {
		if c.(map[string]any)["type"] == "body" {
			keep = append(keep, c)
		}
	}
	tmpl["components"] = keep
	return v
}

func TestSendFixtures(t *testing.T) {
	tests := []struct {
		name    string
		msg     channel.Outbound
		request string
		want    any // when the fixture says more than the model can
		resp    string
		result  channel.SendResult
	}{
		{
			name:    "text, To with + and spaces",
			msg:     channel.Outbound{To: "+7 916 123-45-67", Type: channel.MsgText, Text: "Ваш заказ 4512 передан курьеру."},
			request: "wa-send-text-request.json",
			resp:    "wa-send-response.json",
			result:  channel.SendResult{ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA1AA==", RecipientID: "79161234567"},
		},
		{
			name:    "quoted reply",
			msg:     channel.Outbound{To: "77071234567", Type: channel.MsgText, Text: "Отлично, записали вас на 15:00.", QuotedExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzUVVPVEVEMDAwMDAwMDAwMDAxAA=="},
			request: "wa-send-reply-request.json",
		},
		{
			name:    "image by link with caption",
			msg:     channel.Outbound{To: "79161234567", Type: channel.MsgImage, Media: &channel.Media{URL: "https://cdn.example.kz/receipts/4512.jpg", Caption: "Чек по заказу 4512"}},
			request: "wa-send-image-link-request.json",
		},
		{
			name:    "document by id, caption from Text",
			msg:     channel.Outbound{To: "77071234567", Type: channel.MsgDocument, Text: "Счёт на оплату", Media: &channel.Media{ProviderID: "1837465029183746", Filename: "invoice_4512.pdf", MimeType: "application/pdf"}},
			request: "wa-send-document-id-request.json",
		},
		{
			name:    "voice goes as audio, caption and filename dropped",
			msg:     channel.Outbound{To: "77071234567", Type: channel.MsgVoice, Media: &channel.Media{ProviderID: "2938475610293847", Caption: "x", Filename: "a.ogg"}},
			request: "wa-send-voice-id-request.json",
		},
		{
			name:    "reaction",
			msg:     channel.Outbound{To: "79161234567", Type: channel.MsgReaction, Reaction: &channel.Reaction{TargetExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUFBQkJCQ0NDMTIzNDU2Nzg5AA==", Emoji: "👍"}},
			request: "wa-send-reaction-request.json",
		},
		{
			name: "template with body params",
			msg: channel.Outbound{To: "79161234567", Type: channel.MsgTemplate, Template: &channel.Template{
				Name: "order_shipped", Language: "ru", Params: []string{"Анна", "4512"},
			}},
			want:   templateBodyOnly(t),
			resp:   "wa-send-template-response.json",
			result: channel.SendResult{ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzVEVNUExBVEUwMDAwMDAwMDAxAA==", RecipientID: "79161234567"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := "wa-send-response.json"
			if tt.resp != "" {
				resp = tt.resp
			}
			rec := &recorder{resp: fixture(t, resp)}
			res, err := rec.serve(t).Send(context.Background(), creds, &tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if rec.method != http.MethodPost || rec.path != "/v25.0/"+phoneID+"/messages" || rec.auth != "Bearer "+token || rec.ctype != "application/json" {
				t.Errorf("request: %s %s auth=%q ctype=%q", rec.method, rec.path, rec.auth, rec.ctype)
			}
			want := tt.want
			if want == nil {
				want = decodeJSON(t, fixture(t, tt.request))
			}
			if got := decodeJSON(t, rec.body); !reflect.DeepEqual(got, want) {
				w, _ := json.Marshal(want)
				t.Errorf("body\n got: %s\nwant: %s", rec.body, w)
			}
			if tt.result.ExternalID == "" {
				tt.result = channel.SendResult{ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA1AA==", RecipientID: "79161234567"}
			}
			if *res != tt.result {
				t.Errorf("result %+v, want %+v", *res, tt.result)
			}
		})
	}
}

func TestSendTemplateWithoutParams(t *testing.T) {
	rec := &recorder{resp: fixture(t, "wa-send-template-response.json")}
	_, err := rec.serve(t).Send(context.Background(), creds, &channel.Outbound{To: "79161234567", Type: channel.MsgTemplate, Template: &channel.Template{Name: "hello", Language: "en"}})
	if err != nil {
		t.Fatal(err)
	}
	want := decodeJSON(t, []byte(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"template",
		"template":{"name":"hello","language":{"policy":"deterministic","code":"en"}}}`))
	if got := decodeJSON(t, rec.body); !reflect.DeepEqual(got, want) {
		t.Errorf("body %s", rec.body)
	}
}

func TestSendToUserID(t *testing.T) {
	rec := &recorder{resp: []byte(`{"messaging_product":"whatsapp","contacts":[{"user_id":"US.123"}],"messages":[{"id":"wamid.X"}]}`)}
	res, err := rec.serve(t).Send(context.Background(), creds, &channel.Outbound{To: "US.123", Type: channel.MsgText, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeJSON(t, rec.body).(map[string]any)
	if got["recipient"] != "US.123" || got["to"] != nil {
		t.Errorf("body %s", rec.body)
	}
	if res.ExternalID != "wamid.X" || res.RecipientID != "US.123" {
		t.Errorf("result %+v", res)
	}
}

func TestSendErrorFixtures(t *testing.T) {
	tests := []struct {
		file    string
		status  int
		outcome channel.Outcome
		code    int
	}{
		{"wa-error-131047.json", 400, channel.OutcomeFailed, 131047},
		{"wa-error-130429.json", 400, channel.OutcomeRetry, 130429},
		{"wa-error-131056.json", 400, channel.OutcomeRetry, 131056},
		{"wa-error-190-token-expired.json", 401, channel.OutcomeChannelError, 190},
		{"wa-error-100-invalid-param.json", 400, channel.OutcomeFailed, 100},
		{"wa-error-80007-rate-limit.json", 400, channel.OutcomeRetry, 80007},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rec := &recorder{status: tt.status, resp: fixture(t, tt.file)}
			_, err := rec.serve(t).Send(context.Background(), creds, &channel.Outbound{To: "79161234567", Type: channel.MsgText, Text: "x"})
			var se *channel.SendError
			if !errors.As(err, &se) {
				t.Fatalf("want SendError, got %v", err)
			}
			if se.Outcome != tt.outcome || se.Err.Code != tt.code || se.HTTPStatus != tt.status {
				t.Errorf("got outcome %d code %d http %d", se.Outcome, se.Err.Code, se.HTTPStatus)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("token in error: %v", err)
			}
		})
	}
}

func TestSendRefusesBadMessages(t *testing.T) {
	rec := &recorder{resp: fixture(t, "wa-send-response.json")}
	c := rec.serve(t)
	tests := []struct {
		name    string
		creds   channel.Credentials
		msg     *channel.Outbound
		outcome channel.Outcome
	}{
		{"nil", creds, nil, channel.OutcomeFailed},
		{"no recipient", creds, &channel.Outbound{Type: channel.MsgText, Text: "x"}, channel.OutcomeFailed},
		{"empty text", creds, &channel.Outbound{To: "7", Type: channel.MsgText}, channel.OutcomeFailed},
		{"media without file", creds, &channel.Outbound{To: "7", Type: channel.MsgImage, Media: &channel.Media{}}, channel.OutcomeFailed},
		{"template without name", creds, &channel.Outbound{To: "7", Type: channel.MsgTemplate, Template: &channel.Template{Language: "ru"}}, channel.OutcomeFailed},
		{"reaction without target", creds, &channel.Outbound{To: "7", Type: channel.MsgReaction, Reaction: &channel.Reaction{Emoji: "👍"}}, channel.OutcomeFailed},
		{"postback", creds, &channel.Outbound{To: "7", Type: channel.MsgPostback, Text: "x"}, channel.OutcomeFailed},
		{"no phone number id", channel.Credentials{AccessToken: token}, &channel.Outbound{To: "7", Type: channel.MsgText, Text: "x"}, channel.OutcomeChannelError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.method = ""
			_, err := c.Send(context.Background(), tt.creds, tt.msg)
			var se *channel.SendError
			if !errors.As(err, &se) || se.Outcome != tt.outcome {
				t.Errorf("got %v", err)
			}
			if rec.method != "" {
				t.Error("a request was made")
			}
		})
	}
}

func TestSendAcceptedWithoutID(t *testing.T) {
	rec := &recorder{resp: []byte(`{"messaging_product":"whatsapp","messages":[]}`)}
	_, err := rec.serve(t).Send(context.Background(), creds, &channel.Outbound{To: "7", Type: channel.MsgText, Text: "x"})
	var se *channel.SendError
	if err == nil || errors.As(err, &se) {
		t.Errorf("got %v", err)
	}
}

func TestMarkRead(t *testing.T) {
	const wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUFBQkJCQ0NDMTIzNDU2Nzg5AA=="
	rec := &recorder{resp: fixture(t, "wa-mark-read-response.json")}
	c := rec.serve(t)
	if err := c.MarkReadTyping(context.Background(), creds, wamid); err != nil {
		t.Fatal(err)
	}
	if rec.method != http.MethodPost || rec.path != "/v25.0/"+phoneID+"/messages" || rec.auth != "Bearer "+token {
		t.Errorf("request: %s %s %q", rec.method, rec.path, rec.auth)
	}
	if got, want := decodeJSON(t, rec.body), decodeJSON(t, fixture(t, "wa-mark-read-request.json")); !reflect.DeepEqual(got, want) {
		t.Errorf("body %s", rec.body)
	}

	if err := c.MarkRead(context.Background(), creds, wamid); err != nil {
		t.Fatal(err)
	}
	want := decodeJSON(t, []byte(`{"messaging_product":"whatsapp","status":"read","message_id":"`+wamid+`"}`))
	if got := decodeJSON(t, rec.body); !reflect.DeepEqual(got, want) {
		t.Errorf("body %s", rec.body)
	}
}

func TestNewProvider(t *testing.T) {
	c := NewClient(graph.NewClient("", "", nil))
	p := NewProvider(c)
	if p.Type != channel.WhatsApp || p.WebhookObject != "whatsapp_business_account" || p.Sender != c || p.Fetcher != c || p.Parser == nil {
		t.Errorf("provider %+v", p)
	}
	r := channel.NewRegistry()
	r.Register(p)
	b, err := r.ParseWebhook(fixture(t, "wa-inbound-text.json"))
	if err != nil || len(b.Envelopes) != 1 {
		t.Errorf("registry parse: %v %+v", err, b)
	}
}
