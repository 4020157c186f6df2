package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	dir := "../channel/whatsapp/testdata"
	if strings.HasPrefix(name, "ig-") {
		dir = "../channel/instagram/testdata"
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// get digs into decoded JSON: get(m, "customer", "name").
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

const (
	waOut    = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA1AA==" // the fixtures' business message
	waFailed = "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRkFJTEVEMDAwMDAwMDAwMDAxAA=="
	igEcho   = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk0MDk2NjE5Mjc0MTAyMzo3MTk4NzY1NDMyNQZDZD"
	igText   = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk0MDk2NjE5Mjc0MTAyMzo3MTk4NzY1NDMyMQZDZD"
)

type fixtureCase struct {
	file   string
	stored int
	// check looks at the message(s) the fixture produced, by external id.
	check func(t *testing.T, e *apptest.Env, byExt func(string) map[string]any)
}

func firstID(t *testing.T, body []byte, path ...string) string {
	var v any
	json.Unmarshal(body, &v)
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			v = x[0]
			if m, ok := v.(map[string]any); ok {
				v = m[p]
			}
		}
	}
	s, _ := v.(string)
	if s == "" {
		t.Fatalf("fixture has no %v", path)
	}
	return s
}

func want(t *testing.T, m map[string]any, path string, w any) {
	t.Helper()
	got := get(m, strings.Split(path, ".")...)
	if f, ok := w.(int); ok {
		w = float64(f)
	}
	if got != w {
		t.Errorf("%s = %#v, want %#v (message %v)", path, got, w, m)
	}
}

