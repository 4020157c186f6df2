package app_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// The CRM card pages' live updates and quick replies (issue 9): the
// Bitrix24 card tab and the amoCRM card window are the chat view the
// cabinet shows, with its event stream and its quick reply picker.

var streamRe = regexp.MustCompile(`data-stream="([^"]+)"`)

// streamOf is the page's event stream address (with its ticket).
func streamOf(t *testing.T, page string) string {
	t.Helper()
	m := streamRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no event stream on the page:\n%s", page)
	}
	return html.UnescapeString(m[1])
}

// ticketContacts are the customers a page's stream ticket names (its
// signed body, read without the key).
func ticketContacts(t *testing.T, page string) []string {
	t.Helper()
	u, err := url.Parse(streamOf(t, page))
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := strings.Cut(u.Query().Get("t"), ".")
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	var tk struct {
		Contacts []string `json:"c"`
	}
	if err := json.Unmarshal(raw, &tk); err != nil {
		t.Fatal(err)
	}
	return tk.Contacts
}

// openStream opens an event stream as an EventSource does and sends each
// event's data on the channel; cancel closes it.
func openStream(t *testing.T, e *apptest.Env, path string) (<-chan string, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan string, 16)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				out <- line[6:]
			}
		}
		close(out)
	}()
	return out, cancel
}

// nextEvent is the next event's customers.
func nextEvent(t *testing.T, events <-chan string) []string {
	t.Helper()
	select {
	case data, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		var d struct {
			All      bool     `json:"all"`
			Contacts []string `json:"contacts"`
		}
		if err := json.Unmarshal([]byte(data), &d); err != nil || d.All {
			t.Fatalf("event %q: %v", data, err)
		}
		slices.Sort(d.Contacts)
		return d.Contacts
	case <-time.After(20 * time.Second):
		t.Fatal("no event")
	}
	return nil
}

// streamStatus is the status a GET of the stream answers.
func streamStatus(t *testing.T, e *apptest.Env, path string) int {
	t.Helper()
	resp, err := http.Get(e.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// newWorkspace creates a workspace by the API.
func newWorkspace(t *testing.T, e *apptest.Env, name string) string {
	t.Helper()
	st, w := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": name})
	if st != http.StatusCreated {
		t.Fatalf("workspace: %d %v", st, w)
	}
	return w["id"].(string)
}

// contactOf is the store's contact id of a WhatsApp number in a workspace.
func contactOf(t *testing.T, e *apptest.Env, ws, waID string) string {
	t.Helper()
	cs, err := e.App.Store.ContactsByExternalIDs(context.Background(), ws, []string{waID})
	if err != nil || len(cs) != 1 {
		t.Fatalf("contact %s in %s: %v %v", waID, ws, cs, err)
	}
	return cs[0].ID
}

// liveBoundary checks a card page's stream: the ticket is no session and
// cannot be altered; a hidden customer of the same workspace and the same
// number in another workspace are not announced, the shown customer is.
// It returns the open stream.
func liveBoundary(t *testing.T, e *apptest.Env, page, ws, shown string) (<-chan string, context.CancelFunc) {
	t.Helper()
	stream, sess := streamOf(t, page), sessOf(t, page)
	if strings.Contains(stream, sess) || strings.Contains(stream, "sess=") {
		t.Fatalf("the page session is in the stream's address: %s", stream)
	}
	base, _, _ := strings.Cut(stream, "?")
	u, _ := url.Parse(stream)
	tk := u.Query().Get("t")
	for name, bad := range map[string]string{"the page session": sess, "no ticket": "", "an altered ticket": "x" + tk} {
		if st := streamStatus(t, e, base+"?"+url.Values{"t": {bad}}.Encode()); st != http.StatusUnauthorized {
			t.Fatalf("stream with %s: %d", name, st)
		}
	}
	events, cancel := openStream(t, e, stream)
	// Another customer of the workspace, and the shown customer's number
	// in another workspace, write first.
	ws2 := newWorkspace(t, e, "Другой филиал")
	e.Sim.AddWhatsAppNumber("555000333", "104857392017466", "+7 701 555 00 33", apptest.WAToken)
	st, body := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "Другой", "workspace_id": ws2,
		"phone_number_id": "555000333", "waba_id": "104857392017466", "access_token": apptest.WAToken})
	if st != http.StatusCreated {
		t.Fatalf("second workspace's channel: %d %v", st, body)
	}
	ctx := context.Background()
	if _, err := e.Sim.SendWhatsAppText(ctx, "555000333", shown, "Анна", "В другой филиал"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, "79990001122", "Борис", "Скрытый вопрос"); err != nil {
		t.Fatal(err)
	}
	e.Eventually("the other customers' messages stored", func() bool {
		cs, err := e.App.Store.ContactsByExternalIDs(ctx, ws2, []string{shown})
		hidden, err2 := e.App.Store.ContactsByExternalIDs(ctx, ws, []string{"79990001122"})
		return err == nil && err2 == nil && len(cs) == 1 && len(hidden) == 1
	})
	e.WaitIdle()
	// Then the shown customer: the first event names them alone.
	if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, shown, "Анна", "Ещё вопрос"); err != nil {
		t.Fatal(err)
	}
	if got, want := nextEvent(t, events), []string{contactOf(t, e, ws, shown)}; !slices.Equal(got, want) {
		t.Fatalf("the first event names %v, want only the shown customer %v", got, want)
	}
	return events, cancel
}

