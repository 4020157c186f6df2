package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
)

// shiftedClock is the gateway's clock for the dialog counter: real time
// moved by an offset the test sets. It is never behind real time, so a
// held job's run_at (the next hour by this clock) is never already due
// by the queue's real clock.
type shiftedClock struct{ offset atomic.Int64 }

func (c *shiftedClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// setTo moves the clock so that it reads a given minute past the top of an
// hour in loc, at least 10 minutes ahead of real time: a test then has
// most of an hour before the hour turns by itself.
func (c *shiftedClock) setTo(loc *time.Location, minute int) time.Time {
	now := time.Now().In(loc)
	top := now.Add(-(time.Duration(now.Minute())*time.Minute + time.Duration(now.Second())*time.Second + time.Duration(now.Nanosecond())))
	target := top.Add(time.Hour + time.Duration(minute)*time.Minute)
	c.offset.Store(int64(target.Sub(now)))
	return target
}

// wakeHeld makes the held send jobs due by the queue's real clock, as the
// hour turning would.
func wakeHeld(t *testing.T, e *apptest.Env) {
	t.Helper()
	err := e.App.DB.Gorm.Exec(`UPDATE jobs SET run_at = ? WHERE kind = 'message.send' AND state = 'pending'`,
		time.Now().UTC().Add(-time.Second)).Error
	if err != nil {
		t.Fatal(err)
	}
	e.App.Queue.Notify()
}

func graphTextSends(e *apptest.Env) []string {
	var to []string
	for _, r := range graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages") {
		var b struct {
			To   string `json:"to"`
			Text struct {
				Body string `json:"body"`
			} `json:"text"`
		}
		if json.Unmarshal(r.Body, &b) == nil && b.To != "" {
			to = append(to, b.To+": "+b.Text.Body)
		}
	}
	return to
}

func dialogs(t *testing.T, e *apptest.Env, ch string) map[string]any {
	t.Helper()
	st, body := e.Do("GET", "/api/v1/channels/"+ch, nil)
	d, ok := body["dialogs"].(map[string]any)
	if st != http.StatusOK || !ok {
		t.Fatalf("GET channel: %d %v", st, body)
	}
	return d
}

