package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/store"
)

// quickFile is a small PDF-looking document for quick replies.
var quickFile = []byte("%PDF-1.4\nprice list\n%%EOF")

// multipartBody builds a multipart form with fields and, when name is
// set, one file.
func multipartBody(t *testing.T, fields map[string]string, name, mimeType string, data []byte) (io.Reader, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if name != "" {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
		h.Set("Content-Type", mimeType)
		part, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &body, mw.FormDataContentType()
}

// apiMultipart sends a multipart request with a bearer token.
func apiMultipart(t *testing.T, e *apptest.Env, method, path, token string, fields map[string]string, name string, data []byte) (int, map[string]any) {
	t.Helper()
	body, ct := multipartBody(t, fields, name, "application/pdf", data)
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// visitorMultipart posts a multipart form as a signed-in browser.
func (v *visitor) multipart(path string, fields map[string]string, name, mimeType string, data []byte, fetch bool) (*http.Response, string) {
	v.t.Helper()
	body, ct := multipartBody(v.t, fields, name, mimeType, data)
	req, err := http.NewRequest("POST", v.e.URL+path, body)
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if fetch {
		req.Header.Set("X-Requested-With", "fetch")
	}
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func quickErr(b map[string]any) (code, field string) {
	e, _ := b["error"].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

// The quick replies API: validation with named errors, a file by
// multipart, and workspaces kept apart.
func TestQuickRepliesAPI(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		_, a := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Филиал А"})
		_, b := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Филиал Б"})
		wsA, wsB := a["id"].(string), b["id"].(string)
		_, ta := e.Do("POST", "/api/v1/workspaces/"+wsA+"/tokens", map[string]any{"name": "a"})
		_, tb := e.Do("POST", "/api/v1/workspaces/"+wsB+"/tokens", map[string]any{"name": "b"})
		tokA, tokB := ta["token"].(string), tb["token"].(string)

		for _, c := range []struct {
			body        map[string]any
			code, field string
		}{
			{map[string]any{"text": "Здравствуйте"}, "quick_title_required", "title"},
			{map[string]any{"title": strings.Repeat("я", 61), "text": "x"}, "quick_title_too_long", "title"},
			{map[string]any{"title": "Привет", "text": strings.Repeat("я", 4097)}, "quick_text_too_long", "text"},
			{map[string]any{"title": "Пусто", "text": "   "}, "quick_empty", "text"},
		} {
			st, r := e.Do("POST", "/api/v1/quick-replies", c.body, tokA)
			if code, field := quickErr(r); st != 422 || code != c.code || field != c.field {
				t.Errorf("%v: %d %s %s", c.body["title"], st, code, field)
			}
		}
		st, r := e.Do("POST", "/api/v1/quick-replies", map[string]any{"title": " Приветствие ", "text": "Здравствуйте! Чем помочь?"}, tokA)
		if st != 201 || r["title"] != "Приветствие" || r["workspace_id"] != wsA || r["file"] != nil {
			t.Fatalf("create: %d %v", st, r)
		}
		greet := r["id"].(string)
		st, r = apiMultipart(t, e, "POST", "/api/v1/quick-replies", tokA, map[string]string{"title": "Прайс", "text": "Наш прайс-лист"}, "price.pdf", quickFile)
		file, _ := r["file"].(map[string]any)
		if st != 201 || file == nil || file["filename"] != "price.pdf" || file["size"] != float64(len(quickFile)) {
			t.Fatalf("create with a file: %d %v", st, r)
		}
		price := r["id"].(string)

		// Another workspace sees none of them, and cannot touch them.
		if _, l := e.Do("GET", "/api/v1/quick-replies", nil, tokB); len(l["quick_replies"].([]any)) != 0 {
			t.Fatalf("B lists A's quick replies: %v", l)
		}
		if st, _ := e.Do("PUT", "/api/v1/quick-replies/"+greet, map[string]any{"title": "взлом", "text": "x"}, tokB); st != 404 {
			t.Errorf("B edits A's reply: %d", st)
		}
		if st, _ := e.Do("DELETE", "/api/v1/quick-replies/"+price, nil, tokB); st != 404 {
			t.Errorf("B deletes A's reply: %d", st)
		}
		_, l := e.Do("GET", "/api/v1/quick-replies", nil, tokA)
		if rs := l["quick_replies"].([]any); len(rs) != 2 || rs[0].(map[string]any)["title"] != "Прайс" || rs[1].(map[string]any)["title"] != "Приветствие" {
			t.Fatalf("A's list: %v", l)
		}
		// The operator's list holds both workspaces'.
		if st, _ := e.Do("POST", "/api/v1/quick-replies", map[string]any{"title": "Б", "text": "б", "workspace_id": wsB}); st != 201 {
			t.Fatalf("operator creates in B: %d", st)
		}
		if _, l := e.Do("GET", "/api/v1/quick-replies", nil, tokB); len(l["quick_replies"].([]any)) != 1 {
			t.Fatalf("B's list: %v", l)
		}

		// Update: the file stays unless dropped; without text nor file it
		// is refused.
		st, r = e.Do("PUT", "/api/v1/quick-replies/"+price, map[string]any{"title": "Прайс 2026", "text": ""}, tokA)
		if st != 200 || r["title"] != "Прайс 2026" || r["file"] == nil {
			t.Fatalf("update keeping the file: %d %v", st, r)
		}
		st, r = e.Do("PUT", "/api/v1/quick-replies/"+price, map[string]any{"title": "Прайс", "text": "", "drop_file": true}, tokA)
		if code, _ := quickErr(r); st != 422 || code != "quick_empty" {
			t.Fatalf("dropping the only content: %d %v", st, r)
		}
		if st, _ := e.Do("DELETE", "/api/v1/quick-replies/"+price, nil, tokA); st != 204 {
			t.Fatalf("delete: %d", st)
		}
		if st, _ := e.Do("DELETE", "/api/v1/quick-replies/"+price, nil, tokA); st != 404 {
			t.Fatalf("delete twice: %d", st)
		}
		if n := countRows(t, e, "quick_replies", "workspace_id = ?", wsA); n != 1 {
			t.Fatalf("A keeps %d quick replies", n)
		}
	})
}

var quickOptRe = regexp.MustCompile(`<option value="([^"]+)" data-text="([^"]*)" data-file="([^"]*)">([^<]*)</option>`)

// The Templates page manages quick replies (owners and admins), and the
// shared chat sends one with its file.
func TestCabinetQuickReplies(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		f := newChatFixture(t, e)
		// Managers see the page, not the forms, and may not post them.
		if st, page := f.mgr.get("/templates"); st != 200 || strings.Contains(page, `id="quick-add"`) || !strings.Contains(page, "Быстрые ответы") {
			t.Fatalf("manager's templates page: %d", st)
		}
		r, _ := f.mgr.multipart("/templates/quick-replies", map[string]string{"csrf": f.mgrTok, "title": "x", "text": "y"}, "", "", nil, false)
		if r.StatusCode != 403 {
			t.Fatalf("a manager adds a quick reply: %d", r.StatusCode)
		}
		// CSRF: without the token, nothing is stored.
		r, page := f.owner.multipart("/templates/quick-replies", map[string]string{"title": "Прайс", "text": "Наш прайс"}, "price.pdf", "application/pdf", quickFile, false)
		if r.StatusCode != 403 || !strings.Contains(page, "Request refused") {
			t.Fatalf("no CSRF token: %d", r.StatusCode)
		}
		if n := countRows(t, e, "quick_replies", "1 = 1"); n != 0 {
			t.Fatalf("a refused form stored %d", n)
		}
		// A bad form names the problem in the page's language.
		r, page = f.owner.multipart("/templates/quick-replies", map[string]string{"csrf": f.ownerTok, "title": "", "text": "Наш прайс"}, "", "", nil, false)
		if r.StatusCode != 422 || !strings.Contains(page, `data-field="title"`) || !strings.Contains(page, "Укажите название") || !strings.Contains(page, "Наш прайс") {
			t.Fatalf("no title: %d\n%s", r.StatusCode, page)
		}
		r, _ = f.owner.multipart("/templates/quick-replies", map[string]string{"csrf": f.ownerTok, "title": "Прайс", "text": "Наш прайс"}, "price.pdf", "application/pdf", quickFile, false)
		if r.StatusCode != 303 {
			t.Fatalf("add: %d", r.StatusCode)
		}
		_, page = f.owner.get("/templates?done=added")
		if !strings.Contains(page, "Быстрый ответ добавлен") || !strings.Contains(page, "price.pdf") {
			t.Fatalf("the page does not show the reply:\n%s", page)
		}
		var qr store.QuickReply
		if err := e.App.DB.Gorm.Where("title = ?", "Прайс").First(&qr).Error; err != nil {
			t.Fatal(err)
		}
		// Edit: the title changes, the file stays.
		r, _ = f.owner.multipart("/templates/quick-replies/"+qr.ID, map[string]string{"csrf": f.ownerTok, "title": "Прайс-лист", "text": "Наш прайс"}, "", "", nil, false)
		if r.StatusCode != 303 {
			t.Fatalf("edit: %d", r.StatusCode)
		}
		// Another workspace's quick reply, for the send below.
		_, other := e.Do("POST", "/api/v1/workspaces", map[string]any{"name": "Чужой"})
		st, foreign := apiMultipart(t, e, "POST", "/api/v1/quick-replies", apptest.AdminToken, map[string]string{"title": "Чужой", "text": "чужой текст", "workspace_id": other["id"].(string)}, "secret.pdf", quickFile)
		if st != 201 {
			t.Fatalf("foreign reply: %d %v", st, foreign)
		}

		// The chat offers it; sending it with an empty box sends its text
		// and its file.
		f.access(t, e, "send", "")
		_, page = f.mgr.get("/chat?d=" + f.anna)
		opts := quickOptRe.FindAllStringSubmatch(page, -1)
		if len(opts) != 1 || opts[0][1] != qr.ID || opts[0][2] != "Наш прайс" || opts[0][3] != "price.pdf" || !strings.Contains(opts[0][4], "Прайс-лист") {
			t.Fatalf("the chat's quick replies: %v\n%s", opts, page)
		}
		target := chatTargetRe.FindStringSubmatch(page)
		if target == nil {
			t.Fatal("no target")
		}
		tg := strings.ReplaceAll(target[1], "&#43;", "+")
		mgrTok := csrfOf(t, page)
		// Another workspace's reply is not found, and nothing is sent.
		before := len(e.Messages(f.ch))
		r, body := f.mgr.multipart("/chat/dialogs/"+f.anna+"/send", map[string]string{"csrf": mgrTok, "target": tg, "quick": foreign["id"].(string)}, "", "", nil, true)
		if r.StatusCode != 404 || !strings.Contains(body, "Этого быстрого ответа больше нет") {
			t.Fatalf("a foreign quick reply: %d %s", r.StatusCode, body)
		}
		if n := len(e.Messages(f.ch)); n != before {
			t.Fatalf("a foreign quick reply sent something: %d → %d", before, n)
		}
		r, body = f.mgr.multipart("/chat/dialogs/"+f.anna+"/send", map[string]string{"csrf": mgrTok, "target": tg, "quick": qr.ID, "text": ""}, "", "", nil, true)
		if r.StatusCode != 200 || !strings.Contains(body, `"ok":true`) {
			t.Fatalf("send the quick reply: %d %s", r.StatusCode, body)
		}
		var sent map[string]any
		for _, m := range e.Messages(f.ch) {
			if m["direction"] == "out" {
				sent = m
			}
		}
		md, _ := sent["media"].(map[string]any)
		if sent == nil || sent["type"] != "document" || md == nil || md["size"] != float64(len(quickFile)) {
			t.Fatalf("the quick reply went without its file: %v", sent)
		}
		// Deleting it removes it from the chat.
		if st, _ := f.owner.post("/templates/quick-replies/"+qr.ID+"/delete", url.Values{"csrf": {f.ownerTok}}); st != 303 {
			t.Fatalf("delete: %d", st)
		}
		if _, page := f.mgr.get("/chat?d=" + f.anna); strings.Contains(page, `id="chat-quick"`) {
			t.Fatal("a deleted quick reply is still offered")
		}
		// English.
		if st, _ := f.owner.post("/language", url.Values{"csrf": {f.ownerTok}, "lang": {"en"}, "back": {"/templates"}}); st != 303 {
			t.Fatal("language")
		}
		if _, page := f.owner.get("/templates"); !strings.Contains(page, "Quick replies") || !strings.Contains(page, "New quick reply") {
			t.Fatal("the page is not in English")
		}
	})
}