// pageLog posts a page's session for its messages again, as its script does.
func pageLog(t *testing.T, e *apptest.Env, path, sess string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(e.URL+path, url.Values{"sess": {sess}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// quickReplies makes a quick reply with a file in ws and one in another
// workspace; it returns their ids.
func quickReplies(t *testing.T, e *apptest.Env, ws string) (own, foreign string) {
	t.Helper()
	st, q := apiMultipart(t, e, "POST", "/api/v1/quick-replies", apptest.AdminToken, map[string]string{"title": "Прайс", "text": "Наш прайс", "workspace_id": ws}, "price.pdf", quickFile)
	if st != 201 {
		t.Fatalf("quick reply: %d %v", st, q)
	}
	other := newWorkspace(t, e, "Чужой")
	st, f := apiMultipart(t, e, "POST", "/api/v1/quick-replies", apptest.AdminToken, map[string]string{"title": "Чужой", "text": "чужой текст", "workspace_id": other}, "secret.pdf", quickFile)
	if st != 201 {
		t.Fatalf("foreign quick reply: %d %v", st, f)
	}
	return q["id"].(string), f["id"].(string)
}

// quickSent checks that the last Graph send is the quick reply's document.
func quickSent(t *testing.T, e *apptest.Env, sends int) {
	t.Helper()
	path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
	e.Eventually("the quick reply sent", func() bool { return len(graphSends(e.Sim, path)) == sends })
	var doc struct {
		Type     string `json:"type"`
		Document struct {
			ID, Caption, Filename string
		} `json:"document"`
	}
	last := graphSends(e.Sim, path)[sends-1]
	if err := json.Unmarshal(last.Body, &doc); err != nil || doc.Type != "document" || doc.Document.ID == "" ||
		doc.Document.Filename != "price.pdf" || doc.Document.Caption != "Наш прайс" {
		t.Fatalf("the quick reply went without its file: %v %s", err, last.Body)
	}
}

// The Bitrix24 card tab: its stream tells of the record's customer and
// nobody else, its refresh brings the new message, and a quick reply with
// a file is sent from it (another workspace's is refused).
func TestBitrix24CardTabLive(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		_, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Когда доставка?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("question", func() bool { return len(e.Messages(ch)) == 1 })
		e.WaitIdle()
		own, foreign := quickReplies(t, e, ws)
		contact := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "+7 916 123-45-67"}}})
		deal := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Заказ", "CONTACT_ID": contact})
		st, page := frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, 1), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(deal)+`"}`)
		if st != http.StatusOK || !strings.Contains(page, "Когда доставка?") {
			t.Fatalf("card tab: %d\n%s", st, page)
		}
		if opts := quickOptRe.FindAllStringSubmatch(page, -1); len(opts) != 1 || opts[0][1] != own || opts[0][3] != "price.pdf" {
			t.Fatalf("the tab's quick replies: %v\n%s", opts, page)
		}
		events, cancel := liveBoundary(t, e, page, ws, customer)
		defer cancel()
		sess := sessOf(t, page)
		st, log := pageLog(t, e, "/bitrix24/tab/log", sess)
		if st != http.StatusOK || !strings.Contains(log, "Ещё вопрос") || strings.Contains(log, "Скрытый вопрос") || !strings.Contains(log, `id="chat-live-meta" data-stream="/bitrix24/tab/events?t=`) {
			t.Fatalf("refresh: %d\n%s", st, log)
		}
		if st, _ := pageLog(t, e, "/bitrix24/tab/log", "forged"); st != http.StatusUnauthorized {
			t.Fatalf("refresh without a session: %d", st)
		}
		target := ch + "|+79161234567"
		before := len(e.Messages(ch))
		st, body := pagePostMultipart(t, e, "/bitrix24/tab/send", url.Values{"sess": {sess}, "target": {target}, "quick": {foreign}}, nil)
		if st != http.StatusNotFound || !strings.Contains(body, "Этого быстрого ответа больше нет") {
			t.Fatalf("another workspace's quick reply: %d\n%s", st, body)
		}
		if n := len(e.Messages(ch)); n != before {
			t.Fatal("another workspace's quick reply sent something")
		}
		sends := len(graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages"))
		st, body = pagePostMultipart(t, e, "/bitrix24/tab/send", url.Values{"sess": {sess}, "target": {target}, "quick": {own}}, nil)
		if st != http.StatusOK || !strings.Contains(body, "поставлено в очередь") {
			t.Fatalf("quick reply from the tab: %d\n%s", st, body)
		}
		quickSent(t, e, sends+1)
		// The sent message and its statuses are the customer's changes too.
		want := []string{contactOf(t, e, ws, customer)}
		if got := nextEvent(t, events); !slices.Equal(got, want) {
			t.Fatalf("the send's event names %v", got)
		}
	})
}

