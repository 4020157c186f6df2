package app_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/store"
)

// installIn installs the app like Env.InstallBitrix24, with the portal in
// the given language.
func installIn(t *testing.T, e *apptest.Env, lang string) (integrationID, workspaceID string) {
	t.Helper()
	st, err := e.B24.PostInstallEvent(t.Context(), apptest.B24MemberID, e.URL+"/bitrix24/install", lang)
	if err != nil || st != http.StatusOK {
		t.Fatalf("install: %d %v", st, err)
	}
	_, list := e.Do("GET", "/api/v1/integrations", nil)
	for _, v := range list["data"].([]any) {
		if m := v.(map[string]any); m["type"] == "bitrix24" {
			integrationID, workspaceID = m["id"].(string), m["workspace_id"].(string)
		}
	}
	if integrationID == "" {
		t.Fatalf("no integration after install: %v", list)
	}
	e.Eventually("connectors registered and events bound", func() bool {
		return len(e.Portal.Connectors()) >= 2 && len(e.Portal.Events()) >= 6
	})
	return integrationID, workspaceID
}

// seedUsers gives the integration its CRM users and the channel's access
// rows, as the settings API will: 5 sends, 7 reads, 9 sends but the CRM
// deactivated them, 3 has no access.
func seedUsers(t *testing.T, e *apptest.Env, integ, ch string) {
	t.Helper()
	ctx := context.Background()
	err := e.App.Store.ReplaceCRMUsers(ctx, integ, []store.CRMUser{
		{UserID: "1", Name: "Админ", Active: true}, {UserID: "3", Name: "Олег", Active: true},
		{UserID: "5", Name: "Анна", Active: true}, {UserID: "7", Name: "Пётр", Active: true},
		{UserID: "9", Name: "Уволен", Active: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.App.Store.ReplaceAccess(ctx, integ, []store.ChannelAccess{
		{UserID: "5", ChannelID: ch, Level: store.AccessSend, IsDefault: true},
		{UserID: "7", ChannelID: ch, Level: store.AccessRead},
		{UserID: "9", ChannelID: ch, Level: store.AccessSend},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setNotifyAfter writes the integration's delay straight into its
// settings (the settings API validates its minimum; tests want 1 second).
func setNotifyAfter(t *testing.T, e *apptest.Env, integ string, seconds int) {
	t.Helper()
	err := e.App.DB.Gorm.Exec("UPDATE integrations SET settings = ? WHERE id = ?",
		`{"notify_after_seconds":`+strconv.Itoa(seconds)+`}`, integ).Error
	if err != nil {
		t.Fatal(err)
	}
}

// fireTimer makes the binding's escalation timers fire now, as if their
// deadline had come: the delay drops to a second, the newest customer
// message is let become a second old, and the timers are woken.
func fireTimer(t *testing.T, e *apptest.Env, integ, ch string) {
	t.Helper()
	setNotifyAfter(t, e, integ, 1)
	// The newest customer message's deadline passes first, so the timer
	// decides on what the dialog is, not on a deadline not yet come.
	last, err := time.Parse(time.RFC3339Nano, createdAt(t, e, newestInbound(t, e, ch)))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(last.Add(1100 * time.Millisecond)))
	b, err := e.App.Store.BindingOf(context.Background(), integ, ch)
	if err != nil {
		t.Fatal(err)
	}
	key := routing.EscalationKey(b.ID)
	if _, err := e.App.Queue.Wake(context.Background(), routing.JobEscalate, []string{key}); err != nil {
		t.Fatal(err)
	}
	e.Eventually("the escalation timer ran", func() bool {
		time.Sleep(50 * time.Millisecond)
		n, err := e.App.Queue.Busy(context.Background())
		if err != nil || n != 0 {
			return false
		}
		var pending int64
		err = e.App.DB.Gorm.Table("jobs").Where("kind = ? AND queue_key = ?", routing.JobEscalate, key).Count(&pending).Error
		return err == nil && pending == 0
	})
}

// chatLink is an Open Lines chat's link as a notice shows it.
var chatLink = regexp.MustCompile(`\[URL=[^\]]+/online/\?IM_DIALOG=chat[0-9]+\]Open the chat\[/URL\]`)

// notices are the portal's notifications of one kind, oldest first.
func notices(e *apptest.Env, kind string) []b24sim.Notification {
	var out []b24sim.Notification
	for _, n := range e.Portal.Notifications() {
		if strings.HasSuffix(n.Tag, "|"+kind) {
			out = append(out, n)
		}
	}
	return out
}

func notifiedUsers(ns []b24sim.Notification) []int {
	var out []int
	for _, n := range ns {
		out = append(out, n.UserID)
	}
	slices.Sort(out)
	return out
}

// CRM mode, Russian portal: the owner group hears of the first message
// (not of the second), everyone with access of a customer left waiting,
// once even when the timer runs again; an owner is told alone; "no reply
// needed" stops the escalation.
func TestNotifyWaitingCustomerCRMMode(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "crm", "entity": "deal"}); st != http.StatusOK {
			t.Fatalf("bind: %d %v", st, body)
		}
		seedUsers(t, e, integ, ch)
		// The group: 3, and 9 whom the CRM deactivated.
		b, err := e.App.Store.BindingOf(ctx, integ, ch)
		if err != nil {
			t.Fatal(err)
		}
		routing.BindingPolicy{Name: "Розница [b]WA[/b]", Owner: &routing.OwnerPolicy{Strategy: routing.StrategyFirstResponder,
			Users: []routing.WeightedUser{{UserID: "3"}, {UserID: "9"}}}}.Apply(b)
		if err := e.App.Store.PutBinding(ctx, b); err != nil {
			t.Fatal(err)
		}

		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна [b]Смирнова[/b]", "Хочу заказать доставку [url=http://evil]сюда[/url]"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна [b]Смирнова[/b]", "И ещё вопрос"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("both messages in the deal", func() bool { return len(e.Portal.TimelineComments()) == 2 })
		e.WaitIdle()
		news := notices(e, routing.NoticeNew)
		if len(news) != 1 || news[0].UserID != 3 || news[0].Type != "personal" {
			t.Fatalf("new-message notices %+v, want one to user 3", news)
		}
		deal := e.Portal.Deals()[0].Field("ID")
		portal := strings.TrimSuffix(e.B24.ClientEndpoint(), "/rest/")
		text := news[0].Message
		for _, want := range []string{"Новое сообщение", "Анна [\u200bb]Смирнова[\u200b/b] (+79161234567)", "«Розница [\u200bb]WA[\u200b/b]»",
			"Хочу заказать доставку [\u200burl=http://evil]сюда[\u200b/url]",
			"[URL=" + portal + "/crm/deal/details/" + deal + "/]Открыть сделку[/URL]"} {
			if !strings.Contains(text, want) {
				t.Fatalf("notice %q lacks %q", text, want)
			}
		}
		if strings.Contains(text, "И ещё вопрос") {
			t.Fatalf("notice quotes the second message: %q", text)
		}
		d := onlyDialog(t, e, ch)
		id := d["id"].(string)
		if len(notices(e, routing.NoticeEscalation)) != 0 {
			t.Fatal("escalated before the deadline")
		}

		fireTimer(t, e, integ, ch)
		esc := notices(e, routing.NoticeEscalation)
		if got := notifiedUsers(esc); !slices.Equal(got, []int{5, 7}) {
			t.Fatalf("escalated to %v, want everyone active with access [5 7]: %+v", got, esc)
		}
		if !strings.Contains(esc[0].Message, "ждёт ответа") || !strings.Contains(esc[0].Message, "/crm/deal/details/"+deal+"/") {
			t.Fatalf("escalation text %q", esc[0].Message)
		}
		// The same timer once more (a retry after a lost lease, a
		// duplicate): nobody is told twice.
		dv, err := e.App.Store.GetDialog(ctx, store.All, id)
		if err != nil || dv.EscalatedAt == nil {
			t.Fatalf("escalation not recorded on the dialog: %v %+v", err, dv)
		}
		if st, body := e.Do("GET", "/api/v1/dialogs/"+id, nil); st != http.StatusOK || body["escalated_at"] == nil {
			t.Fatalf("the API does not show the escalation: %d %v", st, body)
		}
		err = e.App.Store.Tx(ctx, func(tx *gorm.DB) error { return routing.EnqueueEscalation(tx, b, time.Now()) })
		if err != nil {
			t.Fatal(err)
		}
		fireTimer(t, e, integ, ch)
		if n := len(notices(e, routing.NoticeEscalation)); n != 2 {
			t.Fatalf("%d escalation notices after the timer ran twice, want 2", n)
		}

		// Answered; then the customer writes again to the dialog's owner.
		if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": customer, "text": "Добрый день!"}); st != http.StatusAccepted {
			t.Fatalf("reply: %d %v", st, body)
		}
		dv, err = e.App.Store.GetDialog(ctx, store.All, id)
		if err != nil {
			t.Fatal(err)
		}
		k := store.DialogKey{WorkspaceID: ws, IntegrationID: integ, ChannelID: ch, ContactID: dv.ContactID}
		if err := e.App.Store.Tx(ctx, func(tx *gorm.DB) error { _, err := store.SetDialogOwner(tx, k, "7", false); return err }); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "А когда привезут?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("a new waiting period is announced", func() bool { return len(notices(e, routing.NoticeNew)) == 2 })
		if n := notices(e, routing.NoticeNew)[1]; n.UserID != 7 || !strings.Contains(n.Message, "А когда привезут?") {
			t.Fatalf("second period's notice %+v, want one to the owner 7", n)
		}
		if st, body := e.Do("POST", "/api/v1/dialogs/"+id+"/no-reply-needed", nil); st != http.StatusOK {
			t.Fatalf("no-reply-needed: %d %v", st, body)
		}
		fireTimer(t, e, integ, ch)
		if n := len(notices(e, routing.NoticeEscalation)); n != 2 {
			t.Fatalf("%d escalation notices: one went out after no-reply-needed", n)
		}
		if n := len(notices(e, routing.NoticeNew)); n != 2 {
			t.Fatalf("%d new-message notices, want 2", n)
		}
	})
}

// Open Lines, English portal: with no owner and no group everyone with
// access hears of the customer, linked to the chat; an operator's answer
// before the deadline leaves the timer nothing to do.
func TestNotifyAnsweredBeforeDeadlineOpenLines(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := installIn(t, e, "en")
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		seedUsers(t, e, integ, ch)

		if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Anna Smith", "Where is my order?"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("the message in the open line", func() bool { return len(inboundOnLine(e, 1)) == 1 })
		e.Eventually("the new-message notice", func() bool { return len(notices(e, routing.NoticeNew)) == 2 })
		news := notices(e, routing.NoticeNew)
		if got := notifiedUsers(news); !slices.Equal(got, []int{5, 7}) {
			t.Fatalf("notified %v, want everyone active with access [5 7]", got)
		}
		portal := strings.TrimSuffix(e.B24.ClientEndpoint(), "/rest/")
		for _, want := range []string{"New message from customer Anna Smith (+79161234567)", "“Продажи”", "“Where is my order?”",
			"[URL=" + portal + "/online/?IM_DIALOG=chat"} {
			if !strings.Contains(news[0].Message, want) {
				t.Fatalf("notice %q lacks %q", news[0].Message, want)
			}
		}
		if !chatLink.MatchString(news[0].Message) {
			t.Fatalf("notice %q does not link the chat", news[0].Message)
		}
		if strings.Contains(news[0].Message, "Новое") {
			t.Fatalf("a Russian notice on an English portal: %q", news[0].Message)
		}

		if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": customer, "text": "It is on its way."}); st != http.StatusAccepted {
			t.Fatalf("reply: %d %v", st, body)
		}
		fireTimer(t, e, integ, ch)
		if esc := notices(e, routing.NoticeEscalation); len(esc) != 0 {
			t.Fatalf("escalated an answered customer: %+v", esc)
		}
	})
}

