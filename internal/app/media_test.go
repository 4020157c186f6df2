package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
)

// uploadFile sends a file through the multipart API as an operator would
// and returns the signed link of the stored file.
func uploadFile(t *testing.T, e *apptest.Env, ch, filename, contentType string, data []byte) string {
	t.Helper()
	if st, body := postUpload(t, e, ch, filename, contentType, data); st != http.StatusAccepted {
		t.Fatalf("upload %s: %d %v", filename, st, body)
	}
	var url string
	e.Eventually("upload stored", func() bool {
		for _, m := range e.Messages(ch) {
			if md, ok := m["media"].(map[string]any); ok && md["filename"] == filename && md["url"] != nil {
				url = md["url"].(string)
				return true
			}
		}
		return false
	})
	return url
}

// postUpload posts a file to customer through the multipart API and
// returns the answer as it came.
func postUpload(t *testing.T, e *apptest.Env, ch, filename, contentType string, data []byte) (int, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField("to", customer); err != nil {
		t.Fatal(err)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+filename+`"`)
	h.Set("Content-Type", contentType)
	fw, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", e.URL+"/api/v1/channels/"+ch+"/messages", &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apptest.AdminToken)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("upload %s: answer is not JSON: %v", filename, err)
	}
	return resp.StatusCode, body
}

// Files from customers and operators are served from the gateway's own
// origin, so none of them may run script there: active types are
// downloads, every answer is sandboxed, and HEAD answers like GET.
func TestMediaLinksNeverRunActiveContent(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		// Instagram, because it checks no file types yet: WhatsApp now
		// refuses SVG and HTML uploads up front (see
		// TestUploadRefusesWhatWhatsAppRefuses), yet whatever a channel
		// stores must still be served safely.
		ch := e.CreateInstagram()
		if _, err := e.Sim.SendInstagramText(context.Background(), apptest.IGUserID, customer, "Пришлите файлы"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })

		svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>`)
		html := []byte(`<html><script>fetch('/api/v1/channels')</script></html>`)
		png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("p"), 64)...)
		cases := []struct {
			name, filename, contentType string
			data                        []byte
			inline                      bool
		}{
			{"svg image", "logo.svg", "image/svg+xml", svg, false},
			{"html page", "invoice.html", "text/html", html, false},
			{"html sent as octet-stream", "note.bin", "application/octet-stream", html, false},
			{"xml", "data.xml", "application/xml", []byte("<a/>"), false},
			{"pdf", "offer.pdf", "application/pdf", []byte("%PDF-1.4 /JS (app.alert(1))"), false},
			{"png image", "photo.png", "image/png", png, true},
		}
		for _, tc := range cases {
			url := uploadFile(t, e, ch, tc.filename, tc.contentType, tc.data)
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				req, _ := http.NewRequest(method, url, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s %s: status %d", tc.name, method, resp.StatusCode)
				}
				if method == http.MethodGet && !bytes.Equal(body, tc.data) {
					t.Fatalf("%s: body differs", tc.name)
				}
				if method == http.MethodHead && len(body) != 0 {
					t.Fatalf("%s: HEAD answered a body", tc.name)
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Fatalf("%s %s: no nosniff", tc.name, method)
				}
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") {
					t.Fatalf("%s %s: CSP %q", tc.name, method, csp)
				}
				cd := resp.Header.Get("Content-Disposition")
				if tc.inline != strings.HasPrefix(cd, "inline") || (!tc.inline && !strings.HasPrefix(cd, "attachment")) {
					t.Fatalf("%s %s: Content-Disposition %q", tc.name, method, cd)
				}
				if !strings.Contains(cd, tc.filename) {
					t.Fatalf("%s: file name lost: %q", tc.name, cd)
				}
			}
		}
	})
}

// An upload WhatsApp would take with 202 and fail later with "(#100)
// Invalid parameter" is refused when it is sent, with a code and a message
// naming what was received and what is accepted; nothing is stored,
// queued or sent. Files Meta takes still go.
func TestUploadRefusesWhatWhatsAppRefuses(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		if _, err := e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Пришлите файлы"); err != nil {
			t.Fatal(err)
		}
		e.Eventually("inbound", func() bool { return len(e.Messages(ch)) == 1 })
		e.WaitIdle()
		posts := func() int {
			n := 0
			for _, r := range e.Sim.Requests() {
				if r.Method == http.MethodPost && !r.IsReadMark() {
					n++
				}
			}
			return n
		}
		before := posts()

		png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("p"), 64)...)
		for _, c := range []struct {
			name, filename, contentType string
			data                        []byte
			code                        string
			mentions                    []string
		}{
			{"svg image", "logo.svg", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`),
				"media_type_unsupported", []string{"image/svg+xml", "image/jpeg, image/png"}},
			{"html page", "invoice.html", "text/html", []byte(`<html><body>Счёт</body></html>`),
				"media_type_unsupported", []string{"text/html", "application/pdf"}},
			{"png over 5 MB", "big.png", "image/png", append(png, bytes.Repeat([]byte("p"), 6<<20)...),
				"media_too_large", []string{"5242880"}},
		} {
			st, body := postUpload(t, e, ch, c.filename, c.contentType, c.data)
			if st != http.StatusUnprocessableEntity || errCode(body) != c.code {
				t.Fatalf("%s: %d %v, want 422 %s", c.name, st, body, c.code)
			}
			msg, _ := body["error"].(map[string]any)["message"].(string)
			for _, m := range c.mentions {
				if !strings.Contains(msg, m) {
					t.Errorf("%s: message %q does not name %s", c.name, msg, m)
				}
			}
		}
		e.WaitIdle()
		if n := len(e.Messages(ch)); n != 1 {
			t.Fatalf("refused uploads were stored: %d messages", n)
		}
		if n := posts(); n != before {
			t.Fatalf("refused uploads reached the simulator: %d requests", n-before)
		}

		uploadFile(t, e, ch, "photo.png", "image/png", png)
		uploadFile(t, e, ch, "offer.pdf", "application/pdf", []byte("%PDF-1.4 offer"))
		e.Eventually("png and pdf sent", func() bool {
			sent := 0
			for _, m := range e.Messages(ch) {
				// The simulator delivers and reads at once, so "sent" may
				// already be past.
				if st := m["status"]; m["direction"] == "out" && (st == "sent" || st == "delivered" || st == "read") {
					sent++
				}
			}
			return sent == 2
		})
	})
}
