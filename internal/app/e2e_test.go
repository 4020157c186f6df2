package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
	"github.com/switchboard/switchboard/internal/store"
)

const customer = "79161234567"

func findMsg(ms []map[string]any, pred func(m map[string]any) bool) map[string]any {
	for _, m := range ms {
		if pred(m) {
			return m
		}
	}
	return nil
}

func byExternal(id string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["external_id"] == id }
}

// graphSends is apptest.GraphSends, kept as a name for the many tests
// that call it.
func graphSends(sim *metasim.Server, path string) []metasim.Request {
	return apptest.GraphSends(sim, path)
}

func jsonEq(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("request body is not JSON: %s", got)
	}
	json.Unmarshal([]byte(want), &w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("Graph request body\n got: %s\nwant: %s", got, want)
	}
}

// The whole path: a signed inbound webhook is stored, an operator replies
// through the API quoting it, the simulator receives exactly the Graph
// request Meta expects, and Meta's status webhooks bring it to "read".
func TestWhatsAppConversation(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		ctx := context.Background()
		wamid, err := e.Sim.SendWhatsAppText(ctx, apptest.PhoneNumberID, customer, "Анна Смирнова", "Здравствуйте! Заказ 4512 ещё в пути?")
		if err != nil {
			t.Fatal(err)
		}
		var in map[string]any
		e.Eventually("inbound stored", func() bool { in = findMsg(e.Messages(ch), byExternal(wamid)); return in != nil })
		cust := in["customer"].(map[string]any)
		if in["direction"] != "in" || in["type"] != "text" || in["text"] != "Здравствуйте! Заказ 4512 ещё в пути?" ||
			cust["id"] != customer || cust["name"] != "Анна Смирнова" || cust["phone"] != "+"+customer || in["status"] != "received" {
			t.Fatalf("inbound stored as %v", in)
		}

		// The operator writes the number the way people do in Russia.
		st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{
			"to": "8 (916) 123-45-67", "text": "Добрый день! Заказ уже в Алматы.", "reply_to": in["id"]})
		if st != http.StatusAccepted || body["status"] != "queued" {
			t.Fatalf("send: %d %v", st, body)
		}
		outID := body["id"].(string)
		path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
		e.Eventually("graph send", func() bool { return len(graphSends(e.Sim, path)) == 1 })
		req := graphSends(e.Sim, path)[0]
		if got := req.Header.Get("Authorization"); got != "Bearer "+apptest.WAToken {
			t.Fatalf("Authorization = %q", got)
		}
		jsonEq(t, req.Body, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"79161234567","type":"text",
			"text":{"body":"Добрый день! Заказ уже в Алматы.","preview_url":false},"context":{"message_id":"`+wamid+`"}}`)

		var out map[string]any
		// Two status webhooks may be stored in either order; "read" can land
		// first, and the late "delivered" still records its time.
		e.Eventually("status read, delivery time known", func() bool {
			_, out = e.Do("GET", "/api/v1/messages/"+outID, nil)
			return out["status"] == "read" && out["delivered_at"] != nil
		})
		for _, k := range []string{"sent_at", "delivered_at", "read_at", "external_id"} {
			if out[k] == nil || out[k] == "" {
				t.Errorf("%s missing on the read message: %v", k, out)
			}
		}
		if q := out["quoted"].(map[string]any); q["message_id"] != in["id"] || q["external_id"] != wamid {
			t.Fatalf("quoted = %v", q)
		}
	})
}

func TestInstagramConversation(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateInstagram()
		igsid := "1133627508796544"
		e.Sim.SetInstagramProfile(igsid, metasim.InstagramProfile{Name: "Мария Иванова", Username: "maria.iv"})
		mid, err := e.Sim.SendInstagramText(context.Background(), apptest.IGUserID, igsid, "Привет! Есть размер M?")
		if err != nil {
			t.Fatal(err)
		}
		// Instagram webhooks carry no name: the profile is looked up.
		e.Eventually("customer named from the profile", func() bool {
			m := findMsg(e.Messages(ch), byExternal(mid))
			return m != nil && get(m, "customer", "name") == "Мария Иванова" && get(m, "customer", "username") == "maria.iv"
		})
		st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": igsid, "text": "Да, есть."})
		if st != http.StatusAccepted {
			t.Fatalf("send: %d %v", st, body)
		}
		outID := body["id"].(string)
		path := "/v25.0/" + apptest.IGUserID + "/messages"
		e.Eventually("graph send", func() bool { return len(graphSends(e.Sim, path)) == 1 })
		jsonEq(t, graphSends(e.Sim, path)[0].Body, `{"recipient":{"id":"`+igsid+`"},"messaging_type":"RESPONSE","message":{"text":"Да, есть."}}`)
		e.Eventually("read", func() bool {
			_, m := e.Do("GET", "/api/v1/messages/"+outID, nil)
			return m["status"] == "read"
		})
		// The echo of our own send is the same message, not a second one.
		e.Sim.Wait()
		if n := len(e.Messages(ch)); n != 2 {
			t.Fatalf("want inbound + our reply, got %d messages: %v", n, e.Messages(ch))
		}
	})
}

func TestInboundMediaIsDownloadedAndServedBySignedURL(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		img := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("pixel"), 1000)...)
		wamid, _, err := e.Sim.SendWhatsAppImage(context.Background(), apptest.PhoneNumberID, customer, "Анна", "image/png", img, "Вот фото")
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]any
		e.Eventually("media stored", func() bool {
			m := findMsg(e.Messages(ch), byExternal(wamid))
			if m == nil || m["media"] == nil {
				return false
			}
			md = m["media"].(map[string]any)
			return md["state"] == "stored"
		})
		sum := sha256.Sum256(img)
		if md["sha256"] != hex.EncodeToString(sum[:]) || md["size"].(float64) != float64(len(img)) || md["mime_type"] != "image/png" {
			t.Fatalf("media row: %v", md)
		}
		resp, err := http.Get(md["url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, img) || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("signed URL: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
		}
		// A tampered signature is refused.
		resp, _ = http.Get(strings.Replace(md["url"].(string), "sig=", "sig=0", 1))
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("tampered link answered %d", resp.StatusCode)
		}
	})
}

func TestOutboundUploadGoesThroughMediaUpload(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Пришлите счёт")
		e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })

		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		w.WriteField("to", "+7 916 123 45 67")
		w.WriteField("caption", "Счёт №17")
		fw, _ := w.CreateFormFile("file", "invoice.pdf")
		fw.Write([]byte("%PDF-1.4 invoice"))
		w.Close()
		req, _ := http.NewRequest("POST", e.URL+"/api/v1/channels/"+ch+"/messages", &buf)
		req.Header.Set("Authorization", "Bearer "+apptest.AdminToken)
		req.Header.Set("Content-Type", w.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload send: %d", resp.StatusCode)
		}
		sendPath := "/v25.0/" + apptest.PhoneNumberID + "/messages"
		e.Eventually("document sent", func() bool { return len(graphSends(e.Sim, sendPath)) == 1 })
		if ups := graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/media"); len(ups) != 1 {
			t.Fatalf("want one media upload, got %d", len(ups))
		}
		var sent struct {
			Type     string
			Document struct{ ID, Caption, Filename string }
		}
		json.Unmarshal(graphSends(e.Sim, sendPath)[0].Body, &sent)
		if sent.Type != "document" || sent.Document.ID == "" || sent.Document.Caption != "Счёт №17" || sent.Document.Filename != "invoice.pdf" {
			t.Fatalf("document send: %+v", sent)
		}
	})
}

func TestWindowRules(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": "+77071234567", "text": "Здравствуйте"})
		if st != http.StatusUnprocessableEntity || errCode(body) != "window_closed" {
			t.Fatalf("free text to a silent customer: %d %v", st, body)
		}
		st, body = e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": "+77071234567",
			"template": map[string]any{"name": "order_update", "language": "ru", "params": []string{"Анна", "4512"}}})
		if st != http.StatusAccepted {
			t.Fatalf("template: %d %v", st, body)
		}
		id := body["id"].(string)
		e.Eventually("template sent", func() bool {
			_, m := e.Do("GET", "/api/v1/messages/"+id, nil)
			return m["status"] == "read"
		})
		path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
		jsonEq(t, graphSends(e.Sim, path)[0].Body, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"77071234567","type":"template",
			"template":{"name":"order_update","language":{"code":"ru","policy":"deterministic"},
			"components":[{"type":"body","parameters":[{"type":"text","text":"Анна"},{"type":"text","text":"4512"}]}]}}`)

	})
}

