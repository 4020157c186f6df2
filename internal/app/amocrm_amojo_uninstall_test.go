package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/store"
)

// managerMessage is the manager's message amoID in the account's chats as
// amojo keeps it (with the delivery status the gateway reported).
func managerMessage(e *apptest.Env, account int, amoID string) (amosim.ChatMessage, bool) {
	for _, c := range e.Amo.Chats(account) {
		for _, m := range c.Messages {
			if m.AmoID == amoID && !m.Incoming {
				return m, true
			}
		}
	}
	return amosim.ChatMessage{}, false
}

// failedInChat waits for the manager's message amoID to be reported
// failed to amojo and returns it.
func failedInChat(t *testing.T, e *apptest.Env, amoID string) amosim.ChatMessage {
	t.Helper()
	var m amosim.ChatMessage
	e.Eventually("the manager's message reported failed to amojo", func() bool {
		var ok bool
		m, ok = managerMessage(e, amoAccount, amoID)
		return ok && m.Delivery == -1
	})
	return m
}

// TestAmojoSettingsDeleteDisconnects: "Delete integration" on the
// widget's settings page does what amoCRM's disable hook does — the chat
// channel is disconnected in amoCRM too, so managers are not left
// answering into a chat nobody reads; installing again connects it again
// (found by a new-user trial: amojo still said connected and answers were
// lost silently).
func TestAmojoSettingsDeleteDisconnects(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		id, _, ch := amoBound(t, e, map[string]any{"mode": "crm"})
		scope := amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()

		_, sess := openSettings(t, e, amoAdminUser, "ru")
		st, page, _ := pageCall(t, e, "POST", "/amocrm/settings/delete", url.Values{"sess": {sess}})
		if st != http.StatusOK {
			t.Fatalf("delete: %d\n%s", st, page)
		}
		in, err := e.App.Store.GetIntegration(context.Background(), store.All, id)
		if err != nil || in.State != store.IntegrationUninstalled || !strings.Contains(in.StateReason, "settings page") {
			t.Fatalf("after delete: %+v %v", in, err)
		}
		e.Eventually("channel disconnected in amoCRM", func() bool { _, ok := e.Amo.ScopeID(amoAccount); return !ok })

		installAmoWidget(t, e)
		if got := amojoConnected(t, e, amoAccount); got != scope {
			t.Fatalf("scope after reinstall %q, want %q", got, scope)
		}
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm"}); st != http.StatusOK {
			t.Fatalf("bind again: %d %v", st, v)
		}
		amoSend(t, e, "79123456789", "Анна", "Снова я")
		amojoChat(t, e, amoAccount, 2)
	})
}

// TestAmojoHookAfterUninstall: a manager's answer that reaches the hook
// for a scope whose integration was uninstalled (amoCRM still offered the
// chat) is reported failed in amoCRM's chat, in the account's language,
// and nothing is sent; the hook's signature and account are still
// checked.
func TestAmojoHookAfterUninstall(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		id, _, ch := amoBound(t, e, map[string]any{"mode": "crm"})
		scope := amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		c := amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()

		// Uninstalled on the gateway's side while amojo still has the
		// channel connected (a delete before this fix, or the disconnect
		// not run yet).
		if err := e.App.Store.UninstallIntegration(context.Background(), id, false, "test"); err != nil {
			t.Fatal(err)
		}
		// A hook for the scope with another account in its body, or
		// unsigned, is still refused.
		forged := []byte(`{"account_id":"someone-else","time":1,"message":{"conversation":{"id":"x","client_id":"` +
			c.ConversationID + `"},"sender":{"id":""},"message":{"id":"forged","type":"text","text":"чужое"}}}`)
		if st := postHook(t, e, e.URL+"/amocrm/amojo/"+scope, forged, amosim.AmojoHookSignature(amojoSecret, forged)); st != http.StatusForbidden {
			t.Fatalf("another account's hook to the uninstalled scope: %d", st)
		}
		if st := postHook(t, e, e.URL+"/amocrm/amojo/"+scope, forged, ""); st != http.StatusUnauthorized {
			t.Fatalf("unsigned hook to the uninstalled scope: %d", st)
		}

		amoID, d, err := e.Amo.ManagerReply(context.Background(), amoAccount, c.ConversationID, 9000002, "Ответ в пустоту")
		if err != nil || d.Status != http.StatusOK {
			t.Fatalf("hook: %v %+v", err, d)
		}
		m := failedInChat(t, e, amoID)
		if m.ErrorCode != 902 || !strings.Contains(m.Error, "Интеграция Switchboard удалена") {
			t.Fatalf("status in amojo: %d %q", m.ErrorCode, m.Error)
		}
		e.WaitIdle()
		if out := outbound(e, ch); len(out) != 0 || graphTexts(e, "Ответ в пустоту") != 0 {
			t.Fatalf("an uninstalled account's answer was sent: %v", out)
		}
	})
}

