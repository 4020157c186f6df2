package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
)

// TestOpenLineNotResentAfterLostAnswer: Bitrix24 takes a customer's
// message into the Open Line and its answer is lost (a 500 after the
// work, as a portal timing out after committing). The retry asks the
// line for the message first (imconnector.update.messages), finds it and
// does not send it again: the operator sees it once. A later message goes
// as usual, once.
func TestOpenLineNotResentAfterLostAnswer(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		e.B24.FailAfterNext(apptest.B24MemberID, "imconnector.send.messages", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error")
		ctx := context.Background()
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Первое сообщение"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the first message in the line", func() bool { return len(inboundOnLine(e, 1)) >= 1 })
		// The failed call's job is retried after its backoff.
		e.Eventually("the retry done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = 'crm.mirror'").Scan(&jobs)
			return jobs == 0
		})
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Второе сообщение"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the second message in the line", func() bool { return len(inboundOnLine(e, 1)) >= 2 })
		e.WaitIdle()
		count := map[string]int{}
		for _, m := range inboundOnLine(e, 1) {
			count[m.Text]++
		}
		if count["Первое сообщение"] != 1 || count["Второе сообщение"] != 1 || len(count) != 2 {
			t.Fatalf("the line has %v; want each message once", count)
		}
		if n := len(e.B24.Calls("imconnector.send.messages")); n != 2 {
			t.Fatalf("%d send.messages calls; want the lost one and the second message's", n)
		}
		if len(e.B24.Calls("imconnector.update.messages")) == 0 {
			t.Fatal("the retry did not look the message up in the line")
		}
	})
}

// TestAmoCRMNoteNotRewrittenAfterLostAnswer: amoCRM writes a message's
// note but its answer is lost (a 502 after the work). The retry reads the
// lead's notes, finds the note and does not write it again; the next
// message's note goes as usual.
func TestAmoCRMNoteNotRewrittenAfterLostAnswer(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		bind := map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"}
		amoBound(t, e, bind)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте, нужна доставка")
		e.Eventually("the lead and its note", func() bool { return len(e.Amo.Leads(amoAccount)) == 1 && len(e.Amo.Notes(amoAccount)) == 1 })
		lead := e.Amo.Leads(amoAccount)[0].ID
		e.WaitIdle()

		e.Amo.FailAfterApply("POST /api/v4/leads/notes", 1)
		amoSend(t, e, "79123456789", "Анна", "Второе сообщение")
		e.Eventually("the lost call's note on the lead", func() bool { return len(amoNotesOn(e, lead)) >= 2 })
		e.Eventually("the retry done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = 'crm.mirror'").Scan(&jobs)
			return jobs == 0
		})
		amoSend(t, e, "79123456789", "Анна", "Третье сообщение")
		e.Eventually("the third note", func() bool { return len(amoNotesOn(e, lead)) >= 3 })
		e.WaitIdle()
		count := map[string]int{}
		for _, n := range amoNotesOn(e, lead) {
			for _, w := range []string{"Здравствуйте", "Второе сообщение", "Третье сообщение"} {
				if strings.Contains(n, w) {
					count[w]++
				}
			}
		}
		if count["Здравствуйте"] != 1 || count["Второе сообщение"] != 1 || count["Третье сообщение"] != 1 || len(amoNotesOn(e, lead)) != 3 {
			t.Fatalf("notes on the lead: %v (%d notes); want each message once", count, len(amoNotesOn(e, lead)))
		}
		if e.Amo.Counts(amoAccount).ByRoute["GET /api/v4/leads/{id}/notes"] == 0 {
			t.Fatal("the retry did not read the lead's notes")
		}
	})
}