// On Instagram a reply between 24 hours and 7 days after the customer's
// last message goes out with the HUMAN_AGENT tag; after 7 days nothing can.
func TestInstagramHumanAgentWindow(t *testing.T) {
	var offset atomic.Int64
	opts := apptest.Options{Sim: func(o *metasim.Options) {
		o.Clock = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}}
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		offset.Store(int64(-30 * time.Hour))
		ig := e.CreateInstagram()
		igsid := "1133627508796544"
		if _, err := e.Sim.SendInstagramText(context.Background(), apptest.IGUserID, igsid, "Привет"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("ig inbound", func() bool { return len(e.Messages(ig)) == 1 })
		offset.Store(0)
		st, body := e.Do("POST", "/api/v1/channels/"+ig+"/messages", map[string]any{"to": igsid, "text": "Ещё актуально?"})
		if st != http.StatusAccepted {
			t.Fatalf("ig human agent: %d %v", st, body)
		}
		id := body["id"].(string)
		igPath := "/v25.0/" + apptest.IGUserID + "/messages"
		e.Eventually("ig sent", func() bool { return len(graphSends(e.Sim, igPath)) == 1 })
		jsonEq(t, graphSends(e.Sim, igPath)[0].Body, `{"recipient":{"id":"`+igsid+`"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"Ещё актуально?"}}`)
		e.Eventually("accepted by Meta", func() bool {
			_, m := e.Do("GET", "/api/v1/messages/"+id, nil)
			return m["external_id"] != nil && m["external_id"] != ""
		})
		e.App.DB.Gorm.Model(&store.Contact{}).Where("external_id = ?", igsid).Update("last_inbound_at", store.Now().Add(-8*24*time.Hour))
		st, body = e.Do("POST", "/api/v1/channels/"+ig+"/messages", map[string]any{"to": igsid, "text": "Ау?"})
		if st != http.StatusUnprocessableEntity || errCode(body) != "window_closed" {
			t.Fatalf("ig after 7 days: %d %v", st, body)
		}
	})
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestExpiredTokenPutsChannelInError(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Привет")
		e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })
		e.Sim.ExpireToken(apptest.WAToken)
		_, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": customer, "text": "Ответ"})
		id := body["id"].(string)
		var m map[string]any
		e.Eventually("failed", func() bool { _, m = e.Do("GET", "/api/v1/messages/"+id, nil); return m["status"] == "failed" })
		if errv := m["error"].(map[string]any); errv["code"].(float64) != 190 {
			t.Fatalf("error = %v", errv)
		}
		_, chv := e.Do("GET", "/api/v1/channels/"+ch, nil)
		if chv["state"] != "error" || !strings.Contains(chv["state_reason"].(string), "190") {
			t.Fatalf("channel = %v", chv)
		}
		st, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": customer, "text": "Ещё"})
		if st != http.StatusConflict || errCode(body) != "channel_error" {
			t.Fatalf("send on broken channel: %d %v", st, body)
		}
		// A new token is the fix.
		e.Sim.AddWhatsAppNumber(apptest.PhoneNumberID, apptest.WabaID, "77012345678", "EAAG-new")
		st, chv = e.Do("PATCH", "/api/v1/channels/"+ch, map[string]any{"access_token": "EAAG-new"})
		if st != 200 || chv["state"] != "active" {
			t.Fatalf("patch token: %d %v", st, chv)
		}
	})
}