// TestAmojoErrorsInAccountLanguage: what the gateway reports under a
// manager's message it could not send is in the account's language
// (Russian here, as the trial's account), with amojo's codes unchanged.
func TestAmojoErrorsInAccountLanguage(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		id, _, ch := amoBound(t, e, map[string]any{"mode": "crm"})
		amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		c := amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()

		// The customer wrote 25 hours ago: WhatsApp takes only a template.
		if err := e.App.DB.Gorm.Model(&store.Contact{}).Where("channel_id = ?", ch).
			Update("last_inbound_at", store.Now().Add(-25*time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		amoID, _, err := e.Amo.ManagerReply(context.Background(), amoAccount, c.ConversationID, 9000002, "Поздний ответ")
		if err != nil {
			t.Fatal(err)
		}
		m := failedInChat(t, e, amoID)
		if want := crm.WindowClosed("ru", "whatsapp"); m.ErrorCode != 905 || m.Error != want {
			t.Fatalf("window closed in amojo: %d %q, want 905 %q", m.ErrorCode, m.Error, want)
		}

		// The channel unbound: the account's language again.
		if st, v := e.Do("DELETE", "/api/v1/integrations/"+id+"/channels/"+ch, nil); st != http.StatusNoContent && st != http.StatusOK {
			t.Fatalf("unbind: %d %v", st, v)
		}
		amoID, _, err = e.Amo.ManagerReply(context.Background(), amoAccount, c.ConversationID, 9000002, "После отвязки")
		if err != nil {
			t.Fatal(err)
		}
		m = failedInChat(t, e, amoID)
		if m.ErrorCode != 902 || !strings.Contains(m.Error, "Канал больше не подключён") {
			t.Fatalf("unbound in amojo: %d %q", m.ErrorCode, m.Error)
		}

		// An English account reads English.
		if err := e.App.DB.Gorm.Model(&store.Integration{}).Where("id = ?", id).Update("language", "en").Error; err != nil {
			t.Fatal(err)
		}
		amoID, _, err = e.Amo.ManagerReply(context.Background(), amoAccount, c.ConversationID, 9000002, "In English")
		if err != nil {
			t.Fatal(err)
		}
		if m = failedInChat(t, e, amoID); !strings.Contains(m.Error, "no longer connected") {
			t.Fatalf("English account: %q", m.Error)
		}
		e.WaitIdle()
		if out := outbound(e, ch); len(out) != 0 {
			t.Fatalf("sent %v", out)
		}
	})
}

// TestAmojoKeysAddedLater: an account installed while the gateway had no
// Chats API channel keys is connected to the channel when the gateway
// starts again with the keys set — no reinstall; starting again queues
// nothing more.
func TestAmojoKeysAddedLater(t *testing.T) {
	noKeys := amojoOpts
	noKeys.Config = func(c *config.Config) { c.AmoCRMChannelID, c.AmoCRMChannelSecret, c.AmoCRMChannelCode = "", "", "" }
	apptest.Each(t, noKeys, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm"})
		e.WaitIdle()
		if _, ok := e.Amo.ScopeID(amoAccount); ok {
			t.Fatal("connected without channel keys")
		}

		// Restart on the same storage with the keys set.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.App.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cfg := *e.App.Config
		o := e.Amo.Options()
		cfg.AmoCRMChannelID, cfg.AmoCRMChannelSecret, cfg.AmoCRMChannelCode = o.ChannelID, o.ChannelSecret, o.ChannelCode
		newApp := func() *app.App {
			a, err := app.New(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer ccancel()
				_ = a.Close(cctx)
			})
			return a
		}

		// Two instances starting together queue one connection: the
		// second finds the first's waiting. (That job is dropped here, so
		// that the start below must queue its own.)
		b := newApp()
		if n, err := b.AmoCRM.ConnectChats(ctx); err != nil || n != 1 {
			t.Fatalf("first instance: %d %v", n, err)
		}
		if n, err := b.AmoCRM.ConnectChats(ctx); err != nil || n != 0 {
			t.Fatalf("second instance: %d %v", n, err)
		}
		if err := b.DB.Gorm.Exec(`DELETE FROM jobs WHERE kind = ?`, "amocrm.amojo.connect").Error; err != nil {
			t.Fatal(err)
		}
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}

		a := newApp()
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		amojoConnected(t, e, amoAccount)
		e.Eventually("the connection done", func() bool { return connectJobsDone(t, a) })
		// Connected: a later start queues nothing.
		if n, err := a.AmoCRM.ConnectChats(ctx); err != nil || n != 0 {
			t.Fatalf("start after the connection: %d %v", n, err)
		}
	})
}

// connectJobsDone says whether a's queue holds no amojo connection job:
// done ones are deleted, a dead one would stay.
func connectJobsDone(t *testing.T, a *app.App) bool {
	t.Helper()
	var n int64
	if err := a.DB.Gorm.Raw(`SELECT COUNT(*) FROM jobs WHERE kind = ?`, "amocrm.amojo.connect").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n == 0
}

// TestAmojoMetaFailureInAccountLanguage: a manager's answer Meta refuses
// after accepting it (the window closed on Meta's clock, 131047) is
// reported failed to amojo in the account's words, not Meta's English.
func TestAmojoMetaFailureInAccountLanguage(t *testing.T) {
	var offset atomic.Int64
	opts := amojoOpts
	opts.Sim = func(o *metasim.Options) {
		o.Clock = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		offset.Store(0)
		_, _, ch := amoBound(t, e, map[string]any{"mode": "crm"})
		amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		c := amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()

		// 25 hours later for Meta only: the gateway sends, Meta fails it.
		offset.Store(int64(25 * time.Hour))
		amoID, _, err := e.Amo.ManagerReply(context.Background(), amoAccount, c.ConversationID, 9000002, "Поздний ответ")
		if err != nil {
			t.Fatal(err)
		}
		m := failedInChat(t, e, amoID)
		if want := crm.WindowClosed("ru", "whatsapp"); m.ErrorCode != 905 || m.Error != want {
			t.Fatalf("Meta's failure in amojo: %d %q, want 905 %q", m.ErrorCode, m.Error, want)
		}
		if out := outbound(e, ch); len(out) != 1 || out[0]["status"] != "failed" {
			t.Fatalf("sent %v", out)
		}
	})
}