// TestBitrix24CommentNotRewrittenAfterLostAnswer: in CRM mode the
// portal writes a message's timeline comment but its answer is lost (the
// batch fails after its work). The retry reads the record's comments,
// finds it and does not write it again; the next message's comment goes
// as usual.
func TestBitrix24CommentNotRewrittenAfterLostAnswer(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "lead"})
		ctx := context.Background()
		send := func(text string) {
			if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", text); err != nil {
				t.Fatal(err)
			}
		}
		send("Первое сообщение")
		e.Eventually("the lead and its comment", func() bool { return commentsWith(e.Portal, "Первое сообщение") == 1 })
		e.WaitIdle()

		e.B24.FailAfterNext(apptest.B24MemberID, "batch", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error")
		send("Второе сообщение")
		e.Eventually("the lost call's comment", func() bool { return commentsWith(e.Portal, "Второе сообщение") >= 1 })
		e.Eventually("the retry done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = 'crm.mirror'").Scan(&jobs)
			return jobs == 0
		})
		send("Третье сообщение")
		e.Eventually("the third comment", func() bool { return commentsWith(e.Portal, "Третье сообщение") >= 1 })
		e.WaitIdle()
		for _, w := range []string{"Первое сообщение", "Второе сообщение", "Третье сообщение"} {
			if n := commentsWith(e.Portal, w); n != 1 {
				t.Fatalf("%q on the record %d times; want once", w, n)
			}
		}
		if len(e.Portal.Leads()) != 1 {
			t.Fatalf("%d leads", len(e.Portal.Leads()))
		}
	})
}

// TestBitrix24RecordNotRemadeAfterLostAnswer: in CRM mode the first
// message's batch creates the customer's contact and lead and writes the
// comment, but its answer is lost. The retry finds the lead by the
// ORIGINATOR_ID and ORIGIN_ID it was created with (and the contact by
// phone), links them, finds the comment on the lead and writes nothing
// again: one contact, one lead, one comment.
func TestBitrix24RecordNotRemadeAfterLostAnswer(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "lead"})
		e.B24.FailAfterNext(apptest.B24MemberID, "batch", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error")
		ctx := context.Background()
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Первое сообщение"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the lost call's comment", func() bool { return commentsWith(e.Portal, "Первое сообщение") >= 1 })
		e.Eventually("the retry done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = 'crm.mirror'").Scan(&jobs)
			return jobs == 0
		})
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Второе сообщение"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the second comment", func() bool { return commentsWith(e.Portal, "Второе сообщение") >= 1 })
		e.WaitIdle()
		leads, contacts := e.Portal.Leads(), e.Portal.Contacts()
		if len(leads) != 1 || len(contacts) != 1 {
			t.Fatalf("%d leads and %d contacts after a lost answer; want one each", len(leads), len(contacts))
		}
		if leads[0].Field("ORIGINATOR_ID") != "switchboard" || leads[0].Field("ORIGIN_ID") == "" || contacts[0].Field("ORIGIN_ID") == "" {
			t.Fatalf("the lead and contact do not carry our origin: %v / %v", leads[0], contacts[0])
		}
		for _, w := range []string{"Первое сообщение", "Второе сообщение"} {
			if n := commentsWith(e.Portal, w); n != 1 {
				t.Fatalf("%q on the record %d times; want once", w, n)
			}
		}
		var marks int64
		e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM crm_links WHERE kind = 'crm_record_try'").Scan(&marks)
		if marks != 0 {
			t.Fatalf("%d record creations still marked in doubt", marks)
		}
	})
}

