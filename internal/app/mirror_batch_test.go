package app_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/store"
)

// setMirror switches a binding's mirror mode as the bind API will.
func setMirror(t testing.TB, e *apptest.Env, integ, ch, mode string) {
	t.Helper()
	ctx := context.Background()
	b, err := e.App.Store.BindingOf(ctx, integ, ch)
	if err != nil {
		t.Fatal(err)
	}
	b.Mirror = mode
	if err := e.App.Store.PutBinding(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// timelineOf maps each record ("lead 12") to its comments.
func timelineOf(p *b24sim.Portal) map[string][]string {
	out := map[string][]string{}
	for _, c := range p.TimelineComments() {
		k := fmt.Sprintf("%s %d", c.EntityType, c.EntityID)
		out[k] = append(out[k], c.Comment)
	}
	return out
}

// TestMirrorHourlyBatches: in hourly mode nothing reaches the CRM before the
// window closes; a flush closes it and writes one comment per customer
// record with each message once; a second flush writes nothing; a portal
// that fails after applying the batch does not get it twice; none mode
// writes nothing and switching to each afterwards does not pour it out.
func TestMirrorHourlyBatches(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, body)
		}
		setMirror(t, e, integ, ch, routing.MirrorHourly)
		if st, _ := e.Do("PATCH", "/api/v1/workspaces/"+ws, map[string]any{"timezone": "Asia/Kolkata"}); st != http.StatusOK {
			t.Fatalf("timezone: %d", st)
		}

		customers := []struct{ phone, name string }{{"79160000001", "Анна"}, {"79160000002", "Борис"}, {"79160000003", "Вера"}}
		want := map[string][]string{} // customer phone → texts
		var first string
		for round := 0; round < 3; round++ {
			for i, c := range customers {
				if round == 2 && i == 2 {
					continue // Вера writes twice
				}
				text := fmt.Sprintf("%s, сообщение %d", c.name, round+1)
				if round == 1 && i == 0 {
					// A reply quoting her first message: shown as a quote.
					if _, err := e.Sim.SendWhatsAppReply(ctx, apptest.PhoneNumberID, c.phone, c.name, first, text); err != nil {
						t.Fatal(err)
					}
				} else {
					id, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, c.phone, c.name, text)
					if err != nil {
						t.Fatal(err)
					}
					if round == 0 && i == 0 {
						first = id
					}
				}
				want[c.phone] = append(want[c.phone], text)
			}
		}
		e.Eventually("8 messages stored", func() bool { return len(e.Messages(ch)) == 8 })
		e.WaitIdle()
		if n := len(e.Portal.TimelineComments()); n != 0 {
			t.Fatalf("%d comments before the window closed", n)
		}
		if calls := e.B24.Calls("crm.timeline.comment.add"); len(calls) != 0 {
			t.Fatalf("comment calls before the window closed: %d", len(calls))
		}
		if n := len(e.Portal.Leads()); n != 3 {
			t.Fatalf("%d leads before the window closed, want one per customer at once", n)
		}

		// Another workspace's token does not see the integration; an
		// unknown one is not found; neither closes anything.
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Другая"})
		_, tok := e.Do("POST", "/api/v1/workspaces/"+other["id"].(string)+"/tokens", nil)
		if st, body := e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil, tok["token"].(string)); st != http.StatusNotFound {
			t.Fatalf("another workspace flushed: %d %v", st, body)
		}
		if st, _ := e.Do("POST", "/api/v1/integrations/nope/mirror/flush", nil); st != http.StatusNotFound {
			t.Fatalf("unknown integration: %d", st)
		}
		e.WaitIdle()
		if n := len(e.Portal.TimelineComments()); n != 0 {
			t.Fatalf("a refused flush wrote %d comments", n)
		}

		restBefore := e.B24.RESTCalls(apptest.B24MemberID)
		st, body := e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil)
		if st != http.StatusOK || body["batches"] != float64(1) || body["messages"] != float64(8) {
			t.Fatalf("flush: %d %v", st, body)
		}
		e.Eventually("one comment per customer", func() bool { return len(e.Portal.TimelineComments()) == 3 })
		e.WaitIdle()
		tl := timelineOf(e.Portal)
		if len(tl) != 3 || len(e.Portal.Leads()) != 3 {
			t.Fatalf("records %v, %d leads", tl, len(e.Portal.Leads()))
		}
		for phone, texts := range want {
			var found []string
			for rec, cs := range tl {
				if len(cs) != 1 {
					t.Fatalf("%s has %d comments", rec, len(cs))
				}
				if strings.Contains(cs[0], texts[0]) {
					found = cs
				}
			}
			if found == nil {
				t.Fatalf("no record with %s's messages: %v", phone, tl)
			}
			c := quoteRE.ReplaceAllString(found[0], "")
			for _, text := range texts {
				if strings.Count(c, text) != 1 {
					t.Fatalf("%q appears %d times in\n%s", text, strings.Count(c, text), c)
				}
			}
			for other, ot := range want {
				if other != phone && strings.Contains(c, ot[0]) {
					t.Fatalf("%s's comment has %s's message:\n%s", phone, other, c)
				}
			}
			if !strings.Contains(c, "Asia/Kolkata") || !strings.Contains(c, "#sb-") {
				t.Fatalf("header or marker missing:\n%s", c)
			}
		}
		for _, cs := range tl {
			if strings.Contains(cs[0], want["79160000001"][0]) && !strings.Contains(cs[0], "[QUOTE]") {
				t.Fatalf("the reply's quote is missing:\n%s", cs[0])
			}
		}
		// The three customers' records were made when they first wrote
		// (a search and a creation each): the flush is the three comments
		// in one batch call.
		if n := e.B24.RESTCalls(apptest.B24MemberID) - restBefore; n != 1 {
			t.Fatalf("%d REST calls for the flush, want 1", n)
		}

		// A second flush has nothing to close and writes nothing.
		st, body = e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil)
		if st != http.StatusOK || body["batches"] != float64(0) || body["messages"] != float64(0) {
			t.Fatalf("second flush: %d %v", st, body)
		}
		e.WaitIdle()
		if n := len(e.Portal.TimelineComments()); n != 3 {
			t.Fatalf("second flush: %d comments", n)
		}

		// The portal applies the next batch and then answers 500: the
		// retry finds the comments by their marker and adds none again.
		e.B24.FailAfterNext(apptest.B24MemberID, "batch", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error")
		for _, c := range customers[:2] {
			if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, c.phone, c.name, c.name+", после сбоя"); err != nil {
				t.Fatal(err)
			}
		}
		e.Eventually("10 messages stored", func() bool { return len(e.Messages(ch)) == 10 })
		if st, body := e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil); st != http.StatusOK || body["messages"] != float64(2) {
			t.Fatalf("flush after failure: %d %v", st, body)
		}
		e.Eventually("batch sent after the failure", func() bool {
			var failed int
			for _, c := range e.B24.Calls("batch") {
				if c.Status == http.StatusInternalServerError {
					failed++
				}
			}
			return failed == 1 && batchesIn(t, e, integ, store.BatchSent) == 2
		})
		e.WaitIdle()
		if n := len(e.Portal.TimelineComments()); n != 5 {
			t.Fatalf("%d comments after the failure, want 5:\n%v", n, timelineOf(e.Portal))
		}
		// Both records were searched for the batch's marker.
		if n := len(e.B24.Calls("crm.timeline.comment.list")); n != 2 {
			t.Fatalf("%d comment.list calls, want 2", n)
		}

		// none: nothing is written; the dialog is still kept. Switching to
		// each then sends only what comes next.
		setMirror(t, e, integ, ch, routing.MirrorNone)
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customers[2].phone, customers[2].name, "в режиме none")
		e.Eventually("11 messages stored", func() bool { return len(e.Messages(ch)) == 11 })
		e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil)
		e.WaitIdle()
		_, dl := e.Do("GET", "/api/v1/dialogs?integration_id="+integ, nil)
		if d, _ := dl["data"].([]any); len(d) != 3 {
			t.Fatalf("dialogs %v", dl)
		}
		setMirror(t, e, integ, ch, routing.MirrorEach)
		e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customers[2].phone, customers[2].name, "снова каждое")
		e.Eventually("each-path comment", func() bool { return len(e.Portal.TimelineComments()) == 6 })
		e.WaitIdle()
		for _, c := range e.Portal.TimelineComments() {
			if strings.Contains(c.Comment, "в режиме none") {
				t.Fatalf("a none-mode message reached the CRM:\n%s", c.Comment)
			}
		}
	})
}

