package whatsapp

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

const phoneID = "109283746501928"

var (
	anna  = channel.Customer{ExternalID: "79161234567", Name: "Анна Смирнова", Phone: "+79161234567"}
	erlan = channel.Customer{ExternalID: "77071234567", Name: "Ерлан Ахметов", Phone: "+77071234567"}
	dana  = channel.Customer{ExternalID: "77015550199", Name: "Dana", Phone: "+77015550199"}
	t0    = time.Unix(1767600000, 0).UTC()
)

func inbound(m channel.Inbound) *channel.Batch {
	return &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.WhatsApp, AccountID: phoneID, Owner: wabaID, Messages: []channel.Inbound{m}}}}
}

func statuses(s ...channel.StatusUpdate) *channel.Batch {
	return &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.WhatsApp, AccountID: phoneID, Owner: wabaID, Statuses: s}}}
}

func jsonAny(s string) any { return graph.DecodeAny(json.RawMessage(s)) }

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file string
		want *channel.Batch
	}{
		{"wa-inbound-text.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUFBQkJCQ0NDMTIzNDU2Nzg5AA==",
			Customer:   anna, Type: channel.MsgText, Timestamp: t0,
			Text: "Здравствуйте! Заказ 4512 ещё в пути?",
		})},
		{"wa-inbound-image.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzSU1HMDAwMDAwMDAwMDAwMDAxAA==",
			Customer:   anna, Type: channel.MsgImage, Timestamp: t0,
			Media: &channel.Media{ProviderID: "1284750918273645", MimeType: "image/jpeg", SHA256: "kM0fq3Zs1b0Vv2Xb6jY8nQ0p9wqg1hC7xGZ4uT2mR5E=", Caption: "Вот фото чека"},
		})},
		{"wa-inbound-voice.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzVk9JQ0UwMDAwMDAwMDAwMDAxAA==",
			Customer:   erlan, Type: channel.MsgVoice, Timestamp: t0,
			Media: &channel.Media{ProviderID: "2093847561029384", MimeType: "audio/ogg; codecs=opus", SHA256: "Yk2n8sJ0vR7pQ1xW4cT9eL3mA6hD5fG2bN8kZ0uV1iE="},
		})},
		{"wa-inbound-audio-file.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQVVESU8wMDAwMDAwMDAwMDAxAA==",
			Customer:   erlan, Type: channel.MsgAudio, Timestamp: t0,
			Media: &channel.Media{ProviderID: "3847562910384756", MimeType: "audio/mpeg", SHA256: "p3L9xQ2vB7nM1kR8tY4wE6sA0dF5gH2jK9lZ3cV7bN1="},
		})},
		{"wa-inbound-video.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzVklERU8wMDAwMDAwMDAwMDAxAA==",
			Customer:   anna, Type: channel.MsgVideo, Timestamp: t0,
			Media: &channel.Media{ProviderID: "4756291038475629", MimeType: "video/mp4", SHA256: "Zq8W1eR4tY7uI0oP3aS6dF9gH2jK5lZ8xC1vB4nM7qE=", Caption: "Так выглядит поломка"},
		})},
		{"wa-inbound-document.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRE9DMDAwMDAwMDAwMDAwMDAxAA==",
			Customer:   erlan, Type: channel.MsgDocument, Timestamp: t0,
			Media: &channel.Media{ProviderID: "5629103847562910", MimeType: "application/pdf", SHA256: "bV7nM1qE4wR7tY0uI3oP6aS9dF2gH5jK8lZ1xC4vB7n=", Caption: "Договор, подписанный", Filename: "dogovor_4512.pdf"},
		})},
		{"wa-inbound-sticker.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzU1RJQ0tFUjAwMDAwMDAwMDAxAA==",
			Customer:   dana, Type: channel.MsgSticker, Timestamp: t0,
			Media: &channel.Media{ProviderID: "6291038475629103", MimeType: "image/webp", SHA256: "tY0uI3oP6aS9dF2gH5jK8lZ1xC4vB7nM1qE4wR7tY0u="},
		})},
		{"wa-inbound-location.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzTE9DMDAwMDAwMDAwMDAwMDAxAA==",
			Customer:   erlan, Type: channel.MsgLocation, Timestamp: t0,
			Location: &channel.Location{Latitude: 43.238949, Longitude: 76.889709, Name: "Mega Alma-Ata", Address: "ул. Розыбакиева 247А, Алматы", URL: "https://example.kz/places/mega"},
		})},
		{"wa-inbound-contacts.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQ09OVEFDVFMwMDAwMDAwMDAxAA==",
			Customer:   anna, Type: channel.MsgContacts, Timestamp: t0,
			Text: "Игорь Петров: +7 903 765-43-21, +7 495 123-45-67",
			Extra: map[string]any{"contacts": jsonAny(`[{
				"name": {"formatted_name": "Игорь Петров", "first_name": "Игорь", "last_name": "Петров"},
				"phones": [{"phone": "+7 903 765-43-21", "wa_id": "79037654321", "type": "CELL"}, {"phone": "+7 495 123-45-67", "type": "WORK"}],
				"emails": [{"email": "igor.petrov@example.ru", "type": "WORK"}],
				"org": {"company": "ООО Ромашка", "title": "Менеджер"}}]`)},
		})},
		{"wa-inbound-interactive-button.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQlROUkVQTFkwMDAwMDAwMDAxAA==",
			Customer:   anna, Type: channel.MsgInteractive, Timestamp: t0,
			Text:             "Да, подтверждаю",
			QuotedExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDAxAA==",
			Extra:            map[string]any{"interactive_type": "button_reply", "reply_id": "confirm_yes"},
		})},
		{"wa-inbound-interactive-list.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzTElTVFJFUExZMDAwMDAwMDAxAA==",
			Customer:   erlan, Type: channel.MsgInteractive, Timestamp: t0,
			Text:             "Астана, Мангилик Ел",
			QuotedExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDAyAA==",
			Extra:            map[string]any{"interactive_type": "list_reply", "reply_id": "branch_ast_02", "description": "Пн-Сб 09:00-20:00"},
		})},
		{"wa-inbound-template-quick-reply.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzVFBMQlROMDAwMDAwMDAwMDAxAA==",
			Customer:   anna, Type: channel.MsgButton, Timestamp: t0,
			Text:             "Перенести доставку",
			QuotedExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzVEVNUExBVEUwMDAwMDAwMDAxAA==",
			Extra:            map[string]any{"payload": "RESCHEDULE_4512"},
		})},
		{"wa-inbound-reaction.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzUkVBQ1QwMDAwMDAwMDAwMDAxAA==",
			Customer:   anna, Type: channel.MsgReaction, Timestamp: t0,
			Reaction: &channel.Reaction{TargetExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDAzAA==", Emoji: "👍"},
		})},
		{"wa-inbound-reaction-removed.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzUkVBQ1QwMDAwMDAwMDAwMDAyAA==",
			Customer:   anna, Type: channel.MsgReaction, Timestamp: t0,
			Reaction: &channel.Reaction{TargetExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDAzAA=="},
		})},
		{"wa-inbound-quoted-reply.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzUVVPVEVEMDAwMDAwMDAwMDAxAA==",
			Customer:   erlan, Type: channel.MsgText, Timestamp: t0,
			Text:             "Да, в 15:00 удобно",
			QuotedExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA0AA==",
		})},
		{"wa-inbound-forwarded.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRldEMDAwMDAwMDAwMDAwMDAxAA==",
			Customer:   dana, Type: channel.MsgText, Timestamp: t0,
			Text:      "Пересылаю сообщение от коллеги: нужен счёт на оплату",
			Forwarded: true,
		})},
		{"wa-inbound-referral-ad.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzUkVGRVJSQUwwMDAwMDAwMDAxAA==",
			Customer:   erlan, Type: channel.MsgText, Timestamp: t0,
			Text: "Здравствуйте, хочу узнать про акцию",
			Extra: map[string]any{"referral": map[string]any{
				"source_url":  "https://fb.me/3kLm9PqR2",
				"source_id":   "120210987654321098",
				"source_type": "ad",
				"headline":    "Скидка 20% на доставку",
				"body":        "Напишите нам в WhatsApp",
				"media_type":  "image",
				"image_url":   "https://scontent.example.net/ad/creative_1.jpg",
				"ctwa_clid":   "ARAkLm3nOp4QrSt5UvWx6YzAb7Cd8Ef9Gh0Ij1Kl2Mn3Op4",
			}},
		})},
		{"wa-inbound-unsupported.json", inbound(channel.Inbound{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzVU5TVVBQT1JURUQwMDAwMDAxAA==",
			Customer:   dana, Type: channel.MsgUnsupported, Timestamp: t0,
			Errors: []channel.ProviderError{{Code: 131051, Title: "Message type unknown", Message: "Message type unknown", Details: "Message type is currently not supported."}},
			Extra:  map[string]any{"original_type": "unsupported"},
		})},
		{"wa-status-sent.json", statuses(channel.StatusUpdate{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA1AA==",
			Status:     channel.StatusSent, Timestamp: time.Unix(1767600005, 0).UTC(), RecipientID: "79161234567",
		})},
		{"wa-status-delivered.json", statuses(channel.StatusUpdate{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA1AA==",
			Status:     channel.StatusDelivered, Timestamp: time.Unix(1767600007, 0).UTC(), RecipientID: "79161234567",
		})},
		{"wa-status-read.json", statuses(channel.StatusUpdate{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA1AA==",
			Status:     channel.StatusRead, Timestamp: time.Unix(1767600060, 0).UTC(), RecipientID: "79161234567",
		})},
		{"wa-status-failed.json", statuses(channel.StatusUpdate{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRkFJTEVEMDAwMDAwMDAwMDAxAA==",
			Status:     channel.StatusFailed, Timestamp: time.Unix(1767600003, 0).UTC(), RecipientID: "77071234567",
			Error: &channel.ProviderError{Code: 131047, Title: "Re-engagement message", Message: "Re-engagement message",
				Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
		})},
		{"wa-status-failed-131026.json", statuses(channel.StatusUpdate{
			ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRkFJTEVEMDAwMDAwMDAwMDAyAA==",
			Status:     channel.StatusFailed, Timestamp: time.Unix(1767600004, 0).UTC(), RecipientID: "77770000001",
			Error: &channel.ProviderError{Code: 131026, Title: "Message undeliverable", Message: "Message undeliverable", Details: "Message Undeliverable."},
		})},
		{"wa-webhook-value-errors.json", &channel.Batch{Envelopes: []channel.Envelope{{
			ChannelType: channel.WhatsApp, AccountID: phoneID, Owner: wabaID,
			Errors: []channel.ProviderError{{Code: 130429, Title: "Rate limit hit", Message: "(#130429) Rate limit hit", Details: "Cloud API message throughput has been reached."}},
		}}}},
		{"wa-batch-multi-entries.json", &channel.Batch{Envelopes: []channel.Envelope{
			{
				ChannelType: channel.WhatsApp, AccountID: phoneID, Owner: wabaID,
				Messages: []channel.Inbound{
					{ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQkFUQ0gwMDAwMDAwMDAwMDAxAA==", Customer: anna, Type: channel.MsgText, Text: "Первое сообщение", Timestamp: time.Unix(1767600100, 0).UTC()},
					{ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQkFUQ0gwMDAwMDAwMDAwMDAyAA==", Customer: anna, Type: channel.MsgText, Text: "И второе сразу следом", Timestamp: time.Unix(1767600101, 0).UTC()},
					{
						ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQkFUQ0gwMDAwMDAwMDAwMDAzAA==", Customer: erlan, Type: channel.MsgImage, Timestamp: time.Unix(1767600101, 0).UTC(),
						Media: &channel.Media{ProviderID: "7391028475610293", MimeType: "image/jpeg", SHA256: "aS9dF2gH5jK8lZ1xC4vB7nM1qE4wR7tY0uI3oP6aS9d="},
					},
				},
				Statuses: []channel.StatusUpdate{
					{ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA1AA==", Status: channel.StatusRead, Timestamp: time.Unix(1767600102, 0).UTC(), RecipientID: "79161234567"},
					{ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA2AA==", Status: channel.StatusDelivered, Timestamp: time.Unix(1767600102, 0).UTC(), RecipientID: "77071234567"},
				},
			},
			{
				ChannelType: channel.WhatsApp, AccountID: "118273645500192", Owner: "198273645019283",
				Messages: []channel.Inbound{{
					ExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQkFUQ0gwMDAwMDAwMDAwMDA0AA==", Customer: dana, Type: channel.MsgReaction, Timestamp: time.Unix(1767600103, 0).UTC(),
					Reaction: &channel.Reaction{TargetExternalID: "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA3AA==", Emoji: "❤️"},
				}},
			},
		}}},
	}

	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parser{}.Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			assertBatch(t, got, tt.want)
		})
	}

	// Every webhook fixture must have its expectation here.
	files, _ := os.ReadDir("testdata")
	for _, f := range files {
		n := f.Name()
		if (strings.HasPrefix(n, "wa-inbound-") || strings.HasPrefix(n, "wa-status-") || strings.HasPrefix(n, "wa-webhook-") || strings.HasPrefix(n, "wa-batch-")) && !covered[n] {
			t.Errorf("webhook fixture %s has no test case", n)
		}
	}
}

