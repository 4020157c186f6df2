package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
)

// The Chats API channel of the tests.
const (
	amojoChannelID = "f90ba33d-c9d9-44da-b76c-c349b0ecbe41"
	amojoSecret    = "5a44c5dff55f3c15a4cce8d7c4cc27e207c7e189"
)

var amojoOpts = apptest.Options{AmoCRM: true, Amo: func(o *amosim.Options) {
	o.ChannelID, o.ChannelSecret, o.ChannelCode = amojoChannelID, amojoSecret, "amo.ext.switchboard"
}}

// amojoConnected waits for the account's channel connection and returns
// its scope id.
func amojoConnected(t *testing.T, e *apptest.Env, account int) string {
	t.Helper()
	var scope string
	e.Eventually("amojo connected", func() bool {
		var ok bool
		scope, ok = e.Amo.ScopeID(account)
		return ok
	})
	return scope
}

// amojoChat waits for the account's only chat to hold n messages.
func amojoChat(t *testing.T, e *apptest.Env, account, n int) amosim.Chat {
	t.Helper()
	var c amosim.Chat
	e.Eventually("the chat in amojo", func() bool {
		cs := e.Amo.Chats(account)
		if len(cs) != 1 || len(cs[0].Messages) != n {
			return false
		}
		c = cs[0]
		return true
	})
	return c
}

// outbound are the channel's messages we sent.
func outbound(e *apptest.Env, ch string) []map[string]any {
	var out []map[string]any
	for _, m := range e.Messages(ch) {
		if m["direction"] == "out" {
			out = append(out, m)
		}
	}
	return out
}

// graphTexts are the texts the Graph simulator was asked to send.
func graphTexts(e *apptest.Env, text string) int {
	n := 0
	for _, r := range e.Sim.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v21.0/"+apptest.PhoneNumberID+"/messages" && bytes.Contains(r.Body, []byte(text)) {
			n++
		}
	}
	if n == 0 { // the Graph version is not this test's business
		for _, r := range e.Sim.Requests() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/"+apptest.PhoneNumberID+"/messages") && bytes.Contains(r.Body, []byte(text)) {
				n++
			}
		}
	}
	return n
}

// deliveryStatuses counts the delivery-status calls amojo answered 200.
func deliveryStatuses(e *apptest.Env) int {
	n := 0
	for _, r := range e.Amo.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/delivery_status") && r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// postHook posts a hook body with a signature as amojo would.
func postHook(t *testing.T, e *apptest.Env, url string, body []byte, sig string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Signature", sig)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestAmojoEndToEnd is issue 8's walk: install (the channel connects) →
// settings through the admin API (crm mode, pipeline and status, owner) →
// a WhatsApp message from a new customer makes one contact +79123456789
// and one lead in the chosen status on the chosen manager → it is in
// amoCRM's chat with the customer's name and phone → the manager's answer
// there reaches the Graph simulator → delivered and read go back to amojo.
func TestAmojoEndToEnd(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		// The admin binds the channel on the widget's settings page, as
		// the walk says: pipeline and stage, round robin on Ivan.
		addAmoAccount(t, e)
		id, ws := installAmoWidget(t, e)
		ch := createWAIn(t, e, ws)
		page, _ := openSettings(t, e, amoAdminUser, "ru")
		form := pageForm(t, page, "settings-all")
		form.Set("bind:"+ch, "on")
		form.Set("stage:"+ch, amoMain+"/61000003")
		form.Set("strategy:"+ch, "round_robin")
		form.Set("owner:"+ch+":9000002", "on")
		form.Set("weight:"+ch+":9000002", "1")
		if st, body, _ := pageCall(t, e, "POST", "/amocrm/settings/save", form); st != http.StatusSeeOther {
			t.Fatalf("save on the settings page: %d\n%.600s", st, body)
		}
		_, in := e.Do("GET", "/api/v1/integrations/"+id, nil)
		if bs, _ := in["bindings"].([]any); len(bs) != 1 || bs[0].(map[string]any)["stage_id"] != "61000003" {
			t.Fatalf("bindings after the save: %v", in["bindings"])
		}
		if scope := amojoConnected(t, e, amoAccount); scope != amojoChannelID+"_"+amosim.ExampleAccount().AmojoID {
			t.Fatalf("scope %q", scope)
		}

		amoSend(t, e, "79123456789", "Анна Смирнова", "Здравствуйте, нужна доставка")
		e.Eventually("lead and contact", func() bool { return len(e.Amo.Leads(amoAccount)) == 1 })
		c := amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()
		cs, ls := e.Amo.Contacts(amoAccount), e.Amo.Leads(amoAccount)
		if len(cs) != 1 || len(cs[0].Phones) != 1 || cs[0].Phones[0].Value != "+79123456789" || len(ls) != 1 {
			t.Fatalf("contacts %+v, leads %+v", cs, ls)
		}
		if l := ls[0]; l.PipelineID != 7000001 || l.StatusID != 61000003 || l.ResponsibleUserID != 9000002 {
			t.Fatalf("lead %+v", l)
		}
		if c.Name != "Анна Смирнова" || c.Phone != "+79123456789" || c.Messages[0].Text != "Здравствуйте, нужна доставка" ||
			!c.Messages[0].Incoming || c.Messages[0].Type != "text" {
			t.Fatalf("chat %+v", c)
		}

		amoID, d, err := e.Amo.ManagerReply(context.Background(), amoAccount, c.ConversationID, 9000002, "Добрый день! Доставим завтра.")
		if err != nil || d.Status != http.StatusOK {
			t.Fatalf("hook: %v %+v", err, d)
		}
		e.Eventually("the answer at Meta, then read", func() bool {
			out := outbound(e, ch)
			return len(out) == 1 && out[0]["text"] == "Добрый день! Доставим завтра." && out[0]["status"] == "read"
		})
		if n := graphTexts(e, "Доставим завтра"); n != 1 {
			t.Fatalf("%d sends at Graph", n)
		}
		e.Eventually("read back in amojo", func() bool {
			for _, m := range amojoChat(t, e, amoAccount, 2).Messages {
				if m.AmoID == amoID {
					return m.Delivery == 2
				}
			}
			return false
		})
		e.WaitIdle()
		if n := deliveryStatuses(e); n != 2 { // delivered, then read
			t.Fatalf("%d delivery statuses, want delivered and read", n)
		}
	})
}

