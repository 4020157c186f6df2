package bitrix24

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

func TestBBToText(t *testing.T) {
	cases := []struct {
		in        string
		signature bool
		want      string
	}{
		{"[b]Анна Петрова:[/b][br]Добрый день!", false, "Добрый день!"},
		{"[b]Анна Петрова:[/b][br]Добрый день!", true, "Анна Петрова: Добрый день!"},
		{"Строка 1[br]Строка 2", false, "Строка 1\nСтрока 2"},
		{"[B]важно[/B] и [i]курсив[/i]", false, "важно и курсив"},
		{"Ссылка: [url=https://shop.example/p/1]товар[/url]", false, "Ссылка: товар (https://shop.example/p/1)"},
		{"без разметки", true, "без разметки"},
	}
	for _, c := range cases {
		if got := BBToText(c.in, c.signature); got != c.want {
			t.Errorf("BBToText(%q, %v) = %q, want %q", c.in, c.signature, got, c.want)
		}
	}
}

func TestSplitNameKeepsWhatBitrixAccepts(t *testing.T) {
	cases := map[string][2]string{
		"Анна Смирнова":        {"Анна", "Смирнова"},
		"Maria 🌸 O'Neil-Smith": {"Maria", "O'Neil-Smith"},
		"+77012345678":         {"+77012345678", ""},
		"Абдуллаевааааааааааааааааааааа": {"Абдуллаеваааааааааааааааа", ""},
	}
	for in, want := range cases {
		f, l := splitName(in)
		if f != want[0] || l != want[1] {
			t.Errorf("splitName(%q) = %q, %q; want %q, %q", in, f, l, want[0], want[1])
		}
	}
}

func view(typ, text, extra string) *store.MessageView {
	m := &store.MessageView{Message: store.Message{Type: typ, Text: text, Status: "received"}}
	if extra != "" {
		m.Extra = &extra
	}
	return m
}

func TestInboundTextShowsEveryTypeReadably(t *testing.T) {
	loc := view("location", "", `{"location":{"latitude":43.2383,"longitude":76.9454,"name":"ТРЦ Mega","address":"Розыбакиева 247"}}`)
	if got := bb(t, loc, "ru"); !strings.Contains(got, "Геопозиция") || !strings.Contains(got, "https://maps.google.com/?q=43.2383,76.9454") || !strings.Contains(got, "ТРЦ Mega") {
		t.Errorf("location: %q", got)
	}
	if got := bb(t, view("reaction", "", `{"reaction":{"emoji":"👍"}}`), "en"); got != "Reaction 👍 to a message" {
		t.Errorf("reaction: %q", got)
	}
	if got := bb(t, view("reaction", "", `{"reaction":{}}`), "ru"); got != "Реакция снята" {
		t.Errorf("removed reaction: %q", got)
	}
	if got := bb(t, view("unsupported", "", `{"original_type":"poll"}`), "ru"); !strings.Contains(got, "poll") {
		t.Errorf("unsupported: %q", got)
	}
	q := view("text", "Да, в 15:00 удобно", "")
	q.Quoted = "Подходит ли вам время доставки?"
	if got := bb(t, q, "ru"); got != "[QUOTE]Подходит ли вам время доставки?[/QUOTE]Да, в 15:00 удобно" {
		t.Errorf("quoted: %q", got)
	}
	img := view("image", "", `{"caption":"Вот фото чека"}`)
	if got := bb(t, img, "ru"); got != "Вот фото чека" {
		t.Errorf("caption: %q", got)
	}
}

func TestParseInstallFromFixture(t *testing.T) {
	raw, err := os.ReadFile("testdata/install-event.txt")
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	in, err := parseInstall(form)
	if err != nil {
		t.Fatal(err)
	}
	if !in.event || in.memberID == "" || in.refreshToken == "" || in.applicationToken == "" || in.domain != "example.bitrix24.ru" {
		t.Fatalf("parsed %+v", in)
	}
	form.Del("auth[refresh_token]")
	if _, err := parseInstall(form); err == nil {
		t.Fatal("install without refresh token accepted")
	}
	page := url.Values{"member_id": {"zz"}, "REFRESH_ID": {"r"}, "APPLICATION_TOKEN": {"a"}}
	if _, err := parseInstall(page); err == nil {
		t.Fatal("malformed member_id accepted")
	}
}

func TestDedupKeyUsesMessageIDs(t *testing.T) {
	raw, err := os.ReadFile("testdata/imconnector-message-add-event.txt")
	if err != nil {
		t.Fatal(err)
	}
	form, _ := url.ParseQuery(strings.TrimSpace(string(raw)))
	data := DecodeForm(form)
	k1 := dedupKey("ONIMCONNECTORMESSAGEADD", data, []byte("a"))
	k2 := dedupKey("ONIMCONNECTORMESSAGEADD", data, []byte("b"))
	msgID := str(list(data["data"].(map[string]any)["MESSAGES"])[0], "im", "message_id")
	if msgID == "" || k1 != "ONIMCONNECTORMESSAGEADD:"+msgID || k1 != k2 {
		t.Fatalf("keys %q %q, want the event name and Bitrix24's message id %q", k1, k2, msgID)
	}
	other := dedupKey("ONIMCONNECTORLINEDELETE", map[string]any{"data": "107"}, []byte("x"))
	if other == k1 {
		t.Fatal("different events share a key")
	}
}

