package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// lastWebhookOf reads the channel's mark straight from the table.
func lastWebhookOf(t *testing.T, e *apptest.Env, id string) *time.Time {
	t.Helper()
	var row struct{ LastWebhookAt *time.Time }
	if err := e.App.DB.Gorm.Table("channels").Select("last_webhook_at").Where("id = ?", id).Take(&row).Error; err != nil {
		t.Fatal(err)
	}
	return row.LastWebhookAt
}

// The channels page shows when a webhook for each channel last arrived,
// in the workspace's clock; the mark is written at most once a minute.
func TestCabinetChannelLastWebhook(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ws := e.App.DefaultWorkspace.ID
		id := e.CreateWhatsApp()
		if st, b := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"timezone": "Asia/Almaty"}); st != 200 {
			t.Fatalf("timezone: %d %v", st, b)
		}
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		v, _ := chatSignIn(t, e, "owner@example.com", ownerPW)
		row := func() string {
			_, page := v.get("/channels")
			r := page[strings.Index(page, `id="ch-`+id+`"`):]
			r = r[strings.Index(r, `class="last-webhook"`):]
			return r[strings.Index(r, ">")+1 : strings.Index(r, "</td>")]
		}
		if got := row(); got != "—" {
			t.Fatalf("before any webhook: %q", got)
		}
		if _, err := e.Sim.SendWhatsAppText(t.Context(), apptest.PhoneNumberID, "77015550101", "Анна", "Здравствуйте!"); err != nil {
			t.Fatal(err)
		}
		var first *time.Time
		e.Eventually("the mark", func() bool { first = lastWebhookOf(t, e, id); return first != nil })
		almaty, _ := time.LoadLocation("Asia/Almaty")
		if got, want := row(), first.In(almaty).Format("02.01.2006 15:04"); got != want {
			t.Fatalf("the page shows %q, want %q (Almaty)", got, want)
		}
		// Another delivery within the minute writes nothing.
		if _, err := e.Sim.SendWhatsAppText(t.Context(), apptest.PhoneNumberID, "77015550101", "Анна", "Алло?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the second message", func() bool { return len(e.Messages(id)) == 2 })
		if again := lastWebhookOf(t, e, id); !again.Equal(*first) {
			t.Fatalf("written again within the minute: %v → %v", first, again)
		}
		// A minute later it is written again.
		later := time.Now().Add(2 * time.Minute)
		e.App.Messaging.SetClock(func() time.Time { return later })
		if _, err := e.Sim.SendWhatsAppText(t.Context(), apptest.PhoneNumberID, "77015550101", "Анна", "Ау"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the mark moves on", func() bool { at := lastWebhookOf(t, e, id); return at != nil && at.After(*first) })
	})
}