// The dialog counter end to end, on a workspace whose hour starts at half
// past in UTC (Asia/Kolkata, +05:30): with a limit of 2, replies to three
// customers who wrote first send two and hold the third (queued, visible on
// the channel) until the next hour; the counted customers get more
// messages in the hour; when the hour turns the held customer's messages go
// out in order, and nothing failed or was dead-lettered.
func TestDialogLimitHoldsNewDialogsUntilTheNextHour(t *testing.T) {
	apptest.Each(t, apptest.Options{NoStart: true}, func(t *testing.T, e *apptest.Env) {
		loc, err := time.LoadLocation("Asia/Kolkata")
		if err != nil {
			t.Fatal(err)
		}
		var clock shiftedClock
		now := clock.setTo(loc, 10)
		e.App.Messaging.SetClock(clock.now)
		if err := e.App.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ws := e.App.DefaultWorkspace.ID
		st, w := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"dialogs_per_hour_limit": 2, "timezone": "Asia/Kolkata"})
		if st != http.StatusOK || w["dialogs_per_hour_limit"] != float64(2) {
			t.Fatalf("set the limit: %d %v", st, w)
		}
		ch := e.CreateWhatsApp()
		customers := []string{"79161234561", "79161234562", "79161234563"}
		for _, c := range customers {
			if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, c, "Клиент", "Здравствуйте"); err != nil {
				t.Fatal(err)
			}
		}
		e.Eventually("three customers wrote", func() bool { return len(e.Messages(ch)) == 3 })

		send := func(to, text string) string {
			t.Helper()
			st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": to, "text": text})
			if st != http.StatusAccepted {
				t.Fatalf("send to %s: %d %v", to, st, body)
			}
			return body["id"].(string)
		}
		msg := func(id string) map[string]any {
			t.Helper()
			_, m := e.Do("GET", "/api/v1/messages/"+id, nil)
			return m
		}
		ids := map[string]string{}
		for _, c := range customers {
			ids[c] = send(c, "Ответ")
		}
		e.WaitIdle()
		var sent []string
		held := ""
		for _, c := range customers {
			switch m := msg(ids[c]); m["status"] {
			case "queued":
				held = c
				if m["held_until"] == nil {
					t.Errorf("the held message does not say until when: %v", m)
				}
			case "sent", "delivered", "read":
				sent = append(sent, c)
			default:
				t.Fatalf("message to %s: %v", c, m)
			}
		}
		if len(sent) != 2 || held == "" {
			t.Fatalf("sent to %v, held %q: want two sent and one held", sent, held)
		}
		if got := graphTextSends(e); len(got) != 2 {
			t.Fatalf("Graph got %v, want two messages", got)
		}
		nextHour := hourIn(now, loc).Add(time.Hour)
		d := dialogs(t, e, ch)
		if d["limit"] != float64(2) || d["this_hour"] != float64(2) || d["waiting"] != float64(1) ||
			d["paused_until"] != nextHour.Format(time.RFC3339) || !strings.HasSuffix(d["paused_until"].(string), ":00+05:30") {
			t.Fatalf("channel's dialogs = %v, want limit 2, this_hour 2, waiting 1, paused until %s", d, nextHour.Format(time.RFC3339))
		}
		// The held message says until when on the same clock, in the same
		// words, as the channel's pause.
		if m := msg(ids[held]); m["held_until"] != d["paused_until"] {
			t.Fatalf("held_until %v, the channel's paused_until %v", m["held_until"], d["paused_until"])
		}
		// The list shows the same.
		_, list := e.Do("GET", "/api/v1/channels", nil)
		if got := list["data"].([]any)[0].(map[string]any)["dialogs"]; fmt.Sprint(got) != fmt.Sprint(d) {
			t.Fatalf("list shows dialogs %v, GET shows %v", got, d)
		}

		// A counted customer is not a new dialog: more messages go out.
		again := send(sent[0], "Ещё вопрос?")
		// The held customer's next message waits behind the first.
		second := send(held, "Второе")
		// (WaitIdle would wait for the second one, due but behind the
		// held head of its key.)
		e.Eventually("the counted customer's second message sent", func() bool { return msg(again)["status"] != "queued" })
		if m := msg(second); m["status"] != "queued" {
			t.Fatalf("a message behind the held one: %v", m)
		}
		if d := dialogs(t, e, ch); d["this_hour"] != float64(2) || d["waiting"] != float64(2) {
			t.Fatalf("after more messages, dialogs = %v, want this_hour 2 and waiting 2", d)
		}

		// The hour turns.
		clock.offset.Add(int64(nextHour.Sub(now) + 5*time.Minute))
		wakeHeld(t, e)
		e.Eventually("held messages sent", func() bool {
			return msg(ids[held])["status"] != "queued" && msg(second)["status"] != "queued"
		})
		e.WaitIdle()
		for _, id := range []string{ids[held], second} {
			if m := msg(id); m["error"] != nil || m["held_until"] != nil || m["status"] == "failed" {
				t.Fatalf("held message after the hour turned: %v", m)
			}
		}
		got := graphTextSends(e)
		if want := []string{held + ": Ответ", held + ": Второе"}; len(got) != 5 || !slices.Equal(got[3:], want) {
			t.Fatalf("Graph got %v, want the held customer's two messages last, in order", got)
		}
		if d := dialogs(t, e, ch); d["this_hour"] != float64(1) || d["waiting"] != float64(0) || d["paused_until"] != nil {
			t.Fatalf("next hour's dialogs = %v, want this_hour 1, none waiting, not paused", d)
		}
		if _, q := e.Do("GET", "/api/v1/queue", nil); fmt.Sprint(q["jobs"]) != "map[dead:0 pending:0 running:0]" {
			t.Fatalf("queue after the hour: %v", q)
		}
	})
}

