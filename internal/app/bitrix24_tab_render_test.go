package app_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// The card tab is an HTML page: it shows a customer's file as a link to its
// signed URL under the file's name, and the quote as a quote, with none of
// the BB-code (and no U+200B) that Bitrix24's chats get.
func TestBitrix24CardTabShowsFilesAndQuotesAsHTML(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	_, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)
	ctx := context.Background()
	first, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна", "Когда [b]доставка[/b]?")
	if err != nil {
		t.Fatal(err)
	}
	e.Eventually("question", func() bool { return findMsg(e.Messages(ch), byExternal(first)) != nil })
	if _, err := e.Sim.SendWhatsAppReply(ctx, apptest.PhoneNumberID, customer, "Анна", first, "Уточняю"); err != nil {
		t.Fatal(err)
	}
	img := []byte("\x89PNG\r\n\x1a\nchek")
	wamid, _, err := e.Sim.SendWhatsAppImage(ctx, apptest.PhoneNumberID, customer, "Анна", "image/png", img, "Вот [url=https://evil.example]чек[/url]")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	e.Eventually("photo stored", func() bool {
		m := findMsg(e.Messages(ch), byExternal(wamid))
		md, _ = m["media"].(map[string]any)
		return md != nil && md["state"] == "stored"
	})
	id, _ := md["id"].(string)
	link, _ := md["url"].(string)
	if id == "" || link == "" {
		t.Fatalf("media row without id or url: %v", md)
	}
	contact := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "+7 916 123-45-67"}}})
	deal := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Заказ 4513", "CONTACT_ID": contact})

	st, page := frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, 27), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(deal)+`"}`)
	if st != http.StatusOK {
		t.Fatalf("card tab: %d\n%s", st, page)
	}
	// The link's signature carries an expiry, so its path is compared.
	path, _, _ := strings.Cut(link, "?")
	if !strings.Contains(page, `href="`+path+"?") || !strings.Contains(page, id+".png</a>") {
		t.Fatalf("the photo's name and link (%s) are not on the tab:\n%s", link, page)
	}
	if !strings.Contains(page, html.EscapeString("Вот [url=https://evil.example]чек[/url]")) ||
		!strings.Contains(page, "<blockquote>"+html.EscapeString("Когда [b]доставка[/b]?")+"</blockquote>") {
		t.Fatalf("caption or quote not shown as typed:\n%s", page)
	}
	if strings.Contains(page, "[QUOTE]") || strings.Contains(page, "\u200b") {
		t.Fatalf("Bitrix24 markup on an HTML page:\n%s", page)
	}
}

// The card tab is the shared chat view: it sends a file, and offers the
// channel's synced templates with a field per variable.
func TestBitrix24CardTabFileAndTemplatePicker(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	_, ws := e.InstallBitrix24()
	ch := createWAIn(t, e, ws)
	if st, body := e.Do("POST", "/api/v1/channels/"+ch+"/templates/refresh", nil); st != http.StatusOK {
		t.Fatalf("templates: %d %v", st, body)
	}
	e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Пришлите счёт")
	e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })
	contact := e.B24.AddContact(apptest.B24MemberID, map[string]any{"NAME": "Анна", "PHONE": []map[string]any{{"VALUE": "+7 916 123-45-67"}}})
	deal := e.B24.AddDeal(apptest.B24MemberID, map[string]any{"TITLE": "Заказ", "CONTACT_ID": contact})
	st, page := frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, 27), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(deal)+`"}`)
	if st != http.StatusOK || !strings.Contains(page, `enctype="multipart/form-data"`) || !strings.Contains(page, `name="tv|order_update|ru|2"`) {
		t.Fatalf("card tab: %d\n%s", st, page)
	}
	st, page = pagePostMultipart(t, e, "/bitrix24/tab/send", url.Values{"sess": {sessOf(t, page)}, "target": {ch + "|+79161234567"}},
		&cardFile{"invoice.pdf", "application/pdf", []byte("%PDF-1.4\nсчёт")})
	if st != http.StatusOK || !strings.Contains(page, "поставлено в очередь") {
		t.Fatalf("file from the tab: %d\n%s", st, page)
	}
	e.Eventually("document sent", func() bool {
		for _, r := range graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages") {
			if strings.Contains(string(r.Body), `"type":"document"`) && strings.Contains(string(r.Body), `"filename":"invoice.pdf"`) {
				return true
			}
		}
		return false
	})

	// A template with a variable left empty: the tab is shown again with
	// the template chosen and the typed variable kept.
	_, page = frame(t, e, "/bitrix24/tab", e.B24.UserToken(apptest.B24MemberID, 27), "CRM_DEAL_DETAIL_TAB", `{"ID":"`+strconv.Itoa(deal)+`"}`)
	pick := ch + "|order_update|ru"
	st, page = pagePostMultipart(t, e, "/bitrix24/tab/send", url.Values{"sess": {sessOf(t, page)}, "target": {ch + "|+79161234567"},
		"tpl": {pick}, "tv|order_update|ru|1": {"Анна"}}, nil)
	if st != http.StatusUnprocessableEntity || !strings.Contains(page, "Заполните все переменные") ||
		!strings.Contains(page, `value="`+pick+`" data-channel="`+ch+`" selected>`) || !strings.Contains(page, `name="tv|order_update|ru|1" value="Анна"`) {
		t.Fatalf("a refused template in the tab: %d\n%s", st, page)
	}
}