var quoteRE = regexp.MustCompile(`(?s)\[QUOTE\].*?\[/QUOTE\]`)

// batchesIn counts an integration's batches in a state.
func batchesIn(t testing.TB, e *apptest.Env, integ, state string) int {
	var n int64
	if err := e.App.Store.DB.Gorm.Model(&store.MirrorBatch{}).Where("integration_id = ? AND state = ?", integ, state).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// TestMirrorFlushRace: flushes run while customers write: whatever a
// flush catches of a message still being stored, every message ends up in
// exactly one batch and one comment.
func TestMirrorFlushRace(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, body)
		}
		setMirror(t, e, integ, ch, routing.MirrorDaily)
		const total = 60
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 1; i <= total; i++ {
				e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, fmt.Sprintf("7916300%04d", i%4), "Клиент", fmt.Sprintf("r%03d.", i))
			}
		}()
		flushes := 0
		for running := true; running; flushes++ {
			select {
			case <-done:
				running = false
			default:
			}
			if st, body := e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil); st != http.StatusOK {
				t.Fatalf("flush: %d %v", st, body)
			}
		}
		e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil)
		e.Eventually("every message mirrored", func() bool { return mirroredCount(t, e) == total })
		e.WaitIdle()
		all := ""
		for _, c := range e.Portal.TimelineComments() {
			all += c.Comment + "\n"
		}
		for i := 1; i <= total; i++ {
			if n := strings.Count(all, fmt.Sprintf("r%03d.", i)); n != 1 {
				t.Errorf("r%03d. is %d times in the timelines", i, n)
			}
		}
		var items int64
		e.App.Store.DB.Gorm.Model(&store.MirrorBatchItem{}).Count(&items)
		if items != total {
			t.Fatalf("%d batch items for %d messages", items, total)
		}
		t.Logf("%d flushes, %d comments", flushes, len(e.Portal.TimelineComments()))
	})
}

