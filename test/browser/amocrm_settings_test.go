// Package browser holds browser tests of pages as people use them where
// they live: headless Chromium (Debian's chromium package) driven by
// chromedp, against a gateway and simulators started in the test.
package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/amosim"
	"github.com/switchboard/switchboard/test/browsertest"
)

// installAccount installs the widget of the simulator's example account
// as amoCRM does and waits for the queued exchange; it returns the
// integration's id.
func installAccount(t *testing.T, e *apptest.Env) string {
	t.Helper()
	if err := e.Amo.AddAccount(amosim.ExampleAccount()); err != nil {
		t.Fatal(err)
	}
	q, err := e.Amo.InstallRedirect(amosim.ExampleAccount().ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client.Get(e.URL + "/amocrm/oauth/callback?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var id string
	e.Eventually("the account installed", func() bool {
		_, list := e.Do("GET", "/api/v1/integrations", nil)
		for _, v := range list["data"].([]any) {
			if m := v.(map[string]any); m["type"] == "amocrm" && m["state"] == "active" {
				id = m["id"].(string)
			}
		}
		return id != ""
	})
	e.WaitIdle()
	return id
}

// frameInto opens parent (a page of the account's own origin, as amoCRM's
// advanced_settings page is) and puts the settings iframe into it, as
// narrow as amoCRM's work area can be.
func frameInto(t *testing.T, ctx context.Context, parent, src string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(parent)); err != nil {
		t.Fatal(err)
	}
	js := `(function(){document.documentElement.innerHTML='<body style="margin:0;background:#eef"><div style="padding:8px;font:14px sans-serif">amoCRM · advanced_settings</div>` +
		`<iframe id="sb" style="width:440px;height:2600px;border:0"></iframe></body>';document.getElementById('sb').src=` + strconv.Quote(src) + `;return true})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil {
		t.Fatal(err)
	}
}

// binding reads the channel's binding from the admin API.
func binding(t *testing.T, e *apptest.Env, id, ch string) map[string]any {
	t.Helper()
	_, in := e.Do("GET", "/api/v1/integrations/"+id, nil)
	for _, b := range in["bindings"].([]any) {
		if m := b.(map[string]any); m["channel_id"] == ch {
			return m
		}
	}
	return nil
}

// An account admin opens the widget's settings page inside the account's
// page, switches a channel to round robin with weights, saves, reloads and
// finds it kept; leaving with a change asks first ("back" keeps the change,
// "discard" leaves without it, "save" keeps it); the language switches.
func TestAmoCRMSettingsInBrowser(t *testing.T) {
	ctx := browsertest.New(t, browsertest.Size(900, 1000), browsertest.Timeout(60*time.Second))
	e := apptest.Start(t, apptest.Options{AmoCRM: true})
	id := installAccount(t, e)
	ch := e.CreateWhatsApp()
	if st, b := e.Do("PUT", "/api/v1/integrations/"+id+"/channels/"+ch, map[string]any{"mode": "crm"}); st != 200 {
		t.Fatalf("bind: %d %v", st, b)
	}

	frameInto(t, ctx, e.AmoURL+"/", e.URL+"/amocrm/settings?"+url.Values{"ticket": {widgetTicket(t, e, amosim.ExampleAccount().ID, 9000001, "settings")}, "lang": {"ru"}}.Encode())
	browsertest.WaitFrame(t, ctx, `!!document.querySelector('#settings-all') && document.documentElement.lang === 'ru'`)
	if !browsertest.FrameEval[bool](t, ctx, `document.body.innerText.includes('Анна Админова') && document.body.innerText.includes('Продажи → Первичный контакт')`) {
		t.Error("the page lacks the account's users or pipelines")
	}
	if browsertest.FrameEval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("the page is wider than the narrow iframe")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amocrm-settings-ru.png"))
	// Access never configured: the matrix shows it open, not "none".
	if got := browsertest.FrameEval[string](t, ctx, `(function(s){return s.options[s.selectedIndex].text})(document.querySelector('select[name="lvl:9000002:`+ch+`"]'))`); got != "открыт (чтение и отправка)" {
		t.Errorf("an open matrix cell shows %q", got)
	}

	// A refused save: shown with the refusal, the address bar at the
	// page's own address, so a reload asks for the page, not the form.
	browsertest.FrameChoose(t, ctx, "#notify", "5")
	browsertest.FrameClick(t, ctx, "#save")
	browsertest.WaitFrame(t, ctx, `!!document.querySelector('#problem')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "amocrm-settings-refused.png"))
	if p := browsertest.FrameEval[string](t, ctx, `location.pathname`); p != "/amocrm/settings" {
		t.Errorf("after a refused save the address is %s", p)
	}
	browsertest.FrameEval[bool](t, ctx, `(function(){location.reload();return true})()`)
	time.Sleep(300 * time.Millisecond)
	browsertest.WaitFrame(t, ctx, `!!document.querySelector('#settings-all') && !document.querySelector('#problem')`)
	if v := browsertest.FrameEval[string](t, ctx, `document.querySelector('#notify').value`); v != "300" {
		t.Errorf("after reloading a refused save the alert is %q", v)
	}

	// Round robin, Анна 3 and Иван 1, saved.
	browsertest.FrameChoose(t, ctx, `select[name="strategy:`+ch+`"]`, "round_robin")
	browsertest.FrameClick(t, ctx, `input[name="owner:`+ch+`:9000001"]`)
	browsertest.FrameChoose(t, ctx, `input[name="weight:`+ch+`:9000001"]`, "3")
	browsertest.FrameClick(t, ctx, `input[name="owner:`+ch+`:9000002"]`)
	browsertest.FrameClick(t, ctx, "#save")
	browsertest.WaitFrame(t, ctx, `!!document.querySelector('#notice')`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "amocrm-settings-saved.png"))
	browsertest.FrameEval[bool](t, ctx, `(function(){location.reload();return true})()`)
	time.Sleep(300 * time.Millisecond)
	browsertest.WaitFrame(t, ctx, `!!document.querySelector('#settings-all') && !document.querySelector('#notice-gone')`)
	got := browsertest.FrameEval[string](t, ctx, `[document.querySelector('select[name="strategy:`+ch+`"]').value,
		document.querySelector('input[name="owner:`+ch+`:9000001"]').checked, document.querySelector('input[name="weight:`+ch+`:9000001"]').value,
		document.querySelector('input[name="owner:`+ch+`:9000002"]').checked, document.querySelector('input[name="weight:`+ch+`:9000002"]').value].join(' ')`)
	if got != "round_robin true 3 true 1" {
		t.Errorf("after reload: %s", got)
	}
	if b := binding(t, e, id, ch); b["owner"] == nil || b["owner"].(map[string]any)["strategy"] != "round_robin" {
		t.Errorf("the API's binding: %v", b)
	}

	// A change, then the language switch: the page asks first.
	browsertest.FrameChoose(t, ctx, `input[name="name:`+ch+`"]`, "Продажи WA")
	browsertest.FrameClick(t, ctx, "#lang-en")
	browsertest.WaitFrame(t, ctx, `document.querySelector('#leave-dialog').open`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "amocrm-settings-leave.png"))
	browsertest.FrameClick(t, ctx, "#leave-back")
	browsertest.WaitFrame(t, ctx, `!document.querySelector('#leave-dialog').open`)
	if lang, name := browsertest.FrameEval[string](t, ctx, `document.documentElement.lang`), browsertest.FrameEval[string](t, ctx, `document.querySelector('input[name="name:`+ch+`"]').value`); lang != "ru" || name != "Продажи WA" {
		t.Errorf("back: the page is %s with the name %q", lang, name)
	}
	// Discard: English, without the change.
	browsertest.FrameClick(t, ctx, "#lang-en")
	browsertest.WaitFrame(t, ctx, `document.querySelector('#leave-dialog').open`)
	browsertest.FrameClick(t, ctx, "#leave-discard")
	browsertest.WaitFrame(t, ctx, `document.documentElement.lang === 'en' && !!document.querySelector('#settings-all')`)
	if name := browsertest.FrameEval[string](t, ctx, `document.querySelector('input[name="name:`+ch+`"]').value`); name != "" {
		t.Errorf("discarded name is %q", name)
	}
	if !browsertest.FrameEval[bool](t, ctx, `document.body.innerText.includes('Save settings') && document.body.innerText.includes('Refresh data from the CRM')`) {
		t.Error("the page is not in English")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amocrm-settings-en.png"))
	// Save from the dialog: back in Russian, with the change.
	browsertest.FrameChoose(t, ctx, `input[name="name:`+ch+`"]`, "WA Sales")
	browsertest.FrameClick(t, ctx, "#lang-ru")
	browsertest.WaitFrame(t, ctx, `document.querySelector('#leave-dialog').open`)
	browsertest.FrameClick(t, ctx, "#leave-save")
	browsertest.WaitFrame(t, ctx, `document.documentElement.lang === 'ru' && !!document.querySelector('#notice')`)
	if b := binding(t, e, id, ch); b["name"] != "WA Sales" {
		t.Errorf("saved from the dialog: %v", b)
	}

	// Delete asks for a confirmation; cancelling keeps everything.
	browsertest.FrameClick(t, ctx, "#delete")
	browsertest.WaitFrame(t, ctx, `document.querySelector('#delete-dialog').open`)
	browsertest.Do(t, ctx, browsertest.Shot(t, "amocrm-settings-delete.png"))
	browsertest.FrameClick(t, ctx, "#delete-cancel")
	browsertest.WaitFrame(t, ctx, `!document.querySelector('#delete-dialog').open`)
	if b := binding(t, e, id, ch); b == nil {
		t.Error("cancelling the delete unbound the channel")
	}

	// A manager of the account reads the settings and changes nothing.
	frameInto(t, ctx, e.AmoURL+"/", e.URL+"/amocrm/settings?"+url.Values{"ticket": {widgetTicket(t, e, amosim.ExampleAccount().ID, 9000002, "settings")}, "lang": {"en"}}.Encode())
	browsertest.WaitFrame(t, ctx, `!!document.querySelector('#readonly')`)
	if !browsertest.FrameEval[bool](t, ctx, `document.querySelector('fieldset.whole').disabled && !document.querySelector('#save')`) {
		t.Error("the manager's page can be changed")
	}
	browsertest.Do(t, ctx, browsertest.Shot(t, "amocrm-settings-manager-en.png"))

	// Another site may not frame the page.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<!doctype html><title>x</title>") }))
	t.Cleanup(other.Close)
	frameInto(t, ctx, other.URL+"/", e.URL+"/amocrm/settings?"+url.Values{"ticket": {widgetTicket(t, e, amosim.ExampleAccount().ID, 9000001, "settings")}}.Encode())
	time.Sleep(time.Second)
	if ok, err := browsertest.InFrame[bool](ctx, `!!document.querySelector('#settings-all')`); err == nil && ok {
		t.Error("a page of another site framed the settings")
	}
}
