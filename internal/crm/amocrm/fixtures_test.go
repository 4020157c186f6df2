package amocrm

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/routing"
)

const (
	fxClientID     = "6a2d4741-1b2c-4d3e-8f90-92277723dcea"
	fxClientSecret = "fake_client_secret_ZpWm7VpAUBvpTzADj4CRHjmuvRR4PwVS7EqVxNvpMglIWK8u"
	fxRedirect     = "https://integration.example.com/amocrm/oauth"
	fxChannelID    = "f90ba33d-c9d9-44da-b76c-c349b0ecbe41"
	fxChannelSec   = "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189"
	fxScope        = fxChannelID + "_2f4b7c1e-6a3d-4e8f-9b21-5c0d7e8f9a10"
	fxDate         = "Thu, 01 Jan 2026 12:00:05 +0000"
)

var fxOAuth = OAuthConfig{ClientID: fxClientID, ClientSecret: fxClientSecret, RedirectURI: fxRedirect}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "fixtures", "amocrm", name))
	if err != nil {
		b, err = os.ReadFile(filepath.Join("/work/shared/fixtures/amocrm", name))
	}
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return b
}

// pretty indents compact JSON the way the fixtures are written.
func pretty(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("indent: %v: %s", err, b)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// Requests the client builds are the fixtures' bodies, byte for byte once
// indented like them.
func TestRequestBodiesMatchFixtures(t *testing.T) {
	zero := 0
	price := 0
	admin := 9000002
	cases := []struct {
		fixture string
		build   func() ([]byte, error)
	}{
		{"oauth_token_request_authorization_code.json", func() ([]byte, error) {
			return fxOAuth.TokenRequestBody("authorization_code", "def502000f1c2e3d4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f")
		}},
		{"oauth_token_request_refresh_token.json", func() ([]byte, error) {
			return fxOAuth.TokenRequestBody("refresh_token", "def50200a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6")
		}},
		{"contacts_create_request.json", func() ([]byte, error) {
			return encodeJSON([]ContactInput{{Name: "Алексей WhatsApp", ResponsibleUserID: 9000002, CreatedBy: &zero,
				CustomFields: []FieldValues{Phone("+77071234567", "MOB")}, TagsToAdd: []Tag{{Name: "WhatsApp"}}, RequestID: "wa:77071234567"}})
		}},
		{"leads_complex_request.json", func() ([]byte, error) {
			return encodeJSON([]LeadInput{
				{Name: "WhatsApp: +7 707 123-45-67", Price: &price, PipelineID: 7000001, StatusID: 61000002, ResponsibleUserID: 9000002, CreatedBy: &zero,
					Embedded: &LeadEmbed{Tags: []Tag{{Name: "WhatsApp"}}, Contacts: []ContactInput{{FirstName: "Алексей", ResponsibleUserID: 9000002, CreatedBy: &zero,
						CustomFields: []FieldValues{Phone("+77071234567", "MOB")}}}}, RequestID: "conv-wa-77071234567"},
				{Name: "Instagram: @shop_fan", PipelineID: 7000002, StatusID: 61000011, ResponsibleUserID: 9000001,
					Embedded: &LeadEmbed{Tags: []Tag{{Name: "Instagram"}}, Contacts: []ContactInput{{ID: 40100001}}}, RequestID: "conv-ig-1133627508796544"},
			})
		}},
		{"note_create_request.json", func() ([]byte, error) {
			return encodeJSON([]NoteInput{
				{EntityID: 25100001, NoteType: NoteServiceMessage, CreatedBy: &zero, Params: NoteParams{Service: "WhatsApp",
					Text: "Клиент (+7 916 123-45-67), 2026-01-01 12:00:05:\nЗдравствуйте! Есть ли доставка в Алматы?"},
					RequestID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUVCMEI5QzE0RjQ3QjA4MjFGMQA="},
				{EntityID: 25100001, NoteType: NoteCommon, CreatedBy: &admin, Params: NoteParams{Text: "Менеджер Иван Менеджеров, 2026-01-01 12:03:10:\nДа, доставка 2-3 дня."},
					RequestID: "out-5f2836a8ca476"},
			})
		}},
		{"task_create_request.json", func() ([]byte, error) {
			return encodeJSON([]TaskInput{{TaskTypeID: 1, Text: "Ответить клиенту в WhatsApp", CompleteTill: 1767229200, EntityID: 25100001,
				EntityType: "leads", ResponsibleUserID: 9000002, RequestID: "task-conv-wa-79161234567"}})
		}},
		{"amojo_new_message_request.json", func() ([]byte, error) {
			return NewMessageBody(AmojoMessage{Timestamp: 1767268805, MsecTimestamp: 1767268805123,
				MsgID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUVCMEI5QzE0RjQ3QjA4MjFGMQA=", ConversationID: "wa-79161234567",
				Sender: AmojoSender{ID: "wa-79161234567", Name: "Мария Клиентова", Avatar: "https://integration.example.com/avatars/wa-79161234567.jpg",
					Profile: &AmojoProfile{Phone: "+79161234567"}},
				Message: AmojoContent{Type: "text", Text: "Здравствуйте! Есть ли доставка в Алматы?"}})
		}},
		{"amojo_new_message_picture_request.json", func() ([]byte, error) {
			return NewMessageBody(AmojoMessage{Timestamp: 1767268900, MsecTimestamp: 1767268900456,
				MsgID: "ig-mid.aWdfZAG1faWQ6ZAmFrZV9taWQ", ConversationID: "ig-1133627508796544",
				Sender:  AmojoSender{ID: "ig-1133627508796544", Name: "shop_fan", ProfileLink: "https://instagram.com/shop_fan"},
				Message: AmojoContent{Type: "picture", Media: "https://integration.example.com/media/ig/abc123.jpg", FileName: "abc123.jpg", FileSize: 183422}})
		}},
		{"amojo_delivery_status_request.json", func() ([]byte, error) {
			return encodeJSON(AmojoDeliveryStatus{StatusCode: DeliveryError, ErrorCode: 904, Error: "Recipient is not a WhatsApp user"})
		}},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			b, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := pretty(t, b), fixture(t, c.fixture); !bytes.Equal(got, want) {
				t.Errorf("body differs:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// The signature vectors of amojo_signature_example.txt, reproduced.
func TestAmojoSignatureVectors(t *testing.T) {
	msg := fixture(t, "amojo_new_message_request.json")
	conn := fixture(t, "amojo_connect_request.json")
	cases := []struct {
		name, method, path string
		body               []byte
		md5, sig           string
	}{
		{"new_message", "POST", "/v2/origin/custom/" + fxScope, msg, "3952db6d3603c8040e019887b59dc2f0", "ce39fe71ef5219adcf1c9c45b8a66e3a4ce63cce"},
		{"connect", "POST", "/v2/origin/custom/" + fxChannelID + "/connect", conn, "d202a7834c30157552ae8edac3705568", "c4de418de5c1ac63e8ece7e1094609a46c8229f7"},
		{"history GET", "GET", "/v2/origin/custom/" + fxScope + "/chats/8e4d4baa-9e6c-4a88-838a-5f62be227bdc/history", nil, "d41d8cd98f00b204e9800998ecf8427e", "2a48f013ba964dcd840cc13ec3e2724a79720a82"},
	}
	now, _ := time.Parse(AmojoDateFormat, fxDate)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ContentMD5(c.body); got != c.md5 {
				t.Errorf("Content-MD5 %s, want %s", got, c.md5)
			}
			req, _ := http.NewRequest(c.method, "https://amojo.amocrm.ru"+c.path, bytes.NewReader(c.body))
			SignAmojoRequest(req, c.body, fxChannelSec, now)
			if req.Header.Get("Date") != fxDate || req.Header.Get("X-Signature") != c.sig || req.Header.Get("Content-MD5") != c.md5 {
				t.Errorf("signed headers %v, want signature %s", req.Header, c.sig)
			}
			if err := VerifyAmojoRequest(req, c.body, fxChannelSec, now.Add(time.Minute)); err != nil {
				t.Errorf("own signature refused: %v", err)
			}
			if err := VerifyAmojoRequest(req, append(c.body, ' '), fxChannelSec, now); err == nil {
				t.Error("changed body accepted")
			}
			if err := VerifyAmojoRequest(req, c.body, fxChannelSec, now.Add(16*time.Minute)); err == nil {
				t.Error("stale Date accepted")
			}
		})
	}
	hook := fixture(t, "amojo_outgoing_webhook_v2.json")
	if got := AmojoHookSignature(fxChannelSec, hook); got != "dacd0a6125c433a055dd65f6442b09c56af233c2" {
		t.Errorf("hook signature %s", got)
	}
	h, err := ParseAmojoHook(fxChannelSec, hook, "dacd0a6125c433a055dd65f6442b09c56af233c2")
	if err != nil {
		t.Fatal(err)
	}
	if h.Message.Message.ID != "0371a0ff-b78a-4c7b-8538-a7d547e10692" || h.Message.Conversation.ClientID != "wa-79161234567" ||
		h.Message.Sender.ID != "76fc2bea-902f-425c-9a3d-dcdac4766090" || h.Message.Message.Text != "Да, доставка в Алматы 2-3 дня." {
		t.Errorf("hook %+v", h)
	}
	for _, bad := range []string{"", "dacd0a6125c433a055dd65f6442b09c56af233c3", "ce39fe71ef5219adcf1c9c45b8a66e3a4ce63cce"} {
		if _, err := ParseAmojoHook(fxChannelSec, hook, bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("hook signature %q accepted: %v", bad, err)
		}
	}
	if _, err := ParseAmojoHook(fxChannelSec, append([]byte(" "), hook...), "dacd0a6125c433a055dd65f6442b09c56af233c2"); err == nil {
		t.Error("changed hook body accepted")
	}
}

func TestDisableHook(t *testing.T) {
	q := url.Values{"account_id": {"30123456"}, "client_uuid": {fxClientID},
		"signature": {"bc04949342ce70bb35f730c55055aa8b61cf31dc76d110ce3113a2d91674c6bc"}}
	if got := DisableHookSignature(fxClientID, fxClientSecret, 30123456); got != q.Get("signature") {
		t.Fatalf("signature %s", got)
	}
	if id, err := fxOAuth.VerifyDisableHook(q); err != nil || id != 30123456 {
		t.Fatalf("fixture hook: %d %v", id, err)
	}
	bad := []url.Values{
		{"account_id": {"30123457"}, "client_uuid": {fxClientID}, "signature": q["signature"]},
		{"account_id": {"30123456"}, "client_uuid": {"other"}, "signature": q["signature"]},
		{"account_id": {"30123456"}, "client_uuid": {fxClientID}, "signature": {DisableHookSignature(fxClientID, "other-secret", 30123456)}},
		{"account_id": {"030123456"}, "client_uuid": {fxClientID}, "signature": q["signature"]},
		{"account_id": {"30123456"}, "client_uuid": {fxClientID}},
	}
	for i, b := range bad {
		if _, err := fxOAuth.VerifyDisableHook(b); !errors.Is(err, ErrBadSignature) {
			t.Errorf("bad hook %d accepted: %v", i, err)
		}
	}
}

func widgetVerifier(now time.Time) WidgetVerifier {
	return WidgetVerifier{ClientID: fxClientID, ClientSecret: fxClientSecret, Audience: "https://integration.example.com",
		Now: func() time.Time { return now }}
}

// signHS256 signs claims like amoCRM (for forged variants).
func signHS256(t *testing.T, header string, claims any, secret string) string {
	t.Helper()
	cb, _ := json.Marshal(claims)
	h := base64.RawURLEncoding.EncodeToString([]byte(header))
	c := base64.RawURLEncoding.EncodeToString(cb)
	return h + "." + c + "." + hs256(h+"."+c, secret)
}

func TestWidgetToken(t *testing.T) {
	ex := string(fixture(t, "disposable_token_example.txt"))
	i := strings.Index(ex, "X-Auth-Token: ")
	token := strings.TrimSpace(strings.SplitN(ex[i+len("X-Auth-Token: "):], "\n", 2)[0])
	valid := time.Date(2026, 1, 1, 12, 10, 0, 0, time.UTC)
	c, err := widgetVerifier(valid).VerifyFor(token, 30123456)
	if err != nil {
		t.Fatalf("fixture token refused: %v", err)
	}
	var want WidgetClaims
	json.Unmarshal(fixture(t, "disposable_token_claims.json"), &want)
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("claims %+v, want %+v", *c, want)
	}

	claims := map[string]any{}
	json.Unmarshal(fixture(t, "disposable_token_claims.json"), &claims)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range claims {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	hdr := `{"typ":"JWT","alg":"HS256"}`
	parts := strings.Split(token, ".")
	forgedClaims := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(mustB64(t, parts[1])), "9000002", "9000001", 1)))
	cases := []struct {
		name  string
		token string
		now   time.Time
		acct  int
	}{
		{"expired", token, time.Date(2026, 1, 1, 12, 30, 0, 0, time.UTC), 30123456},
		{"not yet valid", token, time.Date(2026, 1, 1, 11, 59, 0, 0, time.UTC), 30123456},
		{"other account's page", token, valid, 30999999},
		{"claims changed after signing", parts[0] + "." + forgedClaims + "." + parts[2], valid, 30123456},
		{"signed with another secret", signHS256(t, hdr, claims, "guessed-secret"), valid, 30123456},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"none"}`)) + "." + parts[1] + ".", valid, 30123456},
		{"HS512", signHS256(t, `{"typ":"JWT","alg":"HS512"}`, claims, fxClientSecret), valid, 30123456},
		{"other audience", signHS256(t, hdr, with("aud", "https://evil.example.com"), fxClientSecret), valid, 30123456},
		{"other integration", signHS256(t, hdr, with("client_uuid", "00000000-1b2c-4d3e-8f90-92277723dcea"), fxClientSecret), valid, 30123456},
		{"issuer not amoCRM", signHS256(t, hdr, with("iss", "https://example.evil.com"), fxClientSecret), valid, 30123456},
		{"no user", signHS256(t, hdr, with("user_id", 0), fxClientSecret), valid, 30123456},
		{"garbage", "abc", valid, 30123456},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := widgetVerifier(c.now).VerifyFor(c.token, c.acct); !errors.Is(err, ErrBadSignature) {
				t.Errorf("accepted: %v", err)
			}
		})
	}
	// Single use, when the caller records jti.
	seen := map[string]bool{}
	once := widgetVerifier(valid)
	once.Replayed = func(jti string, _ time.Time) bool { s := seen[jti]; seen[jti] = true; return s }
	if _, err := once.Verify(token); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := once.Verify(token); !errors.Is(err, ErrBadSignature) {
		t.Errorf("replayed token accepted: %v", err)
	}
	// A correctly re-signed token with the right fields passes (the
	// forging helper itself is sound).
	if _, err := widgetVerifier(valid).VerifyFor(signHS256(t, hdr, with("user_id", 9000001), fxClientSecret), 30123456); err != nil {
		t.Errorf("re-signed valid token refused: %v", err)
	}
}

func mustB64(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHostPolicy(t *testing.T) {
	strict := HostPolicy{}
	local := HostPolicy{BaseURL: "http://127.0.0.1:9093", AllowPrivate: true}
	cases := []struct {
		p    HostPolicy
		host string
		want string // "" = refused
	}{
		{strict, "example.amocrm.ru", "https://example.amocrm.ru"},
		{strict, "Example.AmoCRM.ru", "https://example.amocrm.ru"},
		{strict, "shop.kommo.com", "https://shop.kommo.com"},
		{strict, "shop.amocrm.com", "https://shop.amocrm.com"},
		{strict, "amocrm.ru", ""},
		{strict, "www.amocrm.ru", ""},
		{strict, "a.b.amocrm.ru", ""},
		{strict, "example.amocrm.ru.evil.com", ""},
		{strict, "evilamocrm.ru", ""},
		{strict, "example.amocrm.ru:8443", ""},
		{strict, "user@example.amocrm.ru", ""},
		{strict, "https://example.amocrm.ru", ""},
		{strict, "example.amocrm.ru/x", ""},
		{strict, "127.0.0.1:9093", ""},
		{HostPolicy{BaseURL: "http://127.0.0.1:9093"}, "127.0.0.1:9093", ""}, // loopback only when allowed
		{local, "127.0.0.1:9093", "http://127.0.0.1:9093"},
		{local, "127.0.0.1:9094", ""},
		{local, "localhost:9093", ""},
		{local, "example.amocrm.ru", "https://example.amocrm.ru"},
		{HostPolicy{BaseURL: "https://sim.example.net"}, "sim.example.net", "https://sim.example.net"},
	}
	if u := fxOAuth.ConsentURL("st8", "post_message", false); u != "https://www.amocrm.ru/oauth?client_id="+fxClientID+"&mode=post_message&state=st8" {
		t.Errorf("consent URL %s", u)
	}
	if AmojoBase("shop.kommo.com") != "https://amojo.kommo.com" || AmojoBase("example.amocrm.ru") != "https://amojo.amocrm.ru" {
		t.Error("amojo host")
	}
	for _, c := range cases {
		got, err := c.p.AccountBase(c.host)
		if got != c.want || (c.want == "") != errors.Is(err, ErrInvalidHost) {
			t.Errorf("%+v %q: %q %v, want %q", c.p, c.host, got, err, c.want)
		}
	}
}

// Answers parsed from the fixtures, through the client, from a server
// that serves them verbatim.
func TestResponsesFromFixtures(t *testing.T) {
	routes := map[string]struct {
		status int
		file   string
	}{
		"/api/v4/account":         {200, "account.json"},
		"/api/v4/users":           {200, "users_list.json"},
		"/api/v4/leads/pipelines": {200, "pipelines_list.json"},
		"/api/v4/contacts":        {200, "contacts_search_by_phone.json"},
		"/api/v4/leads":           {200, "leads_list.json"},
		"/api/v4/leads/complex":   {200, "leads_complex_response.json"},
		"/api/v4/leads/notes":     {200, "note_create_response.json"},
		"/api/v4/tasks":           {200, "task_create_response.json"},
		"POST /api/v4/contacts":   {200, "contacts_create_response.json"},
		"POST /api/v4/leads":      {200, "leads_create_response.json"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		if r.URL.Query().Get("query") == "9990000000" {
			w.WriteHeader(204) // empty_list_204.txt
			return
		}
		rt, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			rt, ok = routes[r.URL.Path]
		}
		if !ok {
			w.WriteHeader(404)
			return
		}
		w.Header().Set("Content-Type", "application/hal+json")
		w.WriteHeader(rt.status)
		w.Write(fixture(t, rt.file))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	toks := staticTokens("tok")
	c := NewClient(Options{Tokens: toks, Hosts: HostPolicy{BaseURL: srv.URL, AllowPrivate: true}, Limiter: noLimit{}})
	api := c.For(Account{ID: "i1", Host: u.Host})
	ctx := context.Background()

	acc, err := api.Account(ctx)
	if err != nil || acc.ID != 30123456 || acc.Subdomain != "example" || acc.AmojoID != "2f4b7c1e-6a3d-4e8f-9b21-5c0d7e8f9a10" || acc.Timezone != "Europe/Moscow" || acc.TimezoneOffset != "+03:00" {
		t.Errorf("account %+v %v", acc, err)
	}
	users, err := api.Users(ctx)
	if err != nil || len(users) != 3 || !users[0].Rights.IsAdmin || !users[1].Rights.IsActive || users[2].Rights.IsActive || users[2].AmojoID != "" {
		t.Errorf("users %+v %v", users, err)
	}
	pipes, err := api.Pipelines(ctx)
	if err != nil || len(pipes) != 2 || len(pipes[0].Statuses) != 5 || pipes[0].Statuses[0].Type != 1 || !pipes[0].Statuses[3].Closed() || pipes[1].Statuses[0].ID != 61000011 {
		t.Errorf("pipelines %+v %v", pipes, err)
	}
	cs, err := api.SearchContacts(ctx, "9161234567", true)
	if err != nil || len(cs) != 1 {
		t.Fatalf("contacts %+v %v", cs, err)
	}
	if ph := cs[0].Values("PHONE"); !reflect.DeepEqual(ph, []string{"+7 916 123-45-67", "84951234567"}) || !phone.Same(ph[0], "+79161234567", phone.Default) || phone.Same(ph[1], "+79161234567", phone.Default) {
		t.Errorf("phones %v", ph)
	}
	if ids := cs[0].LeadIDs(); !reflect.DeepEqual(ids, []int{25099994, 25100001}) {
		t.Errorf("lead ids %v", ids)
	}
	if cs, err := api.SearchContacts(ctx, "9990000000", false); err != nil || cs != nil {
		t.Errorf("204 search: %v %v", cs, err)
	}
	leads, err := api.Leads(ctx, LeadFilter{IDs: []int{25099994, 25100001}, WithContacts: true})
	if err != nil || len(leads) != 2 || leads[0].Open() || !leads[1].Open() || leads[1].Embedded.Contacts[0].ID != 40100001 || *leads[0].ClosedAt != 1765000000 {
		t.Errorf("leads %+v %v", leads, err)
	}
	res, err := api.CreateLeadsComplex(ctx, []LeadInput{{Name: "a"}, {Name: "b"}})
	if err != nil || len(res) != 2 || *res[0].ContactID != 40100003 || res[0].CompanyID != nil || res[1].RequestIDs[0] != "conv-ig-1133627508796544" {
		t.Errorf("complex %+v %v", res, err)
	}
	notes, err := api.AddNotes(ctx, "leads", []NoteInput{{EntityID: 1, NoteType: NoteCommon}, {EntityID: 1, NoteType: NoteCommon}})
	if err != nil || len(notes) != 2 || notes[1].ID != 76787985 || notes[0].EntityID != 25100001 {
		t.Errorf("notes %+v %v", notes, err)
	}
	tasks, err := api.AddTasks(ctx, []TaskInput{{Text: "x"}})
	if err != nil || len(tasks) != 1 || tasks[0].ID != 4745251 {
		t.Errorf("tasks %+v %v", tasks, err)
	}
	cc, err := api.CreateContacts(ctx, []ContactInput{{Name: "Алексей"}})
	if err != nil || len(cc) != 1 || cc[0].ID != 40100002 || cc[0].RequestID != "wa:77071234567" {
		t.Errorf("contacts created %+v %v", cc, err)
	}
	lc, err := api.CreateLeads(ctx, []LeadInput{{Name: "x"}})
	if err != nil || len(lc) != 1 || lc[0].ID != 25100004 {
		t.Errorf("leads created %+v %v", lc, err)
	}
	var sent struct {
		NewMessage AmojoSent `json:"new_message"`
	}
	if err := json.Unmarshal(fixture(t, "amojo_new_message_response.json"), &sent); err != nil || sent.NewMessage.MsgID != "8f1176d7-c357-42b0-b944-a15d537a27d3" || sent.NewMessage.ReceiverID != nil {
		t.Errorf("new message answer %+v %v", sent, err)
	}
	var conn AmojoConnection
	if err := json.Unmarshal(fixture(t, "amojo_connect_response.json"), &conn); err != nil || conn.ScopeID != fxScope || conn.HookAPIVersion != "v2" {
		t.Errorf("connect answer %+v %v", conn, err)
	}
	var tj tokenJSON
	json.Unmarshal(fixture(t, "oauth_token_response.json"), &tj)
	if tj.ExpiresIn != 86400 || tj.TokenType != "Bearer" || tj.RefreshToken == "" {
		t.Errorf("token response %+v", tj)
	}
}

func TestErrorsFromFixtures(t *testing.T) {
	cases := []struct {
		file      string
		status    int
		grant     bool
		is        []error
		isnt      []error
		retryable bool
	}{
		{"error_401.json", 401, false, []error{ErrUnauthorized}, []error{ErrNeedsReauth}, false},
		{"error_402.json", 402, false, []error{ErrPaymentRequired}, []error{ErrNeedsReauth}, false},
		{"error_validation_400.json", 400, false, []error{ErrValidation}, []error{ErrNeedsReauth}, false},
		{"oauth_token_error_invalid_grant.json", 400, true, []error{ErrNeedsReauth}, []error{ErrValidation}, false},
		{"oauth_token_error_code_expired.json", 400, true, []error{ErrNeedsReauth}, nil, false},
		{"error_429_too_many_requests.txt", 429, false, []error{ErrRateLimited}, []error{ErrNeedsReauth}, true},
	}
	for _, c := range cases {
		body := fixture(t, c.file)
		if strings.HasSuffix(c.file, ".txt") {
			body = nil // the raw 429 has an empty body
		}
		e := parseError("GET /x", c.status, http.Header{}, body)
		e.Grant = c.grant
		for _, s := range c.is {
			if !errors.Is(e, s) {
				t.Errorf("%s: not %v", c.file, s)
			}
		}
		for _, s := range c.isnt {
			if errors.Is(e, s) {
				t.Errorf("%s: is %v", c.file, s)
			}
		}
		if Retryable(e) != c.retryable {
			t.Errorf("%s: retryable %v", c.file, !c.retryable)
		}
	}
	// A 502 from the front (HTML, not JSON) is amoCRM down: it waits
	// (routing.ErrUnavailable, attempts unspent) with its cause kept; a
	// plain 500 is retried with the queue's backoff, unchanged by
	// Classify, so a request that trips a bug still dead-letters.
	for _, st := range []int{502, 503, 504} {
		bad := parseError("GET /api/v4/leads", st, http.Header{}, []byte("<html>Bad Gateway</html>"))
		got := Classify(bad)
		if !errors.Is(bad, ErrServer) || !Retryable(bad) || Permanent(bad) || !errors.Is(got, routing.ErrUnavailable) || !errors.Is(got, bad) {
			t.Errorf("%d: %v classified %v", st, bad, got)
		}
	}
	for _, st := range []int{500, 429} {
		other := parseError("GET /api/v4/leads", st, http.Header{}, nil)
		if got := Classify(other); errors.Is(got, routing.ErrUnavailable) {
			t.Errorf("%d classified as an outage: %v", st, got)
		}
	}
	if plain := parseError("GET /api/v4/leads", 500, http.Header{}, nil); Classify(plain) != error(plain) {
		t.Errorf("500 changed by Classify: %v", Classify(plain))
	}
	netErr := errors.New("connection reset by peer")
	if !Retryable(netErr) || Retryable(context.Canceled) || Retryable(ErrInvalidHost) {
		t.Error("network errors misclassified")
	}
	e := parseError("POST /api/v4/leads/complex", 400, http.Header{}, fixture(t, "error_validation_400.json"))
	items := ItemErrors(e)
	if len(items) != 2 || items["conv-wa-77071234567"][0].Code != "NotSupportedChoice" || items["conv-wa-77071234567"][0].Path != "custom_fields_values.0.field_id" ||
		items["conv-ig-1133627508796544"][0].Path != "responsible_user_id" || e.Item("conv-ig-1133627508796544")[0].Code != "InvalidType" {
		t.Errorf("item errors %+v", items)
	}
	if !Permanent(e) {
		t.Error("validation error not permanent")
	}
	g := parseError("POST /oauth2/access_token", 400, http.Header{}, fixture(t, "oauth_token_error_invalid_grant.json"))
	g.Grant = true
	if g.Hint != "Token has been revoked" || Permanent(g) {
		t.Errorf("grant error %+v", g)
	}
}

type staticTokens string

func (s staticTokens) AccessToken(context.Context, string) (string, error) { return string(s), nil }
func (s staticTokens) Refresh(context.Context, string, string) (string, error) {
	return "", ErrNeedsReauth
}

type noLimit struct{}

func (noLimit) Wait(context.Context, string) error { return nil }

func hs256(msg, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// amojo down (502/503/504) waits like amoCRM down, with its cause
// kept; a 500 is left to the queue's backoff, unchanged.
func TestClassifyAmojo(t *testing.T) {
	s := &Service{}
	for _, st := range []int{502, 503, 504, 500} {
		e := parseError("amojo POST /v2/origin/custom/x", st, http.Header{}, nil)
		got := s.classifyAmojo(e)
		if down := st != 500; errors.Is(got, routing.ErrUnavailable) != down || !errors.Is(got, e) {
			t.Errorf("%d: classified %v; outage want %v", st, got, down)
		}
		if st == 500 && got != error(e) {
			t.Errorf("500 changed: %v", got)
		}
	}
}
