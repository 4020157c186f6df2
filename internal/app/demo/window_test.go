package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/demo"
)

// post sends JSON to url and returns the status and the decoded answer.
func post(t *testing.T, url, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, out
}

var clockRe = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)

// The phone page's clock is 24-hour on the demo's Moscow time, and its
// "close the 24-hour window" makes the customer's last message a day old
// to the gateway and to the Meta simulator: the shared chat shows the
// closed-window banner and the template picker, the gateway refuses free
// text and Meta's simulator fails it with 131047.
func TestDemoPhoneClockAndCloseWindow(t *testing.T) {
	d := start(t, t.TempDir())
	closeURL := d.PhoneURL() + "phone/close-window"

	if st, body := post(t, closeURL, "", map[string]any{}); st != http.StatusConflict || !strings.Contains(body["error"].(string), "ещё не писал") {
		t.Fatalf("closing before the customer wrote: %d %v", st, body)
	}
	// JSON only: another site's form cannot close it.
	resp, err := http.Post(closeURL, "application/x-www-form-urlencoded", strings.NewReader("x=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("a form post: %d", resp.StatusCode)
	}

	const ask = "Здравствуйте! Заказ 4512 ещё в пути?"
	if st, body := post(t, d.PhoneURL()+"phone/send", "", map[string]string{"text": ask}); st != http.StatusOK {
		t.Fatalf("phone send: %d %v", st, body)
	}
	eventually(t, "the message stored", func() bool {
		for _, m := range messages(t, d) {
			if m.Direction == "in" && m.Text == ask {
				return true
			}
		}
		return false
	})

	// The clock: 24-hour, Moscow's.
	var phone struct {
		Messages []demo.PhoneMessage `json:"messages"`
	}
	getJSON(t, d, d.PhoneURL()+"phone/messages", &phone)
	msk, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	if len(phone.Messages) != 1 {
		t.Fatalf("the phone shows %+v", phone.Messages)
	}
	if m := phone.Messages[0]; !clockRe.MatchString(m.Clock) || m.Clock != m.Time.In(msk).Format("15:04") {
		t.Fatalf("the phone's clock %q for %s, want 24-hour Moscow time %s", m.Clock, m.Time, m.Time.In(msk).Format("15:04"))
	}
	var ws struct {
		Timezone string `json:"timezone"`
	}
	getJSON(t, d, d.URLs.Gateway+"/api/v1/workspaces/"+d.WorkspaceID, &ws)
	if ws.Timezone != demo.DemoTimezone {
		t.Fatalf("the demo workspace's clock: %q", ws.Timezone)
	}

	send := d.URLs.Gateway + "/api/v1/channels/" + d.WhatsAppID + "/messages"
	if st, body := post(t, send, d.AdminToken, map[string]string{"to": demo.CustomerWaID, "text": "Да, в пути."}); st != http.StatusAccepted {
		t.Fatalf("free text inside the window: %d %v", st, body)
	}
	if st, body := post(t, closeURL, "", map[string]any{}); st != http.StatusOK || !strings.Contains(body["notice"].(string), "Окно закрыто") {
		t.Fatalf("close the window: %d %v", st, body)
	}
	// The gateway refuses free text now.
	if st, body := post(t, send, d.AdminToken, map[string]string{"to": demo.CustomerWaID, "text": "Вы тут?"}); st != http.StatusUnprocessableEntity ||
		body["error"].(map[string]any)["code"] != "window_closed" {
		t.Fatalf("free text after closing: %d %v", st, body)
	}
	// So does the Meta simulator, asked directly as the gateway asks it:
	// accepted, then a failed status with 131047, as Meta does.
	before := len(d.Meta.Webhooks())
	if st, body := post(t, d.URLs.Graph+"/v21.0/"+demo.PhoneNumberID+"/messages", demo.WAToken, map[string]any{
		"messaging_product": "whatsapp", "to": demo.CustomerWaID, "type": "text", "text": map[string]string{"body": "Вы тут?"}}); st != http.StatusOK {
		t.Fatalf("Graph send: %d %v", st, body)
	}
	eventually(t, "Meta's failed status 131047", func() bool {
		for _, w := range d.Meta.Webhooks()[before:] {
			if strings.HasPrefix(w.Kind, "whatsapp.status.failed") && bytes.Contains(w.Body, []byte(`131047`)) {
				return true
			}
		}
		return false
	})

	// The shared chat shows the banner and the template picker.
	c := signIn(t, d, d.OwnerPassword)
	var dialogs struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	getJSON(t, d, d.URLs.Gateway+"/api/v1/dialogs?channel_id="+d.WhatsAppID, &dialogs)
	if len(dialogs.Data) == 0 { // one per CRM
		t.Fatalf("dialogs: %+v", dialogs)
	}
	resp, err = c.Get(d.URLs.Gateway + "/chat?d=" + dialogs.Data[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(page), `id="chat-window" hidden`) ||
		!regexp.MustCompile(`<option value="[^"]+" data-channel="`+d.WhatsAppID+`"`).Match(page) {
		t.Fatalf("the chat after closing the window: %d\n%s", resp.StatusCode, page)
	}

	// A manager's free text from amoCRM's chat is refused too, and the
	// simulated amoCRM page says so with the reason, not a grey tick.
	var conv string
	eventually(t, "the customer in amoCRM's chat", func() bool {
		for _, ch := range d.Amo.Chats(d.AmoAccountID) {
			conv = ch.ConversationID
		}
		return conv != ""
	})
	if _, hd, err := d.Amo.ManagerReply(context.Background(), d.AmoAccountID, conv, demo.AmoManager, "Ответ после суток"); err != nil || hd.Status != http.StatusOK {
		t.Fatalf("manager reply: %v %+v", err, hd)
	}
	eventually(t, "the refusal on amoCRM's page", func() bool {
		resp, err := http.Get(d.URLs.Amo + "/sim/")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		i := bytes.Index(page, []byte("Ответ после суток"))
		return i >= 0 && bytes.Contains(page[i:], []byte("не доставлено / not delivered")) && bytes.Contains(page[i:], []byte("24 час"))
	})
}
