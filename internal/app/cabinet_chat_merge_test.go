package app_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/store"
)

// A WhatsApp channel bound to a Bitrix24 Open Line and to an amoCRM
// account keeps a dialog per integration; the shared chat shows the
// customer once, and any of the dialogs opens the one conversation.
func TestCabinetChatOneRowPerChannelCustomer(t *testing.T) {
	apptest.Each(t, apptest.Options{Bitrix24: true, AmoCRM: true}, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		f := newChatFixture(t, e)
		addAmoAccount(t, e)
		_, tok := e.Do("POST", "/api/v1/workspaces/"+f.ws+"/tokens", map[string]any{"name": "amo"})
		if st, page := consentCallback(t, e, startConsent(t, e, tok["token"].(string))); st != http.StatusOK {
			t.Fatalf("amoCRM consent: %d %s", st, page)
		}
		var amo string
		e.Eventually("amoCRM account active", func() bool {
			for _, in := range amoIntegrations(t, e) {
				if in["state"] == "active" && in["workspace_id"] == f.ws {
					amo = in["id"].(string)
				}
			}
			return amo != ""
		})
		e.WaitIdle()
		if st, v := e.Do("PUT", "/api/v1/integrations/"+amo+"/channels/"+f.ch, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"}); st != http.StatusOK {
			t.Fatalf("bind to amoCRM: %d %v", st, v)
		}
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, annaWA, "Анна", "Вы тут?"); err != nil {
			t.Fatal(err)
		}
		e.WaitIdle()
		var annas []store.Dialog
		e.Eventually("a dialog per integration", func() bool {
			annas = nil
			if err := e.App.DB.Gorm.Where("channel_id = ? AND contact_id = ?", f.ch, f.annaC).Order("created_at").Find(&annas).Error; err != nil {
				t.Fatal(err)
			}
			return len(annas) == 2
		})
		amoAnna := annas[1].ID
		if annas[0].ID != f.anna || annas[1].IntegrationID != amo {
			t.Fatalf("Анна's dialogs: %+v", annas)
		}

		// One row for Анна (her unread counted once, though both dialogs
		// count "Вы тут?"), one for Борис.
		got := chatList(t, f.owner, "")
		if len(got) != 2 {
			t.Fatalf("the owner's list has %d rows: %v", len(got), got)
		}
		row := f.anna
		if _, ok := got[row]; !ok {
			row = amoAnna
		}
		if got[row] != "3" { // Bitrix24's dialog has all 3, amoCRM's the last
			t.Fatalf("the merged row's unread: %v", got)
		}
		// Either id opens the conversation, marked as the selected row.
		for _, id := range []string{f.anna, amoAnna} {
			st, page := f.owner.get("/chat?d=" + id)
			if st != 200 || !strings.Contains(page, "Заказ 4512 ещё в пути?") || !strings.Contains(page, "Вы тут?") ||
				strings.Count(page, `class="chat-row on"`) != 1 || !strings.Contains(page, `id="chat-no-reply"`) || noReplyHidden.MatchString(page) {
				t.Fatalf("?d=%s: %d\n%s", id, st, page)
			}
		}
		// Opened: both dialogs read.
		if got := chatList(t, f.owner, ""); got[row] != "0" {
			t.Fatalf("after opening: %v", got)
		}
		// The log fragment carries the header's waiting words (the
		// script moves them into the header): Анна waits.
		if _, page := f.owner.get("/chat/dialogs/" + amoAnna + "/log"); !strings.Contains(page, `id="chat-log-waiting" data-waiting="`) ||
			strings.Contains(page, `data-waiting=""`) || !strings.Contains(page, `data-no-reply="true"`) {
			t.Fatalf("the log's waiting marker while Анна waits:\n%s", page)
		}
		// No reply needed stops both waits.
		if st, _ := f.owner.post("/chat/dialogs/"+amoAnna+"/no-reply-needed", url.Values{"csrf": {f.ownerTok}}); st != 303 {
			t.Fatalf("no reply needed: %d", st)
		}
		for _, id := range []string{f.anna, amoAnna} {
			if _, d := e.Do("GET", "/api/v1/dialogs/"+id, nil); d["waiting"] != false {
				t.Fatalf("dialog %s still waits: %v", id, d)
			}
		}
		// The log fragment carries the header's waiting words: none now.
		if _, page := f.owner.get("/chat/dialogs/" + f.anna + "/log"); !strings.Contains(page, `id="chat-log-waiting" data-waiting="" data-no-reply="false"`) {
			t.Fatalf("the log's waiting marker:\n%s", page)
		}
		// The manager sees only Bitrix24's dialog (linked there alone):
		// the row shows, and opening amoCRM's id opens it too.
		f.access(t, e, "send", "")
		if got := chatList(t, f.mgr, ""); len(got) != 2 {
			t.Fatalf("the manager's list: %v", got)
		}
		if st, page := f.mgr.get("/chat?d=" + amoAnna); st != 200 || !strings.Contains(page, `/chat/dialogs/`+f.anna+`/send`) {
			t.Fatalf("the manager opening amoCRM's id: %d", st)
		}
	})
}

