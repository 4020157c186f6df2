package metasim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSignatureFixtureVector(t *testing.T) {
	tests := []struct {
		file string
		size int
		want string
	}{
		{"wa-inbound-text.json", 1028, "sha256=b0a71c18faa4863d31eb94b261908282013da831fdde602ca7236d3012b6b486"},
		{"ig-inbound-text.json", 606, "sha256=95982ab87250ec7c7fc4f357f3804449b960b08a34250ceb172e38c1149b6b51"},
	}
	sim := New(Options{AppSecret: "test_app_secret"})
	defer sim.Close()
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b := fixture(t, tc.file)
			if len(b) != tc.size {
				t.Fatalf("fixture is %d bytes, README says %d", len(b), tc.size)
			}
			if got := SignBody("test_app_secret", b); got != tc.want {
				t.Errorf("SignBody = %s, want %s", got, tc.want)
			}
			if got := sim.Sign(b); got != tc.want {
				t.Errorf("Server.Sign = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPostWebhookFixtureVerbatim(t *testing.T) {
	env := newSim(t, Options{})
	b := fixture(t, "wa-batch-multi-entries.json")
	status, err := env.sim.PostWebhook(context.Background(), b)
	if err != nil || status != 200 {
		t.Fatalf("PostWebhook: %d %v", status, err)
	}
	if got := env.gw.received(); len(got) != 1 || string(got[0]) != string(b) {
		t.Errorf("fixture not delivered byte for byte")
	}
	env.gw.status.Store(http.StatusForbidden)
	if status, err := env.sim.PostWebhook(context.Background(), b); err != nil || status != http.StatusForbidden {
		t.Errorf("PostWebhook to rejecting gateway: %d %v", status, err)
	}
}

func TestInboundWebhookShapes(t *testing.T) {
	env := newSim(t, Options{})
	ctx := context.Background()
	wamid, err := env.sim.SendWhatsAppText(ctx, testPhoneID, testCustomer, "Анна Смирнова", "Здравствуйте! Заказ 4512 ещё в пути?")
	if err != nil {
		t.Fatal(err)
	}
	quoted := "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA0AA=="
	replyID, err := env.sim.SendWhatsAppReply(ctx, testPhoneID, "77071234567", "Ерлан", quoted, "Да, в 15:00 удобно")
	if err != nil {
		t.Fatal(err)
	}
	got := env.gw.received()
	if len(got) != 2 {
		t.Fatalf("%d deliveries", len(got))
	}
	assertSameShape(t, got[0], "wa-inbound-text.json")
	assertSameShape(t, got[1], "wa-inbound-quoted-reply.json")

	h := decodeWAHook(t, got[0])
	v := h.Entry[0].Changes[0].Value
	m := v.Messages[0]
	if h.Entry[0].ID != testWABA || v.Metadata.PhoneNumberID != testPhoneID || v.Metadata.DisplayPhoneNumber != "77012345678" ||
		m.ID != wamid || m.From != testCustomer || m.Text.Body != "Здравствуйте! Заказ 4512 ещё в пути?" || v.Contacts[0].WaID != testCustomer {
		t.Errorf("inbound text %s", got[0])
	}
	if !strings.Contains(string(got[0]), `"timestamp":"`) {
		t.Errorf("timestamp must be a string of seconds: %s", got[0])
	}
	r := decodeWAHook(t, got[1]).Entry[0].Changes[0].Value.Messages[0]
	if r.ID != replyID || r.Context == nil || r.Context.ID != quoted || r.Context.From != "77012345678" {
		t.Errorf("reply %s", got[1])
	}
	if _, err := env.sim.SendWhatsAppText(ctx, "nope", testCustomer, "A", "x"); err == nil {
		t.Error("unknown phone number id must fail")
	}
}

// Meta escapes non-ASCII and '/', so re-serialising the parsed body gives
// a different signature; the simulator must send bytes like that.
func TestWebhookBytesEscapedLikeMeta(t *testing.T) {
	text := "Привет / 👍 <b>&"
	payload, _, err := BuildWhatsAppWebhook(WhatsAppInbound{
		WABAID: testWABA, PhoneNumberID: testPhoneID, DisplayPhone: testDisplay,
		From: testCustomer, Name: "Анна", Time: time.Unix(1767600000, 0), Text: text,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range payload {
		if c >= 0x80 {
			t.Fatalf("non-ASCII byte at %d: %s", i, payload)
		}
	}
	for _, want := range []string{`\u041f\u0440\u0438`, `\ud83d\udc4d`, ` \/ `, `<b>&`, `"timestamp":"1767600000"`} {
		if !strings.Contains(string(payload), want) {
			t.Errorf("payload lacks %s: %s", want, payload)
		}
	}
	var h waWebhook
	if err := json.Unmarshal(payload, &h); err != nil {
		t.Fatal(err)
	}
	if got := h.Entry[0].Changes[0].Value.Messages[0].Text.Body; got != text {
		t.Errorf("round trip %q", got)
	}
	reencoded, _ := json.Marshal(h)
	if SignBody(testSecret, reencoded) == SignBody(testSecret, payload) {
		t.Error("re-encoded body signs the same; the escaping trap is not armed")
	}
}

func TestWebhookFailuresRecorded(t *testing.T) {
	env := newSim(t, Options{AutoStatuses: true})
	env.gw.status.Store(http.StatusInternalServerError)
	wamid, err := env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi")
	var se *WebhookStatusError
	if !errors.As(err, &se) || se.StatusCode != 500 || wamid == "" {
		t.Fatalf("err = %v, wamid %q", err, wamid)
	}
	// The customer did write, so the window is open even though the
	// gateway failed to take the webhook.
	if status, body := env.sendWA(t, textTo(testCustomer, "ok")); status != 200 {
		t.Fatalf("send: %d %s", status, body)
	}
	env.sim.Wait()
	errs := env.sim.WebhookErrors()
	if len(errs) != 4 { // inbound + sent, delivered, read
		t.Fatalf("%d webhook errors: %+v", len(errs), errs)
	}
	for _, e := range errs {
		if e.Status != 500 || e.OK() || len(e.Body) == 0 {
			t.Errorf("recorded %+v", e)
		}
	}
	if errs[1].Kind != "whatsapp.status.sent" {
		t.Errorf("kind %q", errs[1].Kind)
	}

	unreachable := New(Options{WebhookURL: "http://127.0.0.1:1/webhooks/meta", AppSecret: testSecret})
	defer unreachable.Close()
	unreachable.AddWhatsAppNumber(testPhoneID, testWABA, testDisplay, testWAToken)
	if _, err := unreachable.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi"); err == nil {
		t.Error("unreachable gateway: no error")
	}
	if errs := unreachable.WebhookErrors(); len(errs) != 1 || errs[0].Err == "" {
		t.Errorf("unreachable gateway errors %+v", errs)
	}
}

func TestNewWAMIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewWAMID(testCustomer)
		if !strings.HasPrefix(id, "wamid.HBgL") || seen[id] {
			t.Fatalf("bad or duplicate wamid %q", id)
		}
		seen[id] = true
	}
}

func TestPostWebhookFixtureOpensWindow(t *testing.T) {
	env := newSim(t, Options{})
	// Fixtures use the same ids as the tests: number 109283746501928,
	// customer 79161234567, IG account 17841405822304914, IGSID 1133627508796544.
	for _, f := range []string{"wa-inbound-text.json", "ig-inbound-text.json", "ig-echo.json"} {
		if status, err := env.sim.PostWebhook(context.Background(), fixture(t, f)); err != nil || status != 200 {
			t.Fatalf("%s: %d %v", f, status, err)
		}
	}
	if status, body := env.sendWA(t, textTo(testCustomer, "ok")); status != 200 {
		t.Fatalf("send: %d %s", status, body)
	}
	env.sim.Wait()
	if n := len(env.sim.Webhooks()); n != 3 { // no failed/131047 status
		t.Errorf("%d deliveries, want the 3 fixtures only", n)
	}
	if status, body := env.call(t, http.MethodPost, "/v25.0/me/messages", testIGToken, igText(testIGSID, "RESPONSE", "", "ok")); status != 200 {
		t.Errorf("IG send after posted fixture: %d %s", status, body)
	}
}

func TestVerifyWebhook(t *testing.T) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != http.MethodGet || q.Get("hub.mode") != "subscribe" || q.Get("hub.verify_token") != "right" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		io.WriteString(w, q.Get("hub.challenge"))
	}))
	defer gw.Close()
	sim := New(Options{WebhookURL: gw.URL + "/webhooks/meta"})
	defer sim.Close()
	if status, err := sim.VerifyWebhook(context.Background(), "right"); err != nil || status != 200 {
		t.Errorf("right token: %d %v", status, err)
	}
	status, err := sim.VerifyWebhook(context.Background(), "wrong")
	var se *WebhookStatusError
	if status != 403 || !errors.As(err, &se) {
		t.Errorf("wrong token: %d %v", status, err)
	}
}
