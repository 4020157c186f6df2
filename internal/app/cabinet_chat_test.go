package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

// chatFixture is a portal with a WhatsApp channel and two customers who
// wrote: Анна (twice, unassigned) and Борис (owned by CRM user 7); an
// owner, a manager linked to CRM user 7 and a manager linked to nobody.
type chatFixture struct {
	integ, ws, ch    string
	anna, boris      string // dialog ids
	annaC            string // Анна's contact id
	owner, mgr, bare *visitor
	ownerTok, mgrTok string
}

const (
	annaWA  = "79161234567"
	borisWA = "79167654321"
)

func newChatFixture(t *testing.T, e *apptest.Env) *chatFixture {
	t.Helper()
	ctx := context.Background()
	f := &chatFixture{}
	f.integ, f.ws = e.InstallBitrix24()
	f.ch = createWAIn(t, e, f.ws)
	bindLine(t, e, f.integ, f.ch, "1")
	for _, m := range [][3]string{{annaWA, "Анна", "Здравствуйте!"}, {annaWA, "Анна", "Заказ 4512 ещё в пути?"}, {borisWA, "Борис", "Есть размер 42?"}} {
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, m[0], m[1], m[2]); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dialogsOf(t, e, "channel_id="+f.ch) {
		switch d["customer"].(map[string]any)["id"] {
		case annaWA:
			f.anna = d["id"].(string)
		case borisWA:
			f.boris = d["id"].(string)
		}
	}
	var dv store.Dialog
	if err := e.App.DB.Gorm.Where("id = ?", f.anna).First(&dv).Error; err != nil {
		t.Fatal(err)
	}
	f.annaC = dv.ContactID
	if err := e.App.DB.Gorm.Model(&store.Dialog{}).Where("id = ?", f.boris).Update("owner_user_id", "7").Error; err != nil {
		t.Fatal(err)
	}
	if err := e.App.Store.ReplaceCRMUsers(ctx, f.integ, []store.CRMUser{{UserID: "7", Name: "Ivan", Active: true}, {UserID: "8", Name: "Olga", Active: true}}); err != nil {
		t.Fatal(err)
	}
	addUser(t, e, f.ws, "owner@example.com", "owner", ownerPW)
	mgr := addUser(t, e, f.ws, "ivan@example.com", "manager", "manager password")
	addUser(t, e, f.ws, "bare@example.com", "manager", "bare password")
	if err := e.App.Store.ReplaceCabinetUserCRMLinks(ctx, mgr, map[string]string{f.integ: "7"}); err != nil {
		t.Fatal(err)
	}
	f.owner, f.ownerTok = chatSignIn(t, e, "owner@example.com", ownerPW)
	f.mgr, f.mgrTok = chatSignIn(t, e, "ivan@example.com", "manager password")
	f.bare, _ = chatSignIn(t, e, "bare@example.com", "bare password")
	return f
}

func chatSignIn(t *testing.T, e *apptest.Env, email, pw string) (*visitor, string) {
	t.Helper()
	v := newVisitor(t, e)
	if st := v.login(email, pw); st != 303 {
		t.Fatalf("%s sign-in: %d", email, st)
	}
	_, home := v.get("/")
	return v, csrfOf(t, home)
}

// access sets the integration's matrix: CRM user 7's level on the channel.
func (f *chatFixture) access(t *testing.T, e *apptest.Env, level, visibility string) {
	t.Helper()
	body := map[string]any{"access_mode": "matrix", "access": []map[string]any{{"user_id": "7", "channels": map[string]string{f.ch: level}}}}
	if visibility != "" {
		body["visibility"] = visibility
	}
	if st, b := e.Do("PUT", "/api/v1/integrations/"+f.integ+"/settings", body); st != 200 {
		t.Fatalf("settings: %d %v", st, b)
	}
}