// The amoCRM card window: the same stream and quick replies.
func TestAmoCRMCardLive(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		f := newAmoCardFixture(t, e)
		own, foreign := quickReplies(t, e, f.ws)
		st, page := amoCard(t, e, amoManagerUser, "leads", f.lead, "ru")
		if st != http.StatusOK || !strings.Contains(page, "Когда доставка?") {
			t.Fatalf("card window: %d\n%s", st, page)
		}
		if opts := quickOptRe.FindAllStringSubmatch(page, -1); len(opts) != 1 || opts[0][1] != own {
			t.Fatalf("the window's quick replies: %v\n%s", opts, page)
		}
		events, cancel := liveBoundary(t, e, page, f.ws, "79161234567")
		defer cancel()
		sess := sessOf(t, page)
		st, log := pageLog(t, e, "/amocrm/card/log", sess)
		if st != http.StatusOK || !strings.Contains(log, "Ещё вопрос") || strings.Contains(log, "Скрытый вопрос") || !strings.Contains(log, `data-stream="/amocrm/card/events?t=`) {
			t.Fatalf("refresh: %d\n%s", st, log)
		}
		target := f.ch + "|+79161234567"
		st, body := amoCardSend(t, e, url.Values{"sess": {sess}, "target": {target}, "quick": {foreign}}, nil)
		if st != http.StatusNotFound || !strings.Contains(body, "Этого быстрого ответа больше нет") {
			t.Fatalf("another workspace's quick reply: %d\n%s", st, body)
		}
		sends := len(graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages"))
		st, body = amoCardSend(t, e, url.Values{"sess": {sess}, "target": {target}, "quick": {own}}, nil)
		if st != http.StatusOK || !strings.Contains(body, "поставлено в очередь") {
			t.Fatalf("quick reply from the card: %d\n%s", st, body)
		}
		quickSent(t, e, sends+1)
		if got := nextEvent(t, events); !slices.Equal(got, []string{contactOf(t, e, f.ws, "79161234567")}) {
			t.Fatalf("the send's event names %v", got)
		}
	})
}