// bbTag matches what Bitrix24 would take as a tag: a name right after "[".
var bbTag = regexp.MustCompile(`(?i)\[/?(b|i|u|s|url|quote|code|color|size|user|chat|send|put|icon|img|br|call|context|dialog)\b`)

// What a customer writes reaches the operator's chat as typed, never as
// Bitrix24 markup: text, captions, quotes, names and file names (S5).
func TestCustomerBBCodeIsNeutralised(t *testing.T) {
	typed := "[url=https://evil.example]Оплатить[/url] [b]срочно[/b] [send=/pay]Pay[/send]"
	check := func(what, got, want string) {
		t.Helper()
		if bbTag.MatchString(got) {
			t.Errorf("%s carries live markup: %q", what, got)
		}
		if shown := strings.ReplaceAll(got, "\u200b", ""); shown != want {
			t.Errorf("%s shows %q, want %q", what, shown, want)
		}
	}
	check("text", bb(t, view("text", typed, ""), "ru"), typed)
	check("caption", bb(t, view("image", "", `{"caption":"[url=https://evil.example]чек[/url]"}`), "ru"), "[url=https://evil.example]чек[/url]")
	q := view("text", "да", "")
	q.Quoted = "[b]x[/b]"
	if got := bb(t, q, "ru"); !strings.HasPrefix(got, "[QUOTE]") || strings.Contains(got, "[b]") {
		t.Errorf("quote: %q (our own [QUOTE] stays markup, the quoted text does not)", got)
	}

	s := &Service{cfg: Config{ConnectorPrefix: "switchboard"}, signer: media.NewSigner([]byte("k"), "https://gw.example", time.Hour)}
	m := view("document", typed, "")
	m.Contact = &store.Contact{ID: "c1", Name: "[url=https://evil.example]Служба поддержки[/url]", Phone: "+79161234567"}
	m.Media = &store.Media{ID: "m1", State: store.MediaStored, Filename: "[b]счёт[/b].pdf"}
	d := &routing.Delivery{Channel: &store.Channel{Type: "whatsapp"}}
	item := s.openLinesMessage(d, m, "ru")
	check("chat name", item["chat"].(map[string]any)["name"].(string), m.Contact.Name)
	check("file name", item["message"].(map[string]any)["files"].([]map[string]any)[0]["name"].(string), "[b]счёт[/b].pdf")
	check("message text", item["message"].(map[string]any)["text"].(string), typed)
	for _, k := range []string{"name", "last_name"} {
		if v, _ := item["user"].(map[string]any)[k].(string); strings.ContainsAny(v, "[]") {
			t.Errorf("user %s: %q", k, v)
		}
	}
	if f, _ := splitName("[]"); bbTag.MatchString(f) || strings.ReplaceAll(f, "\u200b", "") != "[]" {
		t.Errorf("a name of brackets only: %q", f)
	}
}

// Operators' messages are ordered per chat, not per portal: one chat's
// failing reply never holds back another chat's (S4).
func TestEventKeyIsPerChat(t *testing.T) {
	msg := func(chat string) map[string]any {
		return map[string]any{"data": map[string]any{"MESSAGES": []any{map[string]any{"im": map[string]any{"chat_id": chat}}}}}
	}
	a, a2, b := eventKey("p1", msg("11")), eventKey("p1", msg("11")), eventKey("p1", msg("12"))
	if a != a2 || a == b || eventKey("p2", msg("11")) == a {
		t.Fatalf("keys %q %q %q", a, a2, b)
	}
	if k := eventKey("p1", map[string]any{"data": "3"}); k != "b24event:p1" {
		t.Fatalf("line delete key %q", k)
	}
}

// A file the portal refuses (4xx) is refused for good; a 5xx or 429 is
// worth another try.
func TestDownloadTellsRefusedFromTransient(t *testing.T) {
	for status, refused := range map[int]bool{404: true, 403: true, 410: true, 429: false, 408: false, 500: false, 503: false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
		s := &Service{http: srv.Client()}
		_, _, err := s.download(context.Background(), &store.Integration{ClientEndpoint: srv.URL + "/rest/"}, "/file")
		srv.Close()
		var fr *fileRefused
		if errors.As(err, &fr) != refused || err == nil {
			t.Errorf("HTTP %d: %v, refused for good: %v", status, err, refused)
		}
	}
}

// bb is the Bitrix24 chat text of a message, as Open Lines and the
// timeline get it.
func bb(t *testing.T, m *store.MessageView, lang string) string {
	t.Helper()
	r, err := crm.Render(m, lang, nil)
	if err != nil {
		t.Fatal(err)
	}
	return InboundText(r)
}
