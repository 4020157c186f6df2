package app_test

import (
	"bytes"
	"context"
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
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("to", customer)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+filename+`"`)
	h.Set("Content-Type", contentType)
	fw, _ := w.CreatePart(h)
	fw.Write(data)
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
		t.Fatalf("upload %s: %d", filename, resp.StatusCode)
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

// Files from customers and operators are served from the gateway's own
// origin, so none of them may run script there: active types are
// downloads, every answer is sandboxed, and HEAD answers like GET.
func TestMediaLinksNeverRunActiveContent(t *testing.T) {
	apptest.Each(t, apptest.Options{}, func(t *testing.T, e *apptest.Env) {
		ch := e.CreateWhatsApp()
		e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Пришлите файлы")
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