// A quick reply's file over the cap is refused by name, by the API and on
// the page, and nothing is kept.
func TestQuickReplyFileTooLarge(t *testing.T) {
	apptest.Each(t, apptest.Options{Config: func(c *config.Config) { c.UploadMaxBytes = 4096 }}, func(t *testing.T, e *apptest.Env) {
		big := bytes.Repeat([]byte("x"), 3*4096)
		st, r := apiMultipart(t, e, "POST", "/api/v1/quick-replies", apptest.AdminToken, map[string]string{"title": "Большой", "text": "x"}, "big.pdf", big)
		if code, field := quickErr(r); st != 413 || code != "quick_file_too_large" || field != "file" {
			t.Fatalf("API: %d %v", st, r)
		}
		ws := e.App.DefaultWorkspace.ID
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		v, tok := chatSignIn(t, e, "owner@example.com", ownerPW)
		resp, page := v.multipart("/templates/quick-replies", map[string]string{"csrf": tok, "title": "Большой", "text": "x"}, "big.pdf", "application/pdf", big, false)
		if resp.StatusCode != 413 || !strings.Contains(page, "Файл слишком большой") {
			t.Fatalf("page: %d\n%s", resp.StatusCode, page)
		}
		if n := countRows(t, e, "quick_replies", "1 = 1"); n != 0 {
			t.Fatalf("%d kept", n)
		}
	})
}