var (
	noReplyHidden = regexp.MustCompile(`<form id="chat-no-reply-form"[^>]*\shidden[\s>]`)
	chatRowRe     = regexp.MustCompile(`(?s)<a class="chat-row[^"]*" href="[^"]*" data-dialog="([^"]+)".*?</a>`)
	chatBadgeRe   = regexp.MustCompile(`class="badge"[^>]*>(\d+)<`)
	chatTargetRe  = regexp.MustCompile(`<option value="([^"]+)" data-channel="`)
)

// chatList is the list as the page shows it: dialog id → unread count.
func chatList(t *testing.T, v *visitor, query string) map[string]string {
	t.Helper()
	st, page := v.get("/chat/list?" + query)
	if st != 200 {
		t.Fatalf("list ?%s: %d", query, st)
	}
	out := map[string]string{}
	for _, m := range chatRowRe.FindAllStringSubmatch(page, -1) {
		n := "0"
		if b := chatBadgeRe.FindStringSubmatch(m[0]); b != nil {
			n = b[1]
		}
		out[m[1]] = n
	}
	return out
}

func TestCabinetChatListUnreadAndSend(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		f := newChatFixture(t, e)
		// Never opened: what waits since the last answer.
		if got := chatList(t, f.owner, ""); len(got) != 2 || got[f.anna] != "2" || got[f.boris] != "1" {
			t.Fatalf("owner's list: %v", got)
		}
		st, page := f.owner.get("/chat?d=" + f.anna)
		if st != 200 || !strings.Contains(page, "Заказ 4512 ещё в пути?") || strings.Contains(page, "Есть размер 42?") ||
			!strings.Contains(page, `id="chat-form"`) || !strings.Contains(page, `data-max="52428800"`) || !strings.Contains(page, `<script src="/assets/chat.js">`) || strings.Contains(page, "<script>") {
			t.Fatalf("owner's dialog: %d\n%s", st, page)
		}
		// Opened: read for the owner, and for nobody else.
		if got := chatList(t, f.owner, ""); got[f.anna] != "0" || got[f.boris] != "1" {
			t.Fatalf("after opening: %v", got)
		}
		f.access(t, e, "send", "")
		if got := chatList(t, f.mgr, ""); got[f.anna] != "2" {
			t.Fatalf("the manager's unread follow the owner's reading: %v", got)
		}
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, annaWA, "Анна", "Алло?"); err != nil {
			t.Fatal(err)
		}
		if got := chatList(t, f.owner, ""); got[f.anna] != "1" {
			t.Fatalf("a message after reading: %v", got)
		}

		// Send: the target the page offers, the session's token.
		target := chatTargetRe.FindStringSubmatch(page)
		if target == nil {
			t.Fatal("no target on the page")
		}
		send := url.Values{"target": {strings.ReplaceAll(target[1], "&#43;", "+")}, "text": {"Добрый день! Заказ в Алматы."}}
		if st, _ := f.owner.post("/chat/dialogs/"+f.anna+"/send", send); st != 403 {
			t.Fatalf("a send without the CSRF token: %d", st)
		}
		send.Set("csrf", f.ownerTok)
		r, _ := f.owner.do("POST", "/chat/dialogs/"+f.anna+"/send", send)
		if r.StatusCode != 303 || !strings.Contains(r.Header.Get("Location"), "sent=1") {
			t.Fatalf("send: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		found := false
		for _, m := range e.Messages(f.ch) {
			found = found || (m["direction"] == "out" && m["text"] == "Добрый день! Заказ в Алматы.")
		}
		if !found {
			t.Fatal("the message was not stored")
		}
		e.Eventually("read tick", func() bool {
			_, page := f.owner.get("/chat/dialogs/" + f.anna + "/log")
			return strings.Contains(page, `data-status="read"`)
		})
		// The answer ends the wait; "no reply needed" is offered only
		// while someone waits.
		// (The form is always there, hidden when not offered, so that a
		// live refresh can show it when the customer writes again.)
		if _, page := f.owner.get("/chat?d=" + f.anna); !noReplyHidden.MatchString(page) {
			t.Fatal("no reply needed offered after an answer")
		}
		_, page = f.owner.get("/chat?d=" + f.boris)
		if !strings.Contains(page, `id="chat-no-reply"`) || noReplyHidden.MatchString(page) {
			t.Fatal("no reply needed not offered while Борис waits")
		}
		if st, _ := f.owner.post("/chat/dialogs/"+f.boris+"/no-reply-needed", url.Values{"csrf": {f.ownerTok}}); st != 303 {
			t.Fatalf("no reply needed: %d", st)
		}
		if _, d := e.Do("GET", "/api/v1/dialogs/"+f.boris, nil); d["waiting"] != false || d["no_reply_needed_at"] == nil {
			t.Fatalf("Борис still waits: %v", d)
		}
		// The page speaks the user's language.
		if st, _ := f.owner.post("/language", url.Values{"csrf": {f.ownerTok}, "lang": {"en"}, "back": {"/chat"}}); st != 303 {
			t.Fatalf("language: %d", st)
		}
		if _, page := f.owner.get("/chat?d=" + f.anna); !strings.Contains(page, ">Unassigned<") || !strings.Contains(page, "Conversation") || strings.Contains(page, "Переписка") {
			t.Fatal("the chat is not in English")
		}
	})
}