// Signing in after asking for a page lands on that page; a next that
// names another site is ignored.
func TestCabinetSignInKeepsThePath(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newChatFixture(t, e)
		v := newVisitor(t, e)
		r, _ := v.do("GET", "/chat?d="+f.anna, nil)
		loc := r.Header.Get("Location")
		if r.StatusCode != 303 || !strings.HasPrefix(loc, "/login?next=") {
			t.Fatalf("signed out: %d %q", r.StatusCode, loc)
		}
		_, page := v.get(loc)
		if !strings.Contains(page, `name="next" value="/chat?d=`+f.anna+`"`) {
			t.Fatalf("the form does not keep next:\n%s", page)
		}
		// Switching the form's language keeps it too.
		if r, _ := v.do("GET", "/login?lang=en&next="+url.QueryEscape("/chat?d="+f.anna), nil); r.Header.Get("Location") != "/login?next="+url.QueryEscape("/chat?d="+f.anna) {
			t.Fatalf("language switch: %q", r.Header.Get("Location"))
		}
		r, _ = v.do("POST", "/login", url.Values{"csrf": {csrfOf(t, page)}, "email": {"owner@example.com"}, "password": {ownerPW}, "next": {"/chat?d=" + f.anna}})
		if r.StatusCode != 303 || r.Header.Get("Location") != "/chat?d="+f.anna {
			t.Fatalf("after sign-in: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		for _, bad := range []string{"https://evil.example/x", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "chat"} {
			v := newVisitor(t, e)
			_, page := v.get("/login?next=" + url.QueryEscape(bad))
			if strings.Contains(page, `name="next"`) {
				t.Fatalf("the form keeps next %q", bad)
			}
			r, _ := v.do("POST", "/login", url.Values{"csrf": {csrfOf(t, page)}, "email": {"owner@example.com"}, "password": {ownerPW}, "next": {bad}})
			if r.StatusCode != 303 || r.Header.Get("Location") != "/" {
				t.Fatalf("next %q: %d %q", bad, r.StatusCode, r.Header.Get("Location"))
			}
		}
		// Switching the cabinet's language keeps the open dialog and the
		// list's filter: the page's whole address, query included.
		open := "/chat?d=" + f.anna + "&f=unassigned"
		_, page = v.get(open)
		back := langBackRe.FindStringSubmatch(page)
		if back == nil || html.UnescapeString(back[1]) != open {
			t.Fatalf("the language switch goes back to %q, want %q", back, open)
		}
		r, _ = v.do("POST", "/language", url.Values{"csrf": {csrfOf(t, page)}, "lang": {"en"}, "back": {html.UnescapeString(back[1])}})
		if r.StatusCode != 303 || r.Header.Get("Location") != open {
			t.Fatalf("language switch: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		if _, page := v.get(r.Header.Get("Location")); !strings.Contains(page, `id="chat-name"`) || !strings.Contains(page, `<html lang="en"`) {
			t.Fatal("after the switch the dialog is not open in English")
		}
	})
}

// langBackRe finds where the header's language switch goes back to.
var langBackRe = regexp.MustCompile(`<form method="post" action="/language">.*?name="back" value="([^"]*)"`)