// seedOutbound stores a business message with a wamid, as if we had sent it.
func seedOutbound(t *testing.T, e *apptest.Env, channelID, ext, to string) {
	t.Helper()
	ch, err := e.App.Store.GetChannel(t.Context(), store.All, channelID)
	if err != nil {
		t.Fatal(err)
	}
	err = e.App.Store.Tx(t.Context(), func(tx *gorm.DB) error {
		ct, err := store.UpsertContact(tx, ch, channel.Customer{ExternalID: to}, nil)
		if err != nil {
			return err
		}
		_, err = store.InsertMessage(tx, &store.Message{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ContactID: ct.ID,
			Direction: store.Outbound, Type: "text", Text: "seed", ExternalID: &ext, Status: "sent"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWebhookFixturesAreStored(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		wa, ig := e.CreateWhatsApp(), e.CreateInstagram()
		seedOutbound(t, e, wa, waOut, "79161234567")
		seedOutbound(t, e, wa, waFailed, "77071234567")
		msgs := func() map[string]map[string]any {
			out := map[string]map[string]any{}
			for _, ch := range []string{wa, ig} {
				for _, m := range e.Messages(ch) {
					if id, _ := m["external_id"].(string); id != "" {
						out[id] = m
					}
				}
			}
			return out
		}
		cases := []fixtureCase{
			{"wa-status-sent.json", 0, statusIs(waOut, "sent")},
			{"wa-status-read.json", 0, statusIs(waOut, "read")},
			// A late "delivered" never moves a read message back.
			{"wa-status-delivered.json", 0, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(waOut)
				want(t, x, "status", "read")
				if x["delivered_at"] == nil {
					t.Errorf("delivered_at not recorded: %v", x)
				}
			}},
			{"wa-status-failed.json", 0, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(waFailed)
				want(t, x, "status", "failed")
				want(t, x, "error.code", 131047)
				want(t, x, "error.title", "Re-engagement message")
			}},
			{"wa-inbound-text.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-text.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "type", "text")
				want(t, x, "direction", "in")
				want(t, x, "text", "Здравствуйте! Заказ 4512 ещё в пути?")
				want(t, x, "customer.name", "Анна Смирнова")
				want(t, x, "customer.phone", "+79161234567")
				want(t, x, "customer.id", "79161234567")
				want(t, x, "status", "received")
			}},
			{"wa-inbound-image.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-image.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "type", "image")
				want(t, x, "media.mime_type", "image/jpeg")
				if get(x, "media", "id") == nil || get(x, "extra", "caption") == nil {
					t.Errorf("image without media row or caption: %v", x)
				}
			}},
			{"wa-inbound-voice.json", 1, typeIs("wa-inbound-voice.json", "voice")},
			{"wa-inbound-audio-file.json", 1, typeIs("wa-inbound-audio-file.json", "audio")},
			{"wa-inbound-video.json", 1, typeIs("wa-inbound-video.json", "video")},
			{"wa-inbound-document.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-document.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "type", "document")
				if f, _ := get(x, "media", "filename").(string); f == "" {
					t.Errorf("document lost its filename: %v", x)
				}
			}},
			{"wa-inbound-sticker.json", 1, typeIs("wa-inbound-sticker.json", "sticker")},
			{"wa-inbound-location.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-location.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "type", "location")
				if _, ok := get(x, "extra", "location", "latitude").(float64); !ok {
					t.Errorf("location lost its coordinates: %v", x)
				}
			}},
			{"wa-inbound-contacts.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-contacts.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "type", "contacts")
				if get(x, "extra", "contacts") == nil || x["text"] == "" {
					t.Errorf("contacts not kept readable: %v", x)
				}
			}},
			{"wa-inbound-interactive-button.json", 1, typeIs("wa-inbound-interactive-button.json", "interactive")},
			{"wa-inbound-interactive-list.json", 1, typeIs("wa-inbound-interactive-list.json", "interactive")},
			{"wa-inbound-template-quick-reply.json", 1, typeIs("wa-inbound-template-quick-reply.json", "button")},
			{"wa-inbound-reaction.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-reaction.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "type", "reaction")
				want(t, x, "extra.reaction.emoji", "👍")
			}},
			{"wa-inbound-reaction-removed.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-reaction-removed.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "type", "reaction")
				if get(x, "extra", "reaction", "emoji") != nil {
					t.Errorf("removed reaction has an emoji: %v", x)
				}
			}},
			{"wa-inbound-quoted-reply.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-quoted-reply.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "quoted.external_id", "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzT1VUQk9VTkQwMDAwMDAwMDA0AA==")
			}},
			{"wa-inbound-forwarded.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-forwarded.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "extra.forwarded", true)
			}},
			{"wa-inbound-referral-ad.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-referral-ad.json"), "entry", "changes", "value", "messages", "id"))
				if get(x, "extra", "referral") == nil {
					t.Errorf("ad referral lost: %v", x)
				}
			}},
			{"wa-inbound-unsupported.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "wa-inbound-unsupported.json"), "entry", "changes", "value", "messages", "id"))
				want(t, x, "type", "unsupported")
				want(t, x, "error.code", 131051)
			}},
			// Two entries: three messages for our number, one for a number we do not have (kept as unrouted).
			{"wa-batch-multi-entries.json", 3, nil},
			{"wa-webhook-value-errors.json", 0, nil},
			{"ig-inbound-text.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(igText)
				want(t, x, "text", "Привет! Есть размер M?")
				want(t, x, "customer.id", "1133627508796544")
			}},
			{"ig-inbound-image.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "ig-inbound-image.json"), "entry", "messaging", "message", "mid"))
				want(t, x, "type", "image")
				if get(x, "media", "id") == nil {
					t.Errorf("image without media: %v", x)
				}
			}},
			{"ig-inbound-quoted-reply.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "ig-inbound-quoted-reply.json"), "entry", "messaging", "message", "mid"))
				if q, _ := get(x, "quoted", "external_id").(string); q == "" {
					t.Errorf("quote lost: %v", x)
				}
			}},
			{"ig-inbound-quick-reply.json", 1, typeIsIG("ig-inbound-quick-reply.json", "text")},
			{"ig-echo.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(igEcho)
				want(t, x, "direction", "out")
				want(t, x, "status", "sent")
				want(t, x, "customer.id", "1133627508796544")
			}},
			{"ig-reaction.json", 1, nil},
			{"ig-unreaction.json", 1, nil},
			{"ig-read.json", 0, statusIs(igEcho, "read")},
			{"ig-story-mention.json", 1, typeIsIG("ig-story-mention.json", "story_mention")},
			{"ig-story-reply.json", 1, func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
				x := m(firstID(t, fixture(t, "ig-story-reply.json"), "entry", "messaging", "message", "mid"))
				if get(x, "extra", "story") == nil {
					t.Errorf("story reply lost the story: %v", x)
				}
			}},
			{"ig-postback.json", 1, nil},
			{"ig-deleted.json", 0, statusIs(igText, "deleted")},
		}
		total := 0
		for _, c := range cases {
			st, body := e.PostWebhook(fixture(t, c.file))
			if st != http.StatusOK {
				t.Fatalf("%s: %d %v", c.file, st, body)
			}
			if got := int(body["stored"].(float64)); got != c.stored && !(c.file == "ig-deleted.json" && got == 1) {
				t.Errorf("%s: stored %d, want %d (%v)", c.file, got, c.stored, body)
			}
			total += c.stored
			if c.check != nil {
				all := msgs()
				c.check(t, e, func(ext string) map[string]any {
					m, ok := all[ext]
					if !ok {
						t.Fatalf("%s: no message with external id %s", c.file, ext)
					}
					return m
				})
			}
		}
		before := len(msgs())
		// Meta retries: every delivery again stores nothing new.
		for _, c := range cases {
			if strings.HasPrefix(c.file, "wa-status") || c.file == "ig-read.json" || c.file == "ig-deleted.json" {
				continue
			}
			st, body := e.PostWebhook(fixture(t, c.file))
			if st != http.StatusOK || body["stored"].(float64) != 0 {
				t.Errorf("redelivery of %s: %d %v", c.file, st, body)
			}
		}
		if after := len(msgs()); after != before {
			t.Fatalf("redeliveries changed the message count: %d → %d", before, after)
		}
	})
}

func typeIs(file, typ string) func(*testing.T, *apptest.Env, func(string) map[string]any) {
	return func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
		want(t, m(firstID(t, fixture(t, file), "entry", "changes", "value", "messages", "id")), "type", typ)
	}
}

func typeIsIG(file, typ string) func(*testing.T, *apptest.Env, func(string) map[string]any) {
	return func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
		want(t, m(firstID(t, fixture(t, file), "entry", "messaging", "message", "mid")), "type", typ)
	}
}

func statusIs(ext, status string) func(*testing.T, *apptest.Env, func(string) map[string]any) {
	return func(t *testing.T, e *apptest.Env, m func(string) map[string]any) {
		want(t, m(ext), "status", status)
	}
}
