package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/app"
	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
)

// jobResults is how many jobs of kind an instance ended with result
// (done, retry, snoozed, dead), from its metrics.
func jobResults(t *testing.T, a *app.App, kind, result string) int {
	t.Helper()
	mfs, err := a.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "switchboard_queue_jobs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["result"] == result {
				n += int(m.GetCounter().GetValue())
			}
		}
	}
	return n
}

// TestBitrix24OutageWaitsWithoutSpendingAttempts: a portal answering 503
// (down behind its proxy, not refusing connections) puts the mirror job
// off without spending attempts, as a CRM that does not answer does; the
// message lands once the portal is back. A plain 500 still spends an
// attempt (a request that trips a bug must dead-letter in the end).
func TestBitrix24OutageWaitsWithoutSpendingAttempts(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		ctx := context.Background()
		e.B24.FailNext(apptest.B24MemberID, "imconnector.send.messages", 3, http.StatusServiceUnavailable, "", "Service Unavailable")
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Первое сообщение"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the message in the line after the outage", func() bool { return len(inboundOnLine(e, 1)) == 1 })
		e.WaitIdle()
		if s, r := jobResults(t, e.App, routing.JobMirror, "snoozed"), jobResults(t, e.App, routing.JobMirror, "retry"); s != 3 || r != 0 {
			t.Fatalf("mirror runs during a 503 outage: %d snoozed, %d failed; want 3 and 0", s, r)
		}

		e.B24.FailNext(apptest.B24MemberID, "imconnector.send.messages", 1, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error")
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Второе сообщение"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the second message after the 500", func() bool { return len(inboundOnLine(e, 1)) == 2 })
		e.WaitIdle()
		if s, r := jobResults(t, e.App, routing.JobMirror, "snoozed"), jobResults(t, e.App, routing.JobMirror, "retry"); s != 3 || r != 1 {
			t.Fatalf("mirror runs after a 500: %d snoozed, %d failed; want 3 and 1", s, r)
		}
	})
}

// TestAmoCRMOutageWaitsWithoutSpendingAttempts: amoCRM answering 502 and
// 504 puts the mirror job off without spending attempts; a 500 spends
// one.
func TestAmoCRMOutageWaitsWithoutSpendingAttempts(t *testing.T) {
	apptest.Each(t, amoOpts, func(t *testing.T, e *apptest.Env) {
		bind := map[string]any{"mode": "crm", "category_id": amoMain, "stage_id": "61000003"}
		amoBound(t, e, bind)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		e.Eventually("the lead and its note", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		e.WaitIdle()

		e.Amo.FailRoute("POST /api/v4/leads/notes", http.StatusBadGateway, 2)
		amoSend(t, e, "79123456789", "Анна", "Второе сообщение")
		e.Eventually("the note after the outage", func() bool { return len(e.Amo.Notes(amoAccount)) == 2 })
		e.WaitIdle()
		if s, r := jobResults(t, e.App, routing.JobMirror, "snoozed"), jobResults(t, e.App, routing.JobMirror, "retry"); s != 2 || r != 0 {
			t.Fatalf("mirror runs during a 502 outage: %d snoozed, %d failed; want 2 and 0", s, r)
		}

		e.Amo.FailRoute("POST /api/v4/leads/notes", http.StatusInternalServerError, 1)
		amoSend(t, e, "79123456789", "Анна", "Третье сообщение")
		e.Eventually("the note after the 500", func() bool { return len(e.Amo.Notes(amoAccount)) == 3 })
		e.WaitIdle()
		if s, r := jobResults(t, e.App, routing.JobMirror, "snoozed"), jobResults(t, e.App, routing.JobMirror, "retry"); s != 2 || r != 1 {
			t.Fatalf("mirror runs after a 500: %d snoozed, %d failed; want 2 and 1", s, r)
		}
	})
}