// A file WhatsApp would refuse (an HTML page) is refused when the quick
// reply is saved, by the API with the send's own code and by the page in
// its language naming the file and what would do; nothing is kept.
func TestQuickReplyFileRefused(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		html := []byte("<!doctype html><html><body>price</body></html>")
		body, ct := multipartBody(t, map[string]string{"title": "Страница", "text": "x"}, "page.html", "text/html", html)
		req, err := http.NewRequest("POST", e.URL+"/api/v1/quick-replies", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+apptest.AdminToken)
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r := map[string]any{}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code, field := quickErr(r); resp.StatusCode != 422 || code != "media_type_unsupported" || field != "file" {
			t.Fatalf("API: %d %v", resp.StatusCode, r)
		}
		ws := e.App.DefaultWorkspace.ID
		addUser(t, e, ws, "owner@example.com", "owner", ownerPW)
		v, tok := chatSignIn(t, e, "owner@example.com", ownerPW)
		for _, c := range []struct{ lang, want string }{
			{"ru", "Файл «page.html» не подойдёт: WhatsApp не принимает файлы этого типа. Подойдут картинки JPEG"},
			{"en", "The file “page.html” will not do: WhatsApp does not take files of this type. It takes JPEG"},
		} {
			u, _ := url.Parse(e.URL)
			v.jar.SetCookies(u, []*http.Cookie{{Name: "sb_lang", Value: c.lang, Path: "/"}})
			resp, page := v.multipart("/templates/quick-replies", map[string]string{"csrf": tok, "title": "Страница", "text": "x"}, "page.html", "text/html", html, false)
			if resp.StatusCode != 422 || !strings.Contains(page, c.want) || !strings.Contains(page, `data-code="media_type_unsupported"`) {
				t.Fatalf("page in %s: %d\n%s", c.lang, resp.StatusCode, page)
			}
		}
		// A PDF still does.
		resp, _ = v.multipart("/templates/quick-replies", map[string]string{"csrf": tok, "title": "Прайс", "text": "x"}, "price.pdf", "application/pdf", quickFile, false)
		if resp.StatusCode != 303 {
			t.Fatalf("a PDF: %d", resp.StatusCode)
		}
		if n := countRows(t, e, "quick_replies", "1 = 1"); n != 1 {
			t.Fatalf("%d kept", n)
		}
	})
}