// What each person sees and may do: a manager through the CRM user they
// are linked to (the access matrix and visibility), a manager linked to
// nobody nothing (with the reason), another workspace's owner nothing.
func TestCabinetChatAccess(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newChatFixture(t, e)
		target := func(page string) string {
			m := chatTargetRe.FindStringSubmatch(page)
			if m == nil {
				return ""
			}
			return strings.ReplaceAll(m[1], "&#43;", "+")
		}
		_, ownerPage := f.owner.get("/chat?d=" + f.anna)
		to := target(ownerPage)

		// Read only: the dialogs show, the send box does not, and a send
		// made by hand is refused before anything is stored.
		f.access(t, e, "read", "")
		if got := chatList(t, f.mgr, ""); len(got) != 2 {
			t.Fatalf("read-only manager's list: %v", got)
		}
		if got := chatList(t, f.mgr, "f=mine"); len(got) != 1 || got[f.boris] == "" {
			t.Fatalf("mine: %v", got)
		}
		if got := chatList(t, f.mgr, "f=unassigned"); len(got) != 1 || got[f.anna] == "" {
			t.Fatalf("unassigned: %v", got)
		}
		st, page := f.mgr.get("/chat?d=" + f.anna)
		if st != 200 || strings.Contains(page, `id="chat-form"`) || !strings.Contains(page, `id="chat-read-only"`) || !strings.Contains(page, "Здравствуйте!") {
			t.Fatalf("read-only dialog: %d", st)
		}
		before := len(e.Messages(f.ch))
		if st, _ := f.mgr.post("/chat/dialogs/"+f.anna+"/send", url.Values{"csrf": {f.mgrTok}, "target": {to}, "text": {"нельзя"}}); st != 403 {
			t.Fatalf("read-only send: %d", st)
		}
		if st, _ := f.mgr.post("/chat/dialogs/"+f.boris+"/no-reply-needed", url.Values{"csrf": {f.mgrTok}}); st != 403 {
			t.Fatalf("read-only no reply needed: %d", st)
		}
		// Send access: the box is back and the send goes.
		f.access(t, e, "send", "")
		if _, page := f.mgr.get("/chat?d=" + f.anna); !strings.Contains(page, `id="chat-form"`) || strings.Contains(page, `id="chat-read-only"`) {
			t.Fatal("send access: no send box")
		}
		if r, _ := f.mgr.do("POST", "/chat/dialogs/"+f.anna+"/send", url.Values{"csrf": {f.mgrTok}, "target": {to}, "text": {"можно"}}); r.StatusCode != 303 {
			t.Fatalf("send: %d", r.StatusCode)
		}
		if n := len(e.Messages(f.ch)); n != before+1 {
			t.Fatalf("%d messages after one allowed and one refused send, want %d", n, before+1)
		}
		// Own visibility: a colleague's dialog and the unassigned… the
		// manager sees their own only (unassigned stay visible by the rule).
		f.access(t, e, "send", "own")
		if err := e.App.DB.Gorm.Model(&store.Dialog{}).Where("id = ?", f.anna).Update("owner_user_id", "8").Error; err != nil {
			t.Fatal(err)
		}
		if got := chatList(t, f.mgr, ""); len(got) != 1 || got[f.boris] == "" {
			t.Fatalf("own visibility: %v", got)
		}
		for _, p := range []string{"/chat?d=" + f.anna, "/chat/dialogs/" + f.anna + "/log"} {
			if st, _ := f.mgr.get(p); st != 404 {
				t.Errorf("a colleague's dialog %s: %d", p, st)
			}
		}
		if got := chatList(t, f.owner, ""); len(got) != 2 {
			t.Fatalf("the owner sees everything: %v", got)
		}
		if _, page := f.owner.get("/chat/list?f=mine"); !strings.Contains(page, `id="chat-mine-unlinked"`) {
			t.Fatal("an owner linked to nobody is not told why “mine” is empty")
		}
		// No access to the channel: nothing.
		f.access(t, e, "none", "")
		if got := chatList(t, f.mgr, ""); len(got) != 0 {
			t.Fatalf("no access: %v", got)
		}

		// Linked to nobody: no dialogs, and why.
		_, page = f.bare.get("/chat")
		if !strings.Contains(page, `id="chat-no-links"`) || strings.Contains(page, `class="chat-row`) {
			t.Fatal("a manager without CRM links is not told why the list is empty")
		}
		if st, _ := f.bare.get("/chat?d=" + f.boris); st != 404 {
			t.Fatalf("a manager without links opens a dialog: %d", st)
		}

		// Another workspace's owner: no route reaches this one's dialogs.
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Другая"})
		addUser(t, e, other["id"].(string), "boss@other.example", "owner", "other password")
		boss, bossTok := chatSignIn(t, e, "boss@other.example", "other password")
		if got := chatList(t, boss, ""); len(got) != 0 {
			t.Fatalf("another workspace's list: %v", got)
		}
		before = len(e.Messages(f.ch))
		for _, c := range []struct {
			method, path string
			form         url.Values
		}{
			{"GET", "/chat?d=" + f.boris, nil},
			{"GET", "/chat/dialogs/" + f.boris + "/log", nil},
			{"POST", "/chat/dialogs/" + f.boris + "/send", url.Values{"csrf": {bossTok}, "target": {to}, "text": {"чужое"}}},
			{"POST", "/chat/dialogs/" + f.boris + "/no-reply-needed", url.Values{"csrf": {bossTok}}},
		} {
			if r, page := boss.do(c.method, c.path, c.form); r.StatusCode != 404 || strings.Contains(page, "Есть размер 42?") {
				t.Errorf("another workspace's owner %s %s: %d", c.method, c.path, r.StatusCode)
			}
		}
		if n := len(e.Messages(f.ch)); n != before {
			t.Fatal("another workspace's owner sent a message")
		}
		if _, d := e.Do("GET", "/api/v1/dialogs/"+f.boris, nil); d["waiting"] != true {
			t.Fatal("another workspace's owner changed a dialog")
		}
	})
}