// TestAmojoHookSignatureAndRedelivery: an unsigned or wrongly signed hook
// is a 401 and sends nothing; a hook posted again sends once; the manager
// who answers first takes a first-responder customer.
func TestAmojoHookSignatureAndRedelivery(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		_, _, ch := amoBound(t, e, map[string]any{"mode": "crm",
			"owner": map[string]any{"strategy": "first_responder", "users": []map[string]any{{"user_id": "9000001"}, {"user_id": "9000002"}}}})
		amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		c := amojoChat(t, e, amoAccount, 1)
		e.Eventually("lead", func() bool { return len(e.Amo.Leads(amoAccount)) == 1 })
		e.WaitIdle()

		// The manager answers; amojo posts the signed hook.
		_, d, err := e.Amo.ManagerReply(context.Background(), amoAccount, c.ConversationID, 9000002, "Первый ответ")
		if err != nil || d.Status != http.StatusOK {
			t.Fatalf("hook: %v %+v", err, d)
		}
		e.Eventually("sent", func() bool { return len(outbound(e, ch)) == 1 })
		e.WaitIdle()

		// The same hook again: answered, nothing sent twice.
		if st := postHook(t, e, d.URL, d.Body, d.Signature); st != http.StatusOK {
			t.Fatalf("redelivery: %d", st)
		}
		// Unsigned, wrongly signed, signed with another secret: 401.
		forged := bytes.Replace(d.Body, []byte("Первый ответ"), []byte("Поддельный ответ"), 1)
		for _, sig := range []string{"", d.Signature, amosim.AmojoHookSignature("another-secret", forged), "zz"} {
			if st := postHook(t, e, d.URL, forged, sig); st != http.StatusUnauthorized {
				t.Fatalf("forged hook with signature %q: %d", sig, st)
			}
		}
		e.WaitIdle()
		if out := outbound(e, ch); len(out) != 1 || graphTexts(e, "Поддельный") != 0 || graphTexts(e, "Первый ответ") != 1 {
			t.Fatalf("sent %v", out)
		}
		// The answering manager took the customer.
		e.Eventually("lead handed to the first responder", func() bool { return e.Amo.Leads(amoAccount)[0].ResponsibleUserID == 9000002 })
	})
}