func assertBatch(t *testing.T, got, want *channel.Batch) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("batch mismatch\n got: %s\nwant: %s", g, w)
	}
}

func TestParseEdgeCases(t *testing.T) {
	wrap := func(value string) []byte {
		return []byte(`{"object":"whatsapp_business_account","entry":[{"id":"` + wabaID + `","changes":[{"field":"messages","value":` + value + `}]}]}`)
	}
	meta := `"metadata":{"display_phone_number":"77012345678","phone_number_id":"109283746501928"}`
	one := func(m channel.Inbound) *channel.Batch { return inbound(m) }
	tests := []struct {
		name string
		body []byte
		want *channel.Batch
	}{
		{
			name: "contacts matched by wa_id, not position; numbers as JSON numbers",
			body: wrap(`{` + meta + `,"contacts":[{"profile":{"name":"Other"},"wa_id":"70000000000"},{"profile":{"name":"Анна Смирнова"},"wa_id":79161234567}],
				"messages":[{"from":79161234567,"id":"wamid.A","timestamp":1767600000,"type":"text","text":{"body":"hi"}}]}`),
			want: one(channel.Inbound{ExternalID: "wamid.A", Customer: anna, Type: channel.MsgText, Text: "hi", Timestamp: t0}),
		},
		{
			name: "no from: business-scoped user id",
			body: wrap(`{` + meta + `,"contacts":[{"profile":{"name":"Hidden","username":"@hidden"},"user_id":"US.123"}],
				"messages":[{"from_user_id":"US.123","id":"wamid.B","timestamp":"1767600000","type":"text","text":{"body":"hi"}}]}`),
			want: one(channel.Inbound{ExternalID: "wamid.B", Customer: channel.Customer{ExternalID: "US.123", Name: "Hidden", Username: "@hidden"}, Type: channel.MsgText, Text: "hi", Timestamp: t0}),
		},
		{
			name: "no ids on the message at all: the lone contact",
			body: wrap(`{` + meta + `,"contacts":[{"profile":{"name":"Dana"},"wa_id":"77015550199"}],
				"messages":[{"id":"wamid.C","timestamp":"1767600000","type":"text","text":{"body":"hi"}}]}`),
			want: one(channel.Inbound{ExternalID: "wamid.C", Customer: dana, Type: channel.MsgText, Text: "hi", Timestamp: t0}),
		},
		{
			name: "unknown type keeps its payload",
			body: wrap(`{` + meta + `,"messages":[{"from":"77015550199","id":"wamid.D","timestamp":"1767600000","type":"order","order":{"catalog_id":"42","product_items":[]}}]}`),
			want: one(channel.Inbound{
				ExternalID: "wamid.D", Customer: channel.Customer{ExternalID: "77015550199", Phone: "+77015550199"}, Type: channel.MsgUnsupported, Timestamp: t0,
				Extra: map[string]any{"original_type": "order", "order": map[string]any{"catalog_id": "42", "product_items": []any{}}},
			}),
		},
		{
			name: "unsupported naming the original kind",
			body: wrap(`{` + meta + `,"messages":[{"from":"77015550199","id":"wamid.E","timestamp":"1767600000","type":"unsupported","unsupported":{"type":"poll"},"errors":[{"code":"131051","title":"Message type unknown"}]}]}`),
			want: one(channel.Inbound{
				ExternalID: "wamid.E", Customer: channel.Customer{ExternalID: "77015550199", Phone: "+77015550199"}, Type: channel.MsgUnsupported, Timestamp: t0,
				Errors: []channel.ProviderError{{Code: 131051, Title: "Message type unknown"}},
				Extra:  map[string]any{"original_type": "poll"},
			}),
		},
		{
			name: "system, nfm_reply, frequently forwarded",
			body: wrap(`{` + meta + `,"messages":[
				{"from":"77015550199","id":"wamid.F","timestamp":"1767600000","type":"system","system":{"body":"User changed number","type":"user_changed_number","new_wa_id":"77015550200"}},
				{"from":"77015550199","id":"wamid.G","timestamp":"1767600000","type":"interactive","interactive":{"type":"nfm_reply","nfm_reply":{"name":"flow","body":"Sent","response_json":"{\"size\":\"M\"}"}}},
				{"from":"77015550199","id":"wamid.H","timestamp":"1767600000","type":"text","context":{"frequently_forwarded":true},"text":{"body":"x"}}]}`),
			want: &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.WhatsApp, AccountID: phoneID, Owner: wabaID, Messages: []channel.Inbound{
				{ExternalID: "wamid.F", Customer: channel.Customer{ExternalID: "77015550199", Phone: "+77015550199"}, Type: channel.MsgSystem, Text: "User changed number", Timestamp: t0,
					Extra: map[string]any{"system_type": "user_changed_number", "new_wa_id": "77015550200"}},
				{ExternalID: "wamid.G", Customer: channel.Customer{ExternalID: "77015550199", Phone: "+77015550199"}, Type: channel.MsgInteractive, Text: "Sent", Timestamp: t0,
					Extra: map[string]any{"interactive_type": "nfm_reply", "flow_name": "flow", "response_json": `{"size":"M"}`, "response": map[string]any{"size": "M"}}},
				{ExternalID: "wamid.H", Customer: channel.Customer{ExternalID: "77015550199", Phone: "+77015550199"}, Type: channel.MsgText, Text: "x", Timestamp: t0,
					Forwarded: true, Extra: map[string]any{"frequently_forwarded": true}},
			}}}},
		},
		{
			name: "odd message salvaged, message without id dropped, unknown status kept",
			body: wrap(`{` + meta + `,"messages":[
				{"from":"77015550199","id":"wamid.I","timestamp":"1767600000","type":"location","location":{"latitude":"forty"}},
				{"from":"77015550199","timestamp":"1767600000","type":"text","text":{"body":"no id"}}],
				"statuses":[{"id":"wamid.J","status":"played","timestamp":"1767600000","recipient_id":"77015550199","errors":"odd"},{"status":"read"}]}`),
			want: &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.WhatsApp, AccountID: phoneID, Owner: wabaID,
				Messages: []channel.Inbound{{ExternalID: "wamid.I", Customer: channel.Customer{ExternalID: "77015550199", Phone: "+77015550199"}, Type: channel.MsgUnsupported, Timestamp: t0,
					Extra: map[string]any{"original_type": "location", "decode_error": "json: cannot unmarshal string into Go struct field location.location.latitude of type float64"}}},
				Statuses: []channel.StatusUpdate{{ExternalID: "wamid.J", Status: "played", Timestamp: t0, RecipientID: "77015550199"}},
			}}},
		},
		{
			name: "other fields ignored",
			body: []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED"}},{"field":"messages"}]}]}`),
			want: &channel.Batch{},
		},
		{
			name: "empty entry list",
			body: []byte(`{"object":"whatsapp_business_account","entry":[]}`),
			want: &channel.Batch{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parser{}.Parse(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "odd message salvaged, message without id dropped, unknown status kept" {
				// The decoder's wording is not ours to pin.
				if e := got.Envelopes[0].Messages[0].Extra; e["decode_error"] != nil {
					e["decode_error"] = tt.want.Envelopes[0].Messages[0].Extra["decode_error"]
				}
			}
			assertBatch(t, got, tt.want)
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, body := range []string{
		``,
		`not json`,
		`[]`,
		`{"object":"instagram","entry":[]}`,
		`{"entry":[]}`,
		`{"object":"whatsapp_business_account","entry":{}}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":{}}}]}]}`,
	} {
		if b, err := (Parser{}).Parse([]byte(body)); err == nil {
			t.Errorf("%q: no error, got %+v", body, b)
		}
	}
}

// A number's events under another WABA's entry stay apart, so the gateway
// can refuse them without losing the rightful ones.
func TestParseKeepsOwnersApart(t *testing.T) {
	value := func(id string) string {
		return `{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"` + phoneID + `"},` +
			`"messages":[{"from":"79161234567","id":"` + id + `","timestamp":"1767600000","type":"text","text":{"body":"hi"}}]}}`
	}
	body := `{"object":"whatsapp_business_account","entry":[{"id":"` + wabaID + `","changes":[` + value("wamid.1") + `]},` +
		`{"id":"300000000000001","changes":[` + value("wamid.2") + `]},{"id":"` + wabaID + `","changes":[` + value("wamid.3") + `]}]}`
	b, err := Parser{}.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Envelopes) != 2 || b.Envelopes[0].Owner != wabaID || len(b.Envelopes[0].Messages) != 2 ||
		b.Envelopes[1].Owner != "300000000000001" || len(b.Envelopes[1].Messages) != 1 || b.Envelopes[1].Messages[0].ExternalID != "wamid.2" {
		t.Fatalf("envelopes: %+v", b.Envelopes)
	}
}
