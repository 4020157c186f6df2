package bitrix24

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/media"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The notice's words, per language and kind, with what the customer
// controls neutralised and the record linked.
func TestNoticeText(t *testing.T) {
	s := &Service{signer: media.NewSigner([]byte("k"), "https://gw.example", time.Hour), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	in := &store.Integration{ID: "i1", Domain: "shop.bitrix24.ru", ClientEndpoint: "https://shop.bitrix24.ru/rest/"}
	crmMode := &store.ChannelBinding{ID: "b1", Mode: ModeCRM, Entity: "deal", Name: "Розница"}
	ch := &store.Channel{Name: "Продажи WA", DisplayPhone: "+7 701 234 56 78"}
	ct := &store.Contact{ID: "c1", Name: "Анна [b]С[/b]\nСмирнова", Phone: "+79161234567"}
	dialog := func(entity, id string) *store.DialogView {
		return &store.DialogView{Dialog: store.Dialog{ID: "d1", CRMEntity: entity, CRMEntityID: id}, Contact: ct}
	}
	long := strings.Repeat("очень ", 40)
	fileName := "счёт.pdf"
	cases := []struct {
		name    string
		lang    string
		b       *store.ChannelBinding
		n       routing.Notice
		want    []string
		notWant []string
	}{
		{"new, Russian, deal", "ru", crmMode,
			routing.Notice{Kind: routing.NoticeNew, Dialog: dialog("deal", "42"), Message: &store.MessageView{Message: store.Message{ID: "m1", Direction: store.Inbound, Type: "text", Text: "Где [i]заказ[/i]?"}, Contact: ct}},
			[]string{"Новое сообщение от клиента Анна [\u200bb]С[\u200b/b] Смирнова (+79161234567) в канале «Розница»: «Где [\u200bi]заказ[\u200b/i]?»",
				"\n[URL=https://shop.bitrix24.ru/crm/deal/details/42/]Открыть сделку[/URL]"}, []string{"[b]", "[i]"}},
		{"escalation, English, lead", "en", crmMode,
			routing.Notice{Kind: routing.NoticeEscalation, Dialog: dialog("lead", "7"), Waited: 5*time.Minute + time.Second,
				Message: &store.MessageView{Message: store.Message{ID: "m1", Direction: store.Inbound, Type: "text", Text: long}, Contact: ct}},
			[]string{"has been waiting 6 min for an answer in channel “Розница”", "[URL=https://shop.bitrix24.ru/crm/lead/details/7/]Open the lead[/URL]",
				": “" + strings.TrimSpace(strings.Repeat("очень ", 20)) + "…”"}, []string{"Клиент"}},
		{"a file without text, a portal in German reads English", "de", &store.ChannelBinding{ID: "b1", Mode: ModeCRM, Entity: "deal"},
			routing.Notice{Kind: routing.NoticeNew, Dialog: dialog("deal", "42"), Message: &store.MessageView{Message: store.Message{ID: "m1", Direction: store.Inbound, Type: "document"},
				Contact: ct, Media: &store.Media{ID: "f1", State: store.MediaStored, Filename: fileName, MimeType: "application/pdf"}}},
			[]string{"in channel “Продажи WA”: “счёт.pdf”"}, nil},
		{"a record id that is not one is not linked", "ru", crmMode,
			routing.Notice{Kind: routing.NoticeNew, Dialog: dialog("deal", "42]evil[URL=x")},
			[]string{"Новое сообщение"}, []string{"[URL="}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in.Language = c.lang
			d := &routing.Delivery{Integration: in, Binding: c.b, Channel: ch, Contact: ct}
			got, err := s.noticeText(context.Background(), d, c.n, shownLang(c.lang), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(got, w) {
					t.Errorf("%q has %q", got, w)
				}
			}
		})
	}
}

func TestPortalBase(t *testing.T) {
	for _, c := range []struct {
		in   store.Integration
		want string
	}{
		{store.Integration{ClientEndpoint: "https://shop.bitrix24.ru/rest/", Domain: "other"}, "https://shop.bitrix24.ru"},
		{store.Integration{Domain: "shop.bitrix24.kz"}, "https://shop.bitrix24.kz"},
		{store.Integration{Domain: "https://shop.bitrix24.de/"}, "https://shop.bitrix24.de"},
		{store.Integration{Domain: "shop]x"}, ""},
		{store.Integration{}, ""},
	} {
		if got := portalBase(&c.in); got != c.want {
			t.Errorf("portalBase(%+v) = %q, want %q", c.in, got, c.want)
		}
	}
}