// TestAmojoTenants: a hook cannot answer another account's customer. The
// channel secret is one for every account, so the signature proves only
// that amojo sent it: a hook for account B naming account A's
// conversation sends nothing (and amojo hears it failed); one posted to
// A's scope with B's account in the body is refused.
func TestAmojoTenants(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		_, _, ch := amoBound(t, e, map[string]any{"mode": "crm"})
		scopeA := amojoConnected(t, e, amoAccount)
		second := installSecondAmoAccount(t, e)
		scopeB := amojoConnected(t, e, second.ID)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		c := amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()

		hook := func(account, text string) []byte {
			return []byte(`{"account_id":"` + account + `","time":1767268800,"message":{"receiver":{"id":"r","phone":"","email":"","client_id":"` +
				c.ClientID + `"},"sender":{"id":"31fc2bea-902f-925c-6a3d-dcdac4766091"},"conversation":{"id":"x","client_id":"` +
				c.ConversationID + `"},"timestamp":1767268800,"msec_timestamp":1767268800000,"message":{"id":"` + text +
				`","type":"text","text":"` + text + `"}}}`)
		}
		base := e.URL + "/amocrm/amojo/"
		bodyB := hook(second.AmojoID, "чужой-ответ")
		if st := postHook(t, e, base+scopeB, bodyB, amosim.AmojoHookSignature(amojoSecret, bodyB)); st != http.StatusOK {
			t.Fatalf("B's hook: %d", st)
		}
		bodyX := hook(second.AmojoID, "подмена-аккаунта")
		if st := postHook(t, e, base+scopeA, bodyX, amosim.AmojoHookSignature(amojoSecret, bodyX)); st != http.StatusForbidden {
			t.Fatalf("A's scope with B's account: %d", st)
		}
		if st := postHook(t, e, base+amojoChannelID+"_nobody", bodyX, amosim.AmojoHookSignature(amojoSecret, bodyX)); st != http.StatusNotFound {
			t.Fatalf("unknown scope: %d", st)
		}
		e.WaitIdle()
		if out := outbound(e, ch); len(out) != 0 || graphTexts(e, "чужой") != 0 {
			t.Fatalf("another account's hook sent %v", out)
		}
	})
}

// TestAmojoFiles: a customer's picture goes into amoCRM's chat as a
// picture with the gateway's signed link (which serves the file); a
// manager's file is downloaded and sent to the customer as an upload.
func TestAmojoFiles(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		_, _, ch := amoBound(t, e, map[string]any{"mode": "crm", "mirror": "none"})
		amojoConnected(t, e, amoAccount)
		png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("c"), 300)...)
		if _, _, err := e.Sim.SendWhatsAppImage(context.Background(), apptest.PhoneNumberID, "79123456789", "Анна", "image/png", png, "вот фото"); err != nil {
			t.Fatal(err)
		}
		c := amojoChat(t, e, amoAccount, 1)
		m := c.Messages[0]
		if m.Type != "picture" || m.Text != "вот фото" || m.FileSize != len(png) || !strings.HasPrefix(m.Media, e.URL) {
			t.Fatalf("picture in amojo %+v", m)
		}
		resp, err := e.Client.Get(m.Media)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, png) {
			t.Fatalf("the link amoCRM downloads: %d, %d bytes", resp.StatusCode, len(got))
		}
		if len(e.Amo.Notes(amoAccount)) != 0 {
			t.Fatal("mirror none wrote notes")
		}

		// The manager sends a file from amoCRM's drive.
		doc := []byte("%PDF-1.4 счёт на оплату")
		drive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/pdf")
			w.Write(doc)
		}))
		defer drive.Close()
		_, d, err := e.Amo.ManagerSend(context.Background(), amoAccount, c.ConversationID, 9000002,
			amosim.OutgoingMessage{Type: "file", Text: "Счёт", Media: drive.URL + "/files/invoice.pdf", FileName: "invoice.pdf", FileSize: len(doc)})
		if err != nil || d.Status != http.StatusOK {
			t.Fatalf("hook: %v %+v", err, d)
		}
		e.Eventually("the document sent", func() bool {
			out := outbound(e, ch)
			return len(out) == 1 && out[0]["type"] == "document" && out[0]["status"] == "read"
		})
		uploaded := false
		for _, r := range e.Sim.Requests() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/media") && bytes.Contains(r.Body, doc) {
				uploaded = true
			}
		}
		if !uploaded {
			t.Fatal("the manager's file was not uploaded to Meta")
		}
	})
}

