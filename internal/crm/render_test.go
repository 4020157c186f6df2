package crm

import (
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/store"
)

// The extras below are what messaging stores from the parsers' output for
// real WhatsApp and Instagram payloads (see the channel packages' testdata).
func TestRender(t *testing.T) {
	url := func(id string) string { return "https://gw.example/media/" + id + "?sig=x" }
	anna := &store.Contact{Name: "Анна\nСмирнова\u200e", Phone: "+79161234567"}
	msg := func(typ, text, extra string) *store.MessageView {
		m := &store.MessageView{Message: store.Message{ID: "m1", Direction: store.Inbound, Type: typ, Text: text, Status: "received"}, Contact: anna}
		if extra != "" {
			m.Extra = &extra
		}
		return m
	}
	withMedia := func(m *store.MessageView, md store.Media) *store.MessageView {
		md.State = store.MediaStored
		m.Media = &md
		return m
	}
	quoted := msg("text", "Да, в 15:00 удобно", "")
	quoted.Quoted = "Подходит ли время доставки?"
	deleted := msg("system", "", "")
	deleted.Status = "deleted"
	out := msg("text", "Завтра с 10 до 14.", "")
	out.Direction = store.Outbound
	pending := msg("image", "", "")
	pending.Media = &store.Media{ID: "f9", State: "pending"}

	tests := []struct {
		name, lang string
		m          *store.MessageView
		want       Rendered
	}{
		{"text", "ru", msg("text", "Когда доставка?", ""), Rendered{Text: "Когда доставка?"}},
		{"image with caption", "en", withMedia(msg("image", "", `{"caption":"Вот фото чека"}`), store.Media{ID: "f1", MimeType: "image/jpeg"}),
			Rendered{Text: "Вот фото чека", Files: []File{{Name: "f1.jpg", URL: url("f1"), MimeType: "image/jpeg", Caption: "Вот фото чека"}}}},
		{"document", "ru", withMedia(msg("document", "", ""), store.Media{ID: "f2", MimeType: "application/pdf", Filename: "счёт 4512.pdf"}),
			Rendered{Files: []File{{Name: "счёт 4512.pdf", URL: url("f2"), MimeType: "application/pdf"}}}},
		{"file not stored yet", "ru", pending, Rendered{}},
		{"quote", "ru", quoted, Rendered{Text: "Да, в 15:00 удобно", Quote: "Подходит ли время доставки?"}},
		{"reaction ru", "ru", msg("reaction", "", `{"reaction":{"target_external_id":"wamid.1","emoji":"👍"}}`), Rendered{Text: "Реакция 👍 на сообщение"}},
		{"reaction en", "en", msg("reaction", "", `{"reaction":{"target_external_id":"wamid.1","emoji":"👍"}}`), Rendered{Text: "Reaction 👍 to a message"}},
		{"reaction removed", "en", msg("reaction", "", `{"reaction":{"target_external_id":"wamid.1"}}`), Rendered{Text: "Reaction removed"}},
		{"location ru", "ru", msg("location", "", `{"location":{"latitude":43.2383,"longitude":76.9454,"name":"ТРЦ Mega","address":"Розыбакиева 247"}}`),
			Rendered{Text: "📍 Геопозиция\nТРЦ Mega\nРозыбакиева 247\nhttps://maps.google.com/?q=43.2383,76.9454"}},
		{"location en", "en", msg("location", "", `{"location":{"latitude":43.2383,"longitude":76.9454}}`),
			Rendered{Text: "📍 Location\nhttps://maps.google.com/?q=43.2383,76.9454"}},
		{"contacts ru", "ru", msg("contacts", "Ерлан: +7 707 123 45 67", `{"contacts":[{"name":{"formatted_name":"Ерлан"}}]}`), Rendered{Text: "👤 Контакт\nЕрлан: +7 707 123 45 67"}},
		{"contacts en", "en", msg("contacts", "Ерлан: +7 707 123 45 67", `{"contacts":[{"name":{"formatted_name":"Ерлан"}}]}`), Rendered{Text: "👤 Contact\nЕрлан: +7 707 123 45 67"}},
		{"unsupported ru", "ru", msg("unsupported", "", `{"original_type":"poll"}`), Rendered{Text: "[сообщение неподдерживаемого типа: poll]"}},
		{"unsupported en", "en", msg("unsupported", "", `{"original_type":"poll"}`), Rendered{Text: "[message of an unsupported type: poll]"}},
		{"story mention ru", "ru", withMedia(msg("story_mention", "", ""), store.Media{ID: "f3", MimeType: "image/jpeg"}),
			Rendered{Text: "📣 Упоминание в истории", Files: []File{{Name: "f3.jpg", URL: url("f3"), MimeType: "image/jpeg"}}}},
		{"story mention en", "en", msg("story_mention", "", ""), Rendered{Text: "📣 Mentioned you in a story"}},
		{"deleted ru", "ru", deleted, Rendered{Deleted: "Клиент удалил сообщение"}},
		{"deleted en", "en", deleted, Rendered{Deleted: "The customer deleted a message"}},
		{"outgoing", "en", out, Rendered{Text: "Завтра с 10 до 14."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.m, tt.lang, url)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Inbound = tt.m.Direction == store.Inbound
			want.Author = "Анна Смирнова"
			if !want.Inbound {
				want.Author = map[string]string{"ru": "Оператор", "en": "Operator"}[tt.lang]
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// An Extra that does not parse is reported, and the message still shows
// what its plain fields say.
func TestRenderReportsBadExtra(t *testing.T) {
	bad := `{"caption":`
	m := &store.MessageView{Message: store.Message{ID: "m1", Direction: store.Inbound, Type: "text", Text: "привет", Extra: &bad}}
	got, err := Render(m, "ru", nil)
	if err == nil || !strings.Contains(err.Error(), "m1") || got.Text != "привет" {
		t.Fatalf("Render = %+v, %v", got, err)
	}
}

func TestWindowClosed(t *testing.T) {
	for _, tt := range []struct{ lang, typ, has string }{
		{"ru", "whatsapp", "24 час"}, {"en", "whatsapp", "24 hours"},
		{"ru", "instagram", "HUMAN_AGENT"}, {"en", "instagram", "7 days"},
		{"en", "telegram", "window is closed"}, {"ru", "", "Окно"},
	} {
		if got := WindowClosed(tt.lang, tt.typ); !strings.Contains(got, tt.has) {
			t.Errorf("WindowClosed(%q, %q) = %q, want it to mention %q", tt.lang, tt.typ, got, tt.has)
		}
	}
}