// TestAmoCRMLeadNotRemadeAfterLostAnswer: an Instagram customer (no
// phone to find their contact by) gets a lead with an embedded contact in
// POST /api/v4/leads/complex, and amoCRM's answer is lost after the work.
// The retry finds the lead it made (its name, in the pipeline, made since
// the attempt, linked to nobody), links it and its contact, and writes
// the note there: one lead, one contact, the note once.
func TestAmoCRMLeadNotRemadeAfterLostAnswer(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, _ := installAmoWidget(t, e)
		ch := e.CreateInstagram()
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, v)
		}
		e.Amo.FailAfterApply("POST /api/v4/leads/complex", 1)
		ctx := context.Background()
		if _, err := e.Sim.SendInstagramText(ctx, apptest.IGUserID, "1790001", "Есть в наличии?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the note", func() bool { return len(e.Amo.Notes(amoAccount)) >= 1 })
		e.Eventually("the retry done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = 'crm.mirror'").Scan(&jobs)
			return jobs == 0
		})
		e.WaitIdle()
		leads, contacts, notes := e.Amo.Leads(amoAccount), e.Amo.Contacts(amoAccount), e.Amo.Notes(amoAccount)
		if len(leads) != 1 || len(contacts) != 1 || len(notes) != 1 {
			t.Fatalf("%d leads, %d contacts, %d notes after a lost answer; want one each (leads %+v)", len(leads), len(contacts), len(notes), leads)
		}
		if notes[0].EntityID != leads[0].ID {
			t.Fatalf("the note is on lead %d, not on the lead made (%d)", notes[0].EntityID, leads[0].ID)
		}
		var marks int64
		e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM crm_links WHERE kind = 'crm_lead_try'").Scan(&marks)
		if marks != 0 {
			t.Fatalf("%d lead creations still marked in doubt", marks)
		}
	})
}

// TestBitrix24EnsuredDealNotRemadeAfterLostAnswer: in a batched mode the
// record job makes the customer's deal at once; the portal does the work
// but the answer is lost. The retried job finds the deal by its origin
// and links it (with the owner it was given): one deal.
func TestBitrix24EnsuredDealNotRemadeAfterLostAnswer(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		seedCRMUsers(t, e, integ, []string{"1", "27"})
		bindCRM(t, e, integ, ch, map[string]any{"mode": "crm", "entity": "deal", "mirror": "hourly",
			"owner": map[string]any{"strategy": "round_robin", "users": []map[string]any{{"user_id": "27", "weight": 1}}}})
		e.B24.FailAfterNext(apptest.B24MemberID, "batch", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error")
		const phone = "79161230001"
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, phone, "Анна", "Здравствуйте"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the deal", func() bool { return len(e.Portal.Deals()) >= 1 })
		e.Eventually("the record job done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = ?", routing.JobEnsureRecord).Scan(&jobs)
			return jobs == 0
		})
		e.WaitIdle()
		if n := len(e.Portal.Deals()); n != 1 {
			t.Fatalf("%d deals for one customer after a lost answer", n)
		}
		d := customerDialogs(t, e, integ)["+"+phone]
		if d.CRMEntity != "deal" || d.CRMEntityID != e.Portal.Deals()[0].Field("ID") || d.OwnerUserID != "27" {
			t.Fatalf("dialog: owner %q, record %q %q", d.OwnerUserID, d.CRMEntity, d.CRMEntityID)
		}
	})
}

// TestBitrix24InstagramContactNotRemadeAfterLostAnswer: an Instagram
// customer has no phone to find their contact by; after a lost answer
// the retry finds both the contact and the lead by their origin: one
// contact, one lead, one comment.
func TestBitrix24InstagramContactNotRemadeAfterLostAnswer(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		st, ig := e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "Instagram", "workspace_id": ws,
			"ig_user_id": apptest.IGUserID, "access_token": apptest.IGToken})
		if st != http.StatusCreated {
			t.Fatalf("ig channel: %d %v", st, ig)
		}
		bindCRM(t, e, integ, ig["id"].(string), map[string]any{"mode": "crm", "entity": "lead"})
		e.B24.FailAfterNext(apptest.B24MemberID, "batch", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error")
		if _, err := e.Sim.SendInstagramText(context.Background(), apptest.IGUserID, "1133627508796544", "Есть размер M?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the comment", func() bool { return commentsWith(e.Portal, "Есть размер M?") >= 1 })
		e.Eventually("the retry done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = 'crm.mirror'").Scan(&jobs)
			return jobs == 0
		})
		e.WaitIdle()
		if l, c, n := len(e.Portal.Leads()), len(e.Portal.Contacts()), commentsWith(e.Portal, "Есть размер M?"); l != 1 || c != 1 || n != 1 {
			t.Fatalf("%d leads, %d contacts, %d comments after a lost answer; want one each", l, c, n)
		}
	})
}