// notifyBatches counts the batch calls that carried notifications.
func notifyBatches(e *apptest.Env) int {
	n := 0
	for _, c := range e.B24.Calls("batch") {
		if strings.Contains(fmt.Sprint(c.Params["cmd"]), "im.notify.personal.add") {
			n++
		}
	}
	return n
}

// Twelve customers left waiting are escalated to both users with access
// in one batch call, not twelve.
func TestNotifyBurstEscalatesInOneCall(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		bindLine(t, e, integ, ch, "1")
		seedUsers(t, e, integ, ch)
		const customers = 12
		for i := range customers {
			if _, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, fmt.Sprintf("7916600%04d", i), "Клиент", "Здравствуйте"); err != nil {
				t.Fatal(err)
			}
		}
		e.Eventually("every customer announced", func() bool { return len(notices(e, routing.NoticeNew)) == 2*customers })
		e.WaitIdle()
		before := notifyBatches(e)
		if before > customers {
			t.Fatalf("%d batch calls announced %d customers", before, customers)
		}
		fireTimer(t, e, integ, ch)
		if n := notifyBatches(e) - before; n != 1 {
			t.Fatalf("%d batch calls for the escalation of %d customers, want 1", n, customers)
		}
		if got := notifiedUsers(notices(e, routing.NoticeEscalation)); len(got) != 2*customers || got[0] != 5 || got[len(got)-1] != 7 {
			t.Fatalf("escalated to %v", got)
		}
	})
}
