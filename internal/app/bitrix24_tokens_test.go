package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

func TestBitrix24TokenExpiryAndReauthorisation(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		ctx := context.Background()

		// An expired access token costs exactly one refresh.
		before := e.B24.TokenCalls("refresh_token")
		e.B24.ExpireAccessTokens(apptest.B24MemberID)
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Первое")
		e.Eventually("mirrored after a refresh", func() bool { return len(inboundOnLine(e, 1)) == 1 })
		if got := e.B24.TokenCalls("refresh_token") - before; got != 1 {
			t.Fatalf("%d refreshes for one expired token, want 1", got)
		}

		// A revoked refresh token: the portal needs re-authorisation and the
		// message waits instead of being lost.
		e.B24.RevokeRefreshTokens(apptest.B24MemberID)
		e.B24.ExpireAccessTokens(apptest.B24MemberID)
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Второе")
		e.Eventually("needs re-authorisation", func() bool {
			_, v := e.Do("GET", "/api/v1/integrations/"+integ, nil)
			return v["state"] == "needs_reauth"
		})
		if n := len(inboundOnLine(e, 1)); n != 1 {
			t.Fatalf("%d messages in the line while the portal cannot be reached", n)
		}
		// The admin installs again: the parked message goes through.
		e.InstallBitrix24()
		e.Eventually("parked message delivered after re-install", func() bool {
			ms := inboundOnLine(e, 1)
			return len(ms) == 2 && ms[1].Text == "Второе"
		})
		_, v := e.Do("GET", "/api/v1/integrations/"+integ, nil)
		if v["state"] != "active" {
			t.Fatalf("state after re-install: %v", v["state"])
		}
	})
}

// The portal's leaky bucket is hit mid-burst: every message still arrives,
// in order per customer.
func TestBitrix24RateLimitMidBurst(t *testing.T) {
	opts := apptest.Options{Bitrix24: true, B24: func(o *b24sim.Options) { o.LeakBurst = 2; o.LeakRate = 2 }}
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		customers := []string{"79161234567", "77071234567", "77015550199", "79031112233", "79263334455", "77779998877"}
		for round := 0; round < 2; round++ {
			for _, c := range customers {
				if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, c, "", "сообщение "+string(rune('A'+round))); err != nil {
					t.Fatal(err)
				}
				// Spaced so that most messages make a call of their own
				// (a burst would be batched into one and never hit the limit).
				time.Sleep(40 * time.Millisecond)
			}
		}
		e.Eventually("all 12 messages in the line", func() bool { return len(inboundOnLine(e, 1)) == 12 })
		limited := 0
		for _, r := range e.B24.Requests() {
			if r.Status == 503 {
				limited++
			}
		}
		if limited == 0 {
			t.Fatal("the portal never answered QUERY_LIMIT_EXCEEDED; the test proves nothing")
		}
		byChat := map[string][]string{}
		for _, m := range inboundOnLine(e, 1) {
			byChat[m.ChatID] = append(byChat[m.ChatID], m.Text)
		}
		for chat, texts := range byChat {
			if len(texts) != 2 || texts[0] != "сообщение A" || texts[1] != "сообщение B" {
				t.Errorf("chat %s got %v, want A then B", chat, texts)
			}
		}
	})
}