// In hourly, daily and none modes the customer's deal and owner appear at
// once (managers see the new lead, the dialog shows owner and record, the
// notice can link it); only the timeline comments wait for the batch, and
// none writes none.
func TestMirrorBatchedModesCreateTheRecordAtOnce(t *testing.T) {
	for _, mode := range []string{routing.MirrorHourly, routing.MirrorDaily, routing.MirrorNone} {
		t.Run(mode, func(t *testing.T) {
			apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
				ctx := context.Background()
				integ, ws := e.InstallBitrix24()
				ch := createWAIn(t, e, ws)
				seedCRMUsers(t, e, integ, []string{"1", "27"})
				bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "deal", "mirror": mode,
					"owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "27", "weight": 1}}}})
				const phone = "79161230001"
				for _, text := range []string{"Здравствуйте", "Есть в наличии?"} {
					if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, phone, "Анна", text); err != nil {
						t.Fatal(err)
					}
				}
				e.Eventually("the deal at once", func() bool { return len(e.Portal.Deals()) == 1 })
				e.WaitIdle()
				if n := len(e.Portal.Deals()); n != 1 {
					t.Fatalf("%d deals for one customer", n)
				}
				if got := e.Portal.Deals()[0]["ASSIGNED_BY_ID"]; fmt.Sprint(got) != "27" {
					t.Fatalf("deal's owner %v, want 27", got)
				}
				d := customerDialogs(t, e, integ)["+"+phone]
				if d.OwnerUserID != "27" || d.CRMEntity != "deal" || d.CRMEntityID == "" {
					t.Fatalf("dialog: owner %q, record %q %q", d.OwnerUserID, d.CRMEntity, d.CRMEntityID)
				}
				if n := len(e.Portal.TimelineComments()); n != 0 {
					t.Fatalf("%d comments before the window closed", n)
				}
				// The notice, queued behind the record, tells its owner and
				// links the deal.
				e.Eventually("the owner told", func() bool {
					for _, n := range e.Portal.Notifications() {
						if strings.HasSuffix(n.Tag, "|new") && n.UserID == 27 && strings.Contains(n.Message, "/crm/deal/details/"+d.CRMEntityID+"/") {
							return true
						}
					}
					return false
				})
				// The batch writes into that deal, and creates nothing more.
				if st, body := e.Do("POST", "/api/v1/integrations/"+integ+"/mirror/flush", nil); st != http.StatusOK {
					t.Fatalf("flush: %d %v", st, body)
				}
				e.WaitIdle()
				want := 1
				if mode == routing.MirrorNone {
					want = 0
				}
				if tl := timelineOf(e.Portal); len(tl) != want || len(e.Portal.Deals()) != 1 || len(e.Portal.Contacts()) != 1 {
					t.Fatalf("after the flush: %v, %d deals, %d contacts", tl, len(e.Portal.Deals()), len(e.Portal.Contacts()))
				}
			})
		})
	}
}
