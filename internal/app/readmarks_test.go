package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// readMarksOf counts the simulator's accepted read marks per wamid.
func readMarksOf(e *apptest.Env) map[string]int {
	out := map[string]int{}
	for _, m := range e.Sim.ReadMarks() {
		out[m.MessageID]++
	}
	return out
}

// A person's answer (API, shared chat) and a cabinet user opening the
// dialog tell WhatsApp the customer's newest message was read, once.
func TestReadMarkOnAnswer(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		f := newChatFixture(t, e)
		annaLast, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, annaWA, "Анна", "Вы тут?")
		if err != nil {
			t.Fatal(err)
		}
		borisLast, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, borisWA, "Борис", "И 43?")
		if err != nil {
			t.Fatal(err)
		}
		e.WaitIdle()
		if got := readMarksOf(e); len(got) != 0 {
			t.Fatalf("read marks before anyone answered or looked: %v", got)
		}
		reply := func(to string) {
			st, body := e.Do("POST", "/api/v1/channels/"+f.ch+"/messages", map[string]any{"to": to, "text": "Да, есть"})
			if st != http.StatusAccepted {
				t.Fatalf("reply to %s: %d %v", to, st, body)
			}
		}
		reply(borisWA)
		e.WaitIdle()
		if got := readMarksOf(e); len(got) != 1 || got[borisLast] != 1 {
			t.Fatalf("an API answer to Борис: %v (want %s once)", got, borisLast)
		}
		reply(borisWA)
		e.WaitIdle()
		if got := readMarksOf(e); len(got) != 1 || got[borisLast] != 1 {
			t.Fatalf("a second answer marked again: %v", got)
		}

		// The shared chat: opening the dialog marks Анна's newest message;
		// refreshing the log does not mark it again.
		if st, _ := f.owner.get("/chat?d=" + f.anna); st != 200 {
			t.Fatalf("open: %d", st)
		}
		for range 2 {
			if st, _ := f.owner.get("/chat/dialogs/" + f.anna + "/log"); st != 200 {
				t.Fatalf("log: %d", st)
			}
		}
		e.WaitIdle()
		if got := readMarksOf(e); len(got) != 2 || got[annaLast] != 1 {
			t.Fatalf("opening Анна's dialog: %v (want %s once)", got, annaLast)
		}
		// An answer from the chat marks what she wrote since.
		annaNew, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, annaWA, "Анна", "Спасибо")
		if err != nil {
			t.Fatal(err)
		}
		e.WaitIdle()
		_, page := f.owner.get("/chat?d=" + f.anna)
		target := chatTargetRe.FindStringSubmatch(page)
		if target == nil {
			t.Fatal("no target on the page")
		}
		send := url.Values{"target": {strings.ReplaceAll(target[1], "&#43;", "+")}, "text": {"Пожалуйста"}, "csrf": {f.ownerTok}}
		if r, _ := f.owner.do("POST", "/chat/dialogs/"+f.anna+"/send", send); r.StatusCode != 303 {
			t.Fatalf("send: %d", r.StatusCode)
		}
		e.WaitIdle()
		if got := readMarksOf(e); len(got) != 3 || got[annaNew] != 1 || got[annaLast] != 1 {
			t.Fatalf("after the chat answer: %v (want %s once)", got, annaNew)
		}
	})
}

// The branch menu is the gateway talking, not a person: nothing is read.
func TestReadMarkNotOnBranchMenu(t *testing.T) {
	apptest.Each(t, branchOpts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		msk, ws := e.InstallBitrix24()
		_, kzn := e.InstallBitrix24Portal(kazanMemberID, kazanDomain, kazanAppToken)
		ch := createWAIn(t, e, ws)
		for _, in := range []string{msk, kzn} {
			if st, body := e.Do("PUT", "/api/v1/integrations/"+in+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "lead"}); st != http.StatusOK {
				t.Fatalf("bind %s: %d %v", in, st, body)
			}
		}
		branches := []map[string]any{{"integration_id": msk, "name": "Москва", "keywords": []string{"москва"}}, {"integration_id": kzn, "name": "Казань"}}
		if st, body := e.Do("PUT", "/api/v1/channels/"+ch+"/routing", map[string]any{"mode": "branch", "branches": branches}); st != http.StatusOK {
			t.Fatalf("routing: %d %v", st, body)
		}
		const y = "79167770007"
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, y, "Юлия", "Добрый вечер"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("menu to Y", func() bool { return len(textsTo(e, y))+len(textsTo(e, "+"+y)) == 1 })
		e.WaitIdle()
		if got := readMarksOf(e); len(got) != 0 {
			t.Fatalf("the branch menu marked the customer's message read: %v", got)
		}
	})
}