func hourIn(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return l.Add(-(time.Duration(l.Minute())*time.Minute + time.Duration(l.Second())*time.Second + time.Duration(l.Nanosecond())))
}

// dialogs_per_hour_limit takes a whole number from 0 to 100000; anything
// else is named and changes nothing, not even the other fields sent with it.
func TestDialogLimitBadInput(t *testing.T) {
	e := apptest.Start(t, apptest.Options{NoStart: true})
	ws := "/api/v1/workspaces/" + e.App.DefaultWorkspace.ID
	if st, w := e.Do("PATCH", ws, map[string]any{"dialogs_per_hour_limit": 100000}); st != http.StatusOK || w["dialogs_per_hour_limit"] != float64(100000) {
		t.Fatalf("the largest limit: %d %v", st, w)
	}
	if st, w := e.Do("PATCH", ws, `{"dialogs_per_hour_limit": 7}`); st != http.StatusOK || w["dialogs_per_hour_limit"] != float64(7) {
		t.Fatalf("set 7: %d %v", st, w)
	}
	for _, raw := range []string{`-1`, `100001`, `1000000000000000000000`, `2.5`, `7.0`, `1e3`, `"5"`, `null`, `true`, `[]`, `{}`} {
		st, body := e.Do("PATCH", ws, `{"name":"Переименован","dialogs_per_hour_limit":`+raw+`}`)
		if st != http.StatusUnprocessableEntity || errCode(body) != "dialogs_per_hour_limit_invalid" {
			t.Errorf("dialogs_per_hour_limit %s: %d %v, want 422 dialogs_per_hour_limit_invalid", raw, st, body)
		}
	}
	if _, w := e.Do("GET", ws, nil); w["dialogs_per_hour_limit"] != float64(7) || w["name"] != "Default" {
		t.Fatalf("a refused patch changed the workspace: %v", w)
	}
	if st, w := e.Do("PATCH", ws, map[string]any{"dialogs_per_hour_limit": 0}); st != http.StatusOK || w["dialogs_per_hour_limit"] != float64(0) {
		t.Fatalf("back to no limit: %d %v", st, w)
	}
}

// Two gateway instances on one PostgreSQL, four workers each, reply to
// twelve customers at once under a limit of 3: exactly three messages go
// out, the other nine wait, and the channel says so from either instance.
func TestDialogLimitAcrossInstances(t *testing.T) {
	one := apptest.Start(t, apptest.Options{Postgres: true, NoStart: true})
	two := apptest.Start(t, apptest.Options{DatabaseURL: one.App.Config.DatabaseURL, NoStart: true,
		Config: func(c *config.Config) { c.MetaGraphURL = one.SimURL }})
	ch := one.CreateWhatsApp()
	var customers []string
	for i := range 12 {
		c := fmt.Sprintf("791612345%02d", i)
		customers = append(customers, c)
		if _, err := one.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, c, "Клиент", "Здравствуйте"); err != nil {
			t.Fatal(err)
		}
	}
	one.Eventually("twelve customers wrote", func() bool { return len(one.Messages(ch)) == 12 })
	if st, w := one.Do("PATCH", "/api/v1/workspaces/"+one.App.DefaultWorkspace.ID, map[string]any{"dialogs_per_hour_limit": 3}); st != http.StatusOK {
		t.Fatalf("set the limit: %d %v", st, w)
	}
	for i, c := range customers {
		e := []*apptest.Env{one, two}[i%2]
		if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": c, "text": "Ответ"}); st != http.StatusAccepted {
			t.Fatalf("send: %d %v", st, body)
		}
	}
	// Both queues start at once on a full table, so their workers race for
	// the slots; both count on one clock, away from the top of the hour.
	var clock shiftedClock
	clock.setTo(time.UTC, 10)
	for _, e := range []*apptest.Env{one, two} {
		e.App.Messaging.SetClock(clock.now)
		if err := e.App.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	one.WaitIdle()
	if got := graphTextSends(one); len(got) != 3 {
		t.Fatalf("Graph got %d messages (%v), want exactly 3", len(got), got)
	}
	for _, e := range []*apptest.Env{one, two} {
		if d := dialogs(t, e, ch); d["this_hour"] != float64(3) || d["waiting"] != float64(9) || d["paused_until"] == nil {
			t.Fatalf("dialogs = %v, want this_hour 3, waiting 9, paused", d)
		}
	}
}