func TestThrottledSendsAreRetried(t *testing.T) {
	opts := apptest.Options{Sim: func(o *metasim.Options) { o.ThroughputPerSecond = 1 }}
	apptest.Each(t, opts, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		for _, c := range []string{"79161234567", "77071234567", "77015550199"} {
			e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, c, "", "Привет")
		}
		e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 3 })
		var ids []string
		for _, c := range []string{"79161234567", "77071234567", "77015550199"} {
			_, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": c, "text": "Ответ"})
			ids = append(ids, body["id"].(string))
		}
		for _, id := range ids {
			e.Eventually("sent despite 130429", func() bool {
				_, m := e.Do("GET", "/api/v1/messages/"+id, nil)
				return m["external_id"] != nil && m["external_id"] != ""
			})
		}
		// More calls than messages: some were refused with 130429 and retried.
		if n := len(graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages")); n <= len(ids) {
			t.Fatalf("%d send calls for %d messages: the simulator never throttled, the test proves nothing", n, len(ids))
		}
	})
}

// A message accepted while no worker runs is sent by the next start.
func TestRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	e := apptest.Start(t, apptest.Options{NoStart: true, DataDir: dir})
	ch := e.CreateWhatsApp()
	e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Привет")
	e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })
	_, body := e.Do("POST", "/api/v1/channels/"+ch+"/messages", map[string]any{"to": customer, "text": "Ответ"})
	id := body["id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.App.Close(ctx)

	e2 := apptest.Start(t, apptest.Options{DataDir: dir})
	e2.Eventually("sent after restart", func() bool {
		_, m := e2.Do("GET", "/api/v1/messages/"+id, nil)
		return m["external_id"] != nil && m["external_id"] != ""
	})
	if n := len(graphSends(e2.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages")); n != 1 {
		t.Fatalf("the restarted gateway made %d send calls, want 1", n)
	}
}
