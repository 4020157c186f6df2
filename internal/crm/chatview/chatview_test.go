package chatview

import (
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/store"
)

// Both languages word the same things: a key missing in one would show as
// nothing on its page.
func TestTextsInBothLanguages(t *testing.T) {
	for key := range texts["ru"] {
		if texts["en"][key] == "" {
			t.Errorf("%q has no English", key)
		}
	}
	for key := range texts["en"] {
		if texts["ru"][key] == "" {
			t.Errorf("%q has no Russian", key)
		}
	}
}

// A notice is worded by the page from a code: a crafted link cannot put
// its own text on it.
func TestNoticeFromCodes(t *testing.T) {
	for _, c := range []struct {
		q     url.Values
		lang  string
		want  string
		isErr bool
	}{
		{url.Values{"sent": {"1"}}, "ru", "поставлено в очередь", false},
		{url.Values{"sent": {"1"}}, "en", "queued for sending", false},
		{url.Values{"error": {"Call +1 555 0100 now"}}, "ru", "Внутренняя ошибка", true},
		{url.Values{"error": {"recipient_foreign"}}, "en", "does not belong to the CRM record", true},
		{url.Values{"error": {"window_closed"}, "messenger": {"instagram"}}, "ru", "7 дней", true},
		{url.Values{"error": {"window_closed"}, "messenger": {"<b>x</b>"}}, "en", "window is closed", true},
		{url.Values{}, "ru", "", false},
	} {
		got, isErr := Notice(c.lang, c.q)
		if !strings.Contains(got, c.want) || isErr != c.isErr || (c.want == "" && got != "") {
			t.Errorf("%v in %s: %q %v", c.q, c.lang, got, isErr)
		}
		if strings.Contains(got, "555") || strings.Contains(got, "<b>") {
			t.Errorf("%v put its own text on the page: %q", c.q, got)
		}
	}
}

// Keep shows a refused send as typed, but only chooses what the page
// offers: a made-up target or template chooses nothing.
func TestKeepChoosesOnlyOffered(t *testing.T) {
	page := func() *Page {
		return &Page{Banners: map[string]string{"whatsapp": "closed"},
			Targets: []Target{{Value: "c|+1", Type: "whatsapp", WindowOpen: true, Selected: true}, {Value: "c|+2", Type: "whatsapp"}},
			Templates: []TemplateChoice{{Value: "c|a|ru", Field: "tv|a|ru|", Vars: []Var{{N: 1}}, Selected: true},
				{Value: "c|b|en", Field: "tv|b|en|"}}}
	}
	p := page()
	p.Keep(url.Values{"target": {"c|+2"}, "tpl": {"c|b|en"}, "tv|a|ru|1": {`<x>`}, "text": {"t"}})
	if !p.Targets[1].Selected || p.Targets[0].Selected || p.WindowClosed != "closed" || p.Templates[0].Selected || !p.Templates[1].Selected ||
		p.Templates[0].Vars[0].Value != "<x>" || p.Text != "t" {
		t.Errorf("kept: %+v", p)
	}
	p = page()
	p.Keep(url.Values{"target": {"x|+9"}, "tpl": {"x|made_up|ru"}})
	if !p.Targets[0].Selected || p.Targets[1].Selected || p.Templates[0].Selected || p.Templates[1].Selected {
		t.Errorf("a made-up choice chose something: %+v", p)
	}
}

// The picker lists the page's language first: ru for a Russian page,
// en_US and en for an English one.
func TestSameLanguage(t *testing.T) {
	for _, c := range []struct {
		code, lang string
		want       bool
	}{{"ru", "ru", true}, {"en_US", "en", true}, {"en", "en", true}, {"en_US", "ru", false}, {"kk", "ru", false}} {
		if got := sameLanguage(c.code, c.lang); got != c.want {
			t.Errorf("sameLanguage(%q, %q) = %v", c.code, c.lang, got)
		}
	}
}

// Every kind of author is named in both languages: a person by their
// name, an unnamed CRM user by id, automations by what they are.
func TestAuthorLabel(t *testing.T) {
	for _, c := range []struct {
		a      *store.MessageAuthor
		ru, en string
	}{
		{nil, "", ""},
		{&store.MessageAuthor{Kind: store.AuthorCabinet, UserID: "u1", Name: "Анна Петрова"}, "Анна Петрова", "Анна Петрова"},
		{&store.MessageAuthor{Kind: store.AuthorCRM, UserID: "7", Name: "Ivan"}, "Ivan", "Ivan"},
		{&store.MessageAuthor{Kind: store.AuthorCRM, UserID: "7"}, "Пользователь #7", "User #7"},
		{&store.MessageAuthor{Kind: store.AuthorAPI}, "API", "API"},
		{&store.MessageAuthor{Kind: store.AuthorAuto}, "Автоответ", "Auto-reply"},
		{&store.MessageAuthor{Kind: store.AuthorRobot, UserID: "bitrix24"}, "Робот Битрикс24", "Bitrix24 robot"},
		{&store.MessageAuthor{Kind: store.AuthorRobot, UserID: "amocrm"}, "Робот amoCRM", "amoCRM robot"},
		{&store.MessageAuthor{Kind: store.AuthorRobot, UserID: "other"}, "Робот CRM", "CRM robot"},
	} {
		if got := AuthorLabel(c.a, Texts("ru")); got != c.ru {
			t.Errorf("ru %+v: %q, want %q", c.a, got, c.ru)
		}
		if got := AuthorLabel(c.a, Texts("en")); got != c.en {
			t.Errorf("en %+v: %q, want %q", c.a, got, c.en)
		}
	}
}