// Raising the limit lets held messages go at once, not at the next hour;
// lowering it again holds new dialogs again.
func TestDialogLimitRaisedReleasesHeldMessages(t *testing.T) {
	apptest.Each(t, apptest.Options{NoStart: true}, func(t *testing.T, e *apptest.Env) {
		var clock shiftedClock
		clock.setTo(time.UTC, 10)
		e.App.Messaging.SetClock(clock.now)
		if err := e.App.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ws := "/api/v1/workspaces/" + e.App.DefaultWorkspace.ID
		if st, w := e.Do("PATCH", ws, map[string]any{"dialogs_per_hour_limit": 1}); st != http.StatusOK {
			t.Fatalf("set the limit: %d %v", st, w)
		}
		ch := e.CreateWhatsApp()
		customers := []string{"79161234561", "79161234562", "79161234563"}
		for _, c := range customers {
			if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, c, "Клиент", "Здравствуйте"); err != nil {
				t.Fatal(err)
			}
		}
		e.Eventually("customers wrote", func() bool { return len(e.Messages(ch)) == 3 })
		reply := func(to string) {
			t.Helper()
			if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": to, "text": "Ответ"}); st != http.StatusAccepted {
				t.Fatalf("send: %d %v", st, body)
			}
		}
		reply(customers[0])
		reply(customers[1])
		e.WaitIdle()
		if d := dialogs(t, e, ch); d["this_hour"] != float64(1) || d["waiting"] != float64(1) {
			t.Fatalf("dialogs = %v, want one counted and one waiting", d)
		}

		if st, w := e.Do("PATCH", ws, map[string]any{"dialogs_per_hour_limit": 2}); st != http.StatusOK {
			t.Fatalf("raise the limit: %d %v", st, w)
		}
		e.Eventually("the held message sent", func() bool { return len(graphTextSends(e)) == 2 })
		if d := dialogs(t, e, ch); d["this_hour"] != float64(2) || d["waiting"] != float64(0) || d["paused_until"] == nil {
			t.Fatalf("dialogs = %v, want two counted, none waiting, paused (the raised limit is used up)", d)
		}
		reply(customers[2])
		e.WaitIdle()
		if d := dialogs(t, e, ch); d["this_hour"] != float64(2) || d["waiting"] != float64(1) {
			t.Fatalf("dialogs = %v, want a third customer held at the raised limit", d)
		}
		// Lowering it wakes the held one too, which is held again.
		if st, w := e.Do("PATCH", ws, map[string]any{"dialogs_per_hour_limit": 1}); st != http.StatusOK {
			t.Fatalf("lower the limit: %d %v", st, w)
		}
		e.WaitIdle()
		if d := dialogs(t, e, ch); d["this_hour"] != float64(2) || d["waiting"] != float64(1) || len(graphTextSends(e)) != 2 {
			t.Fatalf("dialogs = %v after lowering the limit, want still 2 counted and 1 waiting", d)
		}
		if st, w := e.Do("PATCH", ws, map[string]any{"dialogs_per_hour_limit": 0}); st != http.StatusOK {
			t.Fatalf("remove the limit: %d %v", st, w)
		}
		e.Eventually("the third customer's message sent once the limit is gone", func() bool { return len(graphTextSends(e)) == 3 })
	})
}