// sseEvents opens the chat's event stream as v and sends each event's
// id and data on the channel; cancel closes it.
func sseEvents(t *testing.T, e *apptest.Env, v *visitor, lastID string) (<-chan [2]string, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.URL+"/chat/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := v.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan [2]string, 16)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var id, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && data != "":
				out <- [2]string{id, data}
				id, data = "", ""
			}
		}
		close(out)
	}()
	return out, cancel
}

// The live updates: a customer's message and a status reach an open
// stream of the workspace, naming the customer; a stream that reconnects
// with an old Last-Event-ID is told to fetch everything again.
func TestCabinetChatEvents(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newChatFixture(t, e)
		if st, _ := newVisitor(t, e).get("/chat/events"); st != 303 {
			t.Fatalf("a stream without a session: %d", st)
		}
		events, cancel := sseEvents(t, e, f.owner, "")
		defer cancel()
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, annaWA, "Анна", "Ещё вопрос"); err != nil {
			t.Fatal(err)
		}
		var lastID string
		deadline := time.After(20 * time.Second)
		for got := false; !got; {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("the stream ended")
				}
				var d struct {
					All      bool
					Contacts []string
				}
				if err := json.Unmarshal([]byte(ev[1]), &d); err != nil {
					t.Fatalf("event data %q: %v", ev[1], err)
				}
				for _, c := range d.Contacts {
					got = got || c == f.annaC
				}
				lastID = ev[0]
			case <-deadline:
				t.Fatal("no event for Анна's message")
			}
		}
		if lastID == "" {
			t.Fatal("events carry no id")
		}
		// Reconnecting from before: "everything changed" at once.
		again, cancel2 := sseEvents(t, e, f.owner, "1")
		defer cancel2()
		select {
		case ev := <-again:
			if !strings.Contains(ev[1], `"all":true`) {
				t.Fatalf("first event after reconnecting: %v", ev)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no catch-up event after reconnecting")
		}
	})
}