// TestAmojoDisableAndReinstall: disabling the integration disconnects the
// channel and a hook for its scope sends nothing; a customer message
// meanwhile goes nowhere; installing again connects the channel again and
// the chat goes on.
func TestAmojoDisableAndReinstall(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		id, _, ch := amoBound(t, e, map[string]any{"mode": "crm"})
		scope := amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		c := amojoChat(t, e, amoAccount, 1)
		e.WaitIdle()

		if st, body, _ := amoGet(t, e, "/amocrm/disabled", e.Amo.DisableHookQuery(amoAccount)); st != http.StatusOK {
			t.Fatalf("disable hook: %d %s", st, body)
		}
		e.Eventually("channel disconnected", func() bool { _, ok := e.Amo.ScopeID(amoAccount); return !ok })
		body := []byte(`{"account_id":"` + amosim.ExampleAccount().AmojoID + `","time":1,"message":{"conversation":{"id":"x","client_id":"` +
			c.ConversationID + `"},"sender":{"id":""},"message":{"id":"after-disable","type":"text","text":"после отключения"}}}`)
		// Taken (it is signed and the scope was ours) and reported failed,
		// never sent: amojo no longer has the scope, so the report ends
		// there.
		if st := postHook(t, e, e.URL+"/amocrm/amojo/"+scope, body, amosim.AmojoHookSignature(amojoSecret, body)); st != http.StatusOK {
			t.Fatalf("hook of a disabled account: %d", st)
		}
		e.WaitIdle()

		installAmoWidget(t, e)
		if got := amojoConnected(t, e, amoAccount); got != scope {
			t.Fatalf("scope after reinstall %q", got)
		}
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm"}); st != http.StatusOK {
			t.Fatalf("bind again: %d %v", st, v)
		}
		amoSend(t, e, "79123456789", "Анна", "Снова я")
		amojoChat(t, e, amoAccount, 2)
		e.WaitIdle()
		if out := outbound(e, ch); len(out) != 0 {
			t.Fatalf("sent %v", out)
		}
	})
}

// TestAmojoOrderUnderStorm: amojo answering 429 and 5xx to a burst of two
// customers' messages delays them, loses none and keeps each customer's
// order.
func TestAmojoOrderUnderStorm(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm", "mirror": "none"})
		amojoConnected(t, e, amoAccount)
		e.Amo.FailAmojo(429, 502, 429)
		for i := 1; i <= 4; i++ {
			amoSend(t, e, "79123456789", "Анна", "Анна "+strconv.Itoa(i))
			amoSend(t, e, "79160001122", "Борис", "Борис "+strconv.Itoa(i))
		}
		e.EventuallyWithin(90*time.Second, "every message in amojo", func() bool {
			n := 0
			for _, c := range e.Amo.Chats(amoAccount) {
				n += len(c.Messages)
			}
			return n == 8
		})
		for _, c := range e.Amo.Chats(amoAccount) {
			for i, m := range c.Messages {
				if want := c.Name + " " + strconv.Itoa(i+1); m.Text != want {
					t.Fatalf("%s's message %d is %q", c.Name, i, m.Text)
				}
			}
			if c.LinkID == 0 || c.LeadID != 0 {
				t.Fatalf("%s's chat is not linked to our contact: %+v", c.Name, c)
			}
		}
		e.WaitIdle()
		if ls := e.Amo.Leads(amoAccount); len(ls) != 2 {
			t.Fatalf("leads %+v, want one per customer", ls)
		}
	})
}

