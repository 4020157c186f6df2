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

// authorOf is the author the chat view names on the message holding text
// ("" when it names none).
func authorOf(page, text string) string {
	re := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(text) + `.*?<div class="meta">(?:<span class="author">([^<]*)</span> · )?`)
	if m := re.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// The shared chat names who answered: the cabinet user who wrote (and the
// Open Line's echo of their answer names them rather than Switchboard),
// the Open Line operator, the API.
func TestChatNamesWhoAnswered(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		f := newChatFixture(t, e)
		err := e.App.DB.Gorm.Model(&store.CabinetUser{}).Where("email = ?", "owner@example.com").Update("name", "Анна Петрова").Error
		if err != nil {
			t.Fatal(err)
		}
		_, page := f.owner.get("/chat?d=" + f.anna)
		target := chatTargetRe.FindStringSubmatch(page)
		if target == nil {
			t.Fatal("no target on the page")
		}
		const mine = "Заказ 4512 у курьера."
		send := url.Values{"csrf": {f.ownerTok}, "target": {strings.ReplaceAll(target[1], "&#43;", "+")}, "text": {mine}}
		if r, _ := f.owner.do("POST", "/chat/dialogs/"+f.anna+"/send", send); r.StatusCode != 303 {
			t.Fatalf("send: %d", r.StatusCode)
		}
		const api = "Трек-номер пришлём письмом."
		if st, v := e.Do("POST", "/api/v1/channels/"+f.ch+"/messages", map[string]any{"to": annaWA, "text": api}); st >= 300 {
			t.Fatalf("API send: %d %v", st, v)
		}
		const op = "Курьер позвонит за час."
		var chatID string
		for _, d := range e.B24.Line(apptest.B24MemberID, 1).Dialogs() {
			if strings.Contains(d.ChatName, "Анна") || strings.Contains(d.UserID, annaWA) {
				chatID = d.ChatID
			}
		}
		if chatID == "" {
			t.Fatalf("no Open Lines dialog of Анна: %+v", e.B24.Line(apptest.B24MemberID, 1).Dialogs())
		}
		if _, err := e.B24.OperatorReply(ctx, apptest.B24MemberID, "1", chatID, op); err != nil {
			t.Fatal(err)
		}
		e.WaitIdle()

		for _, lang := range []string{"ru", "en"} {
			err := e.App.DB.Gorm.Model(&store.CabinetUser{}).Where("email = ?", "owner@example.com").Update("language", lang).Error
			if err != nil {
				t.Fatal(err)
			}
			_, page = f.owner.get("/chat?d=" + f.anna)
			if got := authorOf(page, mine); got != "Анна Петрова" {
				t.Fatalf("%s: the cabinet answer's author: %q\n%s", lang, got, page)
			}
			if got := authorOf(page, api); got != "API" {
				t.Fatalf("%s: the API answer's author: %q", lang, got)
			}
			// The portal's operator, named as the portal knows them.
			if got := authorOf(page, op); got != "Olga Ivanova" {
				t.Fatalf("%s: the operator's answer's author: %q", lang, got)
			}
			if got := authorOf(page, "Заказ 4512 ещё в пути?"); got != "" {
				t.Fatalf("%s: the customer's message has an author: %q", lang, got)
			}
		}
		// The line's echo of the cabinet answer names the colleague.
		var echo []string
		for _, m := range e.Portal.ChatMessages() {
			if m.System && strings.Contains(m.Message, mine) {
				echo = append(echo, m.Message)
			}
		}
		if len(echo) != 1 || echo[0] != "Анна Петрова: "+mine {
			t.Fatalf("the line's echo of the cabinet answer: %q", echo)
		}
	})
}

// TestChatNamesANamelessColleagueByEmail: a cabinet user added without a
// name (as `switchboard user add` in the README adds the first one) signs
// their answers with their email, not an id.
func TestChatNamesANamelessColleagueByEmail(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newChatFixture(t, e)
		_, page := f.owner.get("/chat?d=" + f.anna)
		target := chatTargetRe.FindStringSubmatch(page)
		if target == nil {
			t.Fatal("no target on the page")
		}
		const mine = "Счёт отправила на почту."
		send := url.Values{"csrf": {f.ownerTok}, "target": {strings.ReplaceAll(target[1], "&#43;", "+")}, "text": {mine}}
		if r, _ := f.owner.do("POST", "/chat/dialogs/"+f.anna+"/send", send); r.StatusCode != 303 {
			t.Fatalf("send: %d", r.StatusCode)
		}
		e.WaitIdle()
		_, page = f.owner.get("/chat?d=" + f.anna)
		if got := authorOf(page, mine); got != "owner@example.com" {
			t.Fatalf("the nameless colleague's answer is signed %q", got)
		}
	})
}
