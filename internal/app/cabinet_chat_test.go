package app_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

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
	chatRowRe    = regexp.MustCompile(`(?s)<a class="chat-row[^"]*" href="[^"]*" data-dialog="([^"]+)".*?</a>`)
	chatBadgeRe  = regexp.MustCompile(`class="badge"[^>]*>(\d+)<`)
	chatTargetRe = regexp.MustCompile(`<option value="([^"]+)" data-channel="`)
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
			!strings.Contains(page, `id="chat-form"`) || !strings.Contains(page, `<script src="/assets/chat.js">`) || strings.Contains(page, "<script>") {
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
		if _, page := f.owner.get("/chat?d=" + f.anna); strings.Contains(page, `id="chat-no-reply"`) {
			t.Fatal("no reply needed offered after an answer")
		}
		_, page = f.owner.get("/chat?d=" + f.boris)
		if !strings.Contains(page, `id="chat-no-reply"`) {
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