// TestAmojoInstagramProfile: an Instagram customer's chat shows the name,
// avatar and profile link the messenger gave (they come with the messages
// after the profile is read), and a manager's answer goes back to the
// Instagram-scoped id.
func TestAmojoInstagramProfile(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		addAmoAccount(t, e)
		id, _ := installAmoWidget(t, e)
		ch := e.CreateInstagram()
		if st, v := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm", "mirror": "none"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, v)
		}
		amojoConnected(t, e, amoAccount)
		e.Sim.SetInstagramProfile("1790001", metasim.InstagramProfile{Name: "Мария Лис", Username: "maria.fox", ProfilePic: "https://cdn.example.com/maria.jpg"})
		ctx := context.Background()
		for i, text := range []string{"Привет", "Есть в наличии?"} {
			if _, err := e.Sim.SendInstagramText(ctx, apptest.IGUserID, "1790001", text); err != nil {
				t.Fatal(err)
			}
			amojoChat(t, e, amoAccount, i+1)
			e.WaitIdle()
		}
		c := amojoChat(t, e, amoAccount, 2)
		if c.Name != "Мария Лис" || c.Avatar != "https://cdn.example.com/maria.jpg" || c.ProfileLink != "https://www.instagram.com/maria.fox" || c.Phone != "" {
			t.Fatalf("chat %+v", c)
		}
		if _, d, err := e.Amo.ManagerReply(ctx, amoAccount, c.ConversationID, 9000001, "Да, есть"); err != nil || d.Status != http.StatusOK {
			t.Fatalf("hook: %v %+v", err, d)
		}
		e.Eventually("answer sent to the Instagram id", func() bool {
			for _, r := range e.Sim.Requests() {
				if r.Method == http.MethodPost && bytes.Contains(r.Body, []byte("1790001")) && bytes.Contains(r.Body, []byte("Да, есть")) {
					return true
				}
			}
			return false
		})
	})
}

// TestAmojoConnectRefused: amojo refusing the connection (a private
// channel not opened to the account) leaves customers' messages to the
// notes instead of waiting for a chat; the next install connects.
func TestAmojoConnectRefused(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		e.Amo.FailAmojo(http.StatusNotFound)
		amoBound(t, e, map[string]any{"mode": "crm"})
		amoSend(t, e, "79123456789", "Анна", "Здравствуйте")
		e.Eventually("the note", func() bool { return len(e.Amo.Notes(amoAccount)) == 1 })
		e.WaitIdle()
		if _, ok := e.Amo.ScopeID(amoAccount); ok || len(e.Amo.Chats(amoAccount)) != 0 {
			t.Fatal("connected after a refusal")
		}
		if js := jobsOf(t, e, "crm.chat"); len(js) != 0 {
			t.Fatalf("chat jobs wait for a refused connection: %+v", js)
		}
		installAmoWidget(t, e)
		amojoConnected(t, e, amoAccount)
		amoSend(t, e, "79123456789", "Анна", "Снова я")
		if c := amojoChat(t, e, amoAccount, 1); c.Messages[0].Text != "Снова я" {
			t.Fatalf("chat %+v", c)
		}
	})
}

// TestAmojoNotResentAfterLostAnswer: amojo takes a customer's message
// into the chat but the answer is lost (a 502 after the work). amojo's
// documentation does not promise that a repeated msgid adds nothing, so
// the retry reads the chat's history, finds the message and does not
// send it again; the next message goes as usual, once.
func TestAmojoNotResentAfterLostAnswer(t *testing.T) {
	apptest.Each(t, amojoOpts, func(t *testing.T, e *apptest.Env) {
		amoBound(t, e, map[string]any{"mode": "crm", "mirror": "none"})
		amojoConnected(t, e, amoAccount)
		const send = "POST /v2/origin/custom/{id}"
		e.Amo.FailAfterApply(send, 1)
		amoSend(t, e, "79123456789", "Анна", "Первое сообщение")
		amojoChat(t, e, amoAccount, 1)
		e.Eventually("the retry done", func() bool {
			var jobs int64
			e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM jobs WHERE kind = ?", routing.JobChat).Scan(&jobs)
			return jobs == 0
		})
		if n := e.Amo.AmojoCalls(send); n != 1 {
			t.Fatalf("%d new_message calls after the lost answer; want the lost one only", n)
		}
		if e.Amo.AmojoCalls("GET /v2/origin/custom/{id}/chats/{conv}/history") == 0 {
			t.Fatal("the retry did not read the chat's history")
		}
		amoSend(t, e, "79123456789", "Анна", "Второе сообщение")
		c := amojoChat(t, e, amoAccount, 2)
		e.WaitIdle()
		if c.Messages[0].Text != "Первое сообщение" || c.Messages[1].Text != "Второе сообщение" || e.Amo.AmojoCalls(send) != 2 {
			t.Fatalf("chat %+v after %d sends; want each message once", c.Messages, e.Amo.AmojoCalls(send))
		}
		var marks int64
		e.App.DB.Gorm.Raw("SELECT COUNT(*) FROM crm_links WHERE kind = 'amojo_try'").Scan(&marks)
		if marks != 0 {
			t.Fatalf("%d sends still marked in doubt", marks)
		}
	})
}