// Media in the shared chat: a customer's photo shows as a preview, and a
// voice note sent from the cabinet's send box (a file, multipart with the
// CSRF token in the body) plays in the page.
func TestCabinetChatMedia(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newChatFixture(t, e)
		ctx := context.Background()
		wamid, _, err := e.Sim.SendWhatsAppImage(ctx, apptest.PhoneNumberID, annaWA, "Анна", "image/png", []byte("\x89PNG\r\n\x1a\nchek"), "Чек")
		if err != nil {
			t.Fatal(err)
		}
		e.Eventually("photo stored", func() bool {
			for _, m := range e.Messages(f.ch) {
				if md, _ := m["media"].(map[string]any); m["external_id"] == wamid && md != nil && md["state"] == "stored" {
					return true
				}
			}
			return false
		})
		_, page := f.owner.get("/chat?d=" + f.anna)
		if !regexp.MustCompile(`<img class="preview" src="[^"]+/media/[^"]+" alt="[^"]+\.png"`).MatchString(page) {
			t.Fatalf("no preview of the photo:\n%s", page)
		}
		target := chatTargetRe.FindStringSubmatch(page)
		if target == nil {
			t.Fatal("no target")
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for k, v := range map[string]string{"csrf": f.ownerTok, "target": strings.ReplaceAll(target[1], "&#43;", "+")} {
			if err := mw.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="voice.ogg"`)
		h.Set("Content-Type", "audio/ogg")
		part, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write([]byte("OggS\x00voice")); err != nil {
			t.Fatal(err)
		}
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("POST", e.URL+"/chat/dialogs/"+f.anna+"/send", &body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("X-Requested-With", "fetch")
		resp, err := f.owner.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			OK     bool
			Notice string
		}
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !res.OK {
			t.Fatalf("voice note: %d %+v %v", resp.StatusCode, res, err)
		}
		_, page = f.owner.get("/chat/dialogs/" + f.anna + "/log")
		if !regexp.MustCompile(`<audio controls preload="none" src="[^"]+/media/`).MatchString(page) {
			t.Fatalf("the voice note does not play in the page:\n%s", page)
		}
	})
}

// TestCabinetChatUnboundChannel: a channel bound to no CRM keeps no
// dialogs, yet a team without a CRM reads and answers its customers in the
// shared chat — owners and managers alike, since no CRM user's rights
// apply — and another workspace neither lists nor opens them.
func TestCabinetChatUnboundChannel(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		ws := e.App.DefaultWorkspace.ID
		ch := createWAIn(t, e, ws)
		for _, text := range []string{"Здравствуйте!", "Заказ 4512 ещё в пути?"} {
			if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, annaWA, "Анна", text); err != nil {
				t.Fatal(err)
			}
		}
		var anna string // Анна's contact id: her conversation's
		e.Eventually("Анна's messages", func() bool {
			ct, err := e.App.Store.GetContact(ctx, ch, annaWA)
			if err == nil && len(e.Messages(ch)) == 2 {
				anna = ct.ID
			}
			return anna != ""
		})
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		addUser(t, e, ws, "mgr@example.com", "manager", "manager password")
		owner, ownerTok := chatSignIn(t, e, "owner@example.com", ownerPW)
		mgr, _ := chatSignIn(t, e, "mgr@example.com", "manager password")
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Other"})
		addUser(t, e, other["id"].(string), "stranger@example.com", "owner", "stranger password")
		stranger, strangerTok := chatSignIn(t, e, "stranger@example.com", "stranger password")

		for who, v := range map[string]*visitor{"owner": owner, "manager": mgr} {
			if got := chatList(t, v, ""); len(got) != 1 || got[anna] != "2" {
				t.Fatalf("%s's list: %v, want Анна with 2 unread", who, got)
			}
			st, page := v.get("/chat?d=" + anna)
			if st != 200 || !strings.Contains(page, "Заказ 4512 ещё в пути?") || !strings.Contains(page, `id="chat-form"`) ||
				!strings.Contains(page, "ждёт") || strings.Contains(page, `id="chat-no-links"`) {
				t.Fatalf("%s's conversation: %d\n%s", who, st, page)
			}
		}
		// Nothing keeps a "no reply needed" outside a dialog: not offered.
		_, page := owner.get("/chat?d=" + anna)
		if strings.Contains(page, `id="chat-no-reply"`) && !noReplyHidden.MatchString(page) {
			t.Fatal("no reply needed offered for a channel bound to no CRM")
		}
		target := chatTargetRe.FindStringSubmatch(page)
		if target == nil {
			t.Fatal("no target on the page")
		}
		send := url.Values{"target": {strings.ReplaceAll(target[1], "&#43;", "+")}, "text": {"Добрый день! Заказ в пути."}, "csrf": {ownerTok}}
		// Another workspace's owner can neither see nor write to Анна.
		if got := chatList(t, stranger, ""); len(got) != 0 {
			t.Fatalf("another workspace lists %v", got)
		}
		if st, _ := stranger.get("/chat?d=" + anna); st != 404 {
			t.Fatalf("another workspace opens Анна: %d", st)
		}
		strangerSend := url.Values{"target": send["target"], "text": {"чужой"}, "csrf": {strangerTok}}
		if st, _ := stranger.post("/chat/dialogs/"+anna+"/send", strangerSend); st != 404 {
			t.Fatalf("another workspace writes to Анна: %d", st)
		}
		r, _ := owner.do("POST", "/chat/dialogs/"+anna+"/send", send)
		if r.StatusCode != 303 || !strings.Contains(r.Header.Get("Location"), "sent=1") {
			t.Fatalf("send: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		sent := 0
		for _, m := range e.Messages(ch) {
			if m["direction"] == "out" {
				sent++
				if m["text"] != "Добрый день! Заказ в пути." {
					t.Fatalf("sent %v", m)
				}
			}
		}
		if sent != 1 {
			t.Fatalf("%d answers stored, want 1", sent)
		}
		// The answer ends the wait and the unread.
		if got := chatList(t, mgr, ""); got[anna] != "0" {
			t.Fatalf("after the answer: %v", got)
		}
		if _, page := owner.get("/chat/list"); strings.Contains(page, `class="wait"`) {
			t.Fatalf("Анна still waits after the answer:\n%s", page)
		}
	})
}
