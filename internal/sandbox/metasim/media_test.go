package metasim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"
)

func (e *simEnv) upload(t *testing.T, product, mimeType string, data []byte) (int, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if product != "" {
		mw.WriteField("messaging_product", product)
	}
	mw.WriteField("type", mimeType)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="file"; filename="receipt.jpg"`)
	h.Set("Content-Type", mimeType)
	fw, _ := mw.CreatePart(h)
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v25.0/"+testPhoneID+"/media", &buf)
	req.Header.Set("Authorization", "Bearer "+testWAToken)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func (e *simEnv) download(t *testing.T, rawURL, token string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func (e *simEnv) mediaURL(t *testing.T, id string) mediaURLResponse {
	t.Helper()
	status, body := e.call(t, http.MethodGet, "/v25.0/"+id, testWAToken, nil)
	if status != 200 {
		t.Fatalf("GET media %s: %d %s", id, status, body)
	}
	assertSameShape(t, body, "wa-media-url-response.json")
	var m mediaURLResponse
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMediaUploadGetDownload(t *testing.T) {
	env := newSim(t, Options{})
	data := []byte("\xff\xd8\xff\xe0 fake jpeg bytes")
	status, body := env.upload(t, "whatsapp", "image/jpeg", data)
	if status != 200 {
		t.Fatalf("upload: %d %s", status, body)
	}
	assertSameShape(t, body, "wa-media-upload-response.json")
	var up struct{ ID string }
	json.Unmarshal(body, &up)

	m := env.mediaURL(t, up.ID)
	sum := sha256.Sum256(data)
	if m.ID != up.ID || m.MimeType != "image/jpeg" || m.FileSize != len(data) || m.SHA256 != hex.EncodeToString(sum[:]) || m.MessagingProduct != "whatsapp" {
		t.Errorf("media url response %+v", m)
	}
	if !strings.HasPrefix(m.URL, env.srv.URL+"/lookaside/whatsapp_business/attachments/?") {
		t.Errorf("url %q does not point back to the simulator", m.URL)
	}
	u, _ := url.Parse(m.URL)
	if u.Query().Get("mid") != up.ID || u.Query().Get("ext") == "" || u.Query().Get("hash") == "" {
		t.Errorf("url query %v", u.Query())
	}

	t.Run("with bearer", func(t *testing.T) {
		status, ct, got := env.download(t, m.URL, testWAToken)
		if status != 200 || ct != "image/jpeg" || !bytes.Equal(got, data) {
			t.Errorf("download: %d %s %q", status, ct, got)
		}
	})
	t.Run("without bearer", func(t *testing.T) {
		status, ct, got := env.download(t, m.URL, "")
		if status != http.StatusUnauthorized || !strings.HasPrefix(ct, "text/html") || bytes.Equal(got, data) {
			t.Errorf("download without token: %d %s", status, ct)
		}
	})
	t.Run("token in query is not enough", func(t *testing.T) {
		status, _, _ := env.download(t, m.URL+"&access_token="+testWAToken, "")
		if status != http.StatusUnauthorized {
			t.Errorf("status %d", status)
		}
	})
	t.Run("tampered expiry", func(t *testing.T) {
		q := u.Query()
		q.Set("ext", "9999999999")
		status, _, _ := env.download(t, env.srv.URL+u.Path+"?"+q.Encode(), testWAToken)
		if status != http.StatusNotFound {
			t.Errorf("status %d", status)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		env := newSim(t, Options{})
		_, body := env.upload(t, "whatsapp", "image/jpeg", data)
		var up struct{ ID string }
		json.Unmarshal(body, &up)
		m := env.mediaURL(t, up.ID)
		env.sim.ExpireToken(testWAToken)
		if status, _, _ := env.download(t, m.URL, testWAToken); status != http.StatusUnauthorized {
			t.Errorf("status %d", status)
		}
	})

	env.clock.Advance(4*time.Minute + 59*time.Second)
	if status, _, _ := env.download(t, m.URL, testWAToken); status != 200 {
		t.Errorf("just before 5 min: %d", status)
	}
	env.clock.Advance(time.Second)
	status, ct, _ := env.download(t, m.URL, testWAToken)
	if status != http.StatusNotFound || !strings.HasPrefix(ct, "text/html") {
		t.Errorf("after 5 min: %d %s", status, ct)
	}
	fresh := env.mediaURL(t, up.ID)
	if status, _, got := env.download(t, fresh.URL, testWAToken); status != 200 || !bytes.Equal(got, data) {
		t.Errorf("fresh URL: %d", status)
	}

	// The uploaded id can be sent, then deleted.
	env.sim.SendWhatsAppText(context.Background(), testPhoneID, testCustomer, "A", "hi")
	img := map[string]any{"messaging_product": "whatsapp", "to": testCustomer, "type": "image", "image": map[string]any{"id": up.ID, "caption": "чек"}}
	if status, body := env.sendWA(t, img); status != 200 {
		t.Fatalf("send by media id: %d %s", status, body)
	}
	if status, body := env.call(t, http.MethodDelete, "/v25.0/"+up.ID, testWAToken, nil); status != 200 || string(body) != `{"success":true}` {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, body := env.call(t, http.MethodGet, "/v25.0/"+up.ID, testWAToken, nil); status != 400 || decodeError(t, body).Error.Subcode != 33 {
		t.Errorf("GET deleted media: %d %s", status, body)
	}
	if status, _, _ := env.download(t, fresh.URL, testWAToken); status != http.StatusNotFound {
		t.Errorf("download deleted media: %d", status)
	}
	if status, _ := env.sendWA(t, img); status != 400 {
		t.Errorf("send deleted media: %d", status)
	}
}

func TestMediaAccessNeedsOwningAccount(t *testing.T) {
	env := newSim(t, Options{})
	env.sim.AddWhatsAppNumber("300000000000003", "999999999999999", "+77010000003", "other-token")
	_, body := env.upload(t, "whatsapp", "image/png", []byte("png"))
	var up struct{ ID string }
	json.Unmarshal(body, &up)
	status, body := env.call(t, http.MethodGet, "/v25.0/"+up.ID, "other-token", nil)
	if status != 400 || decodeError(t, body).Error.Code != 100 {
		t.Errorf("foreign token: %d %s", status, body)
	}
}

func TestMediaUploadErrors(t *testing.T) {
	tests := []struct {
		name    string
		product string
		mime    string
		size    int
		details string
	}{
		{"no messaging_product", "", "image/jpeg", 10, "messaging_product"},
		{"unsupported type", "whatsapp", "image/bmp", 10, "supported MIME type"},
		{"image over 5 MB", "whatsapp", "image/jpeg", 5<<20 + 1, "limit"},
		{"sticker over 500 KB", "whatsapp", "image/webp", 500<<10 + 1, "limit"},
	}
	env := newSim(t, Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := env.upload(t, tc.product, tc.mime, make([]byte, tc.size))
			if status != 400 {
				t.Fatalf("status %d: %s", status, body)
			}
			e := decodeError(t, body)
			if e.Error.Code != 100 || !strings.Contains(e.Error.ErrorData.Details, tc.details) {
				t.Errorf("error %+v", e.Error)
			}
		})
	}
}

func TestSendWhatsAppImageRegistersMedia(t *testing.T) {
	env := newSim(t, Options{})
	data := []byte("\x89PNG fake")
	wamid, mediaID, err := env.sim.SendWhatsAppImage(context.Background(), testPhoneID, testCustomer, "Анна Смирнова", "image/jpeg", data, "Вот фото чека")
	if err != nil {
		t.Fatal(err)
	}
	got := env.gw.received()
	if len(got) != 1 {
		t.Fatalf("%d deliveries", len(got))
	}
	assertSameShape(t, got[0], "wa-inbound-image.json")
	msg := decodeWAHook(t, got[0]).Entry[0].Changes[0].Value.Messages[0]
	sum := sha256.Sum256(data)
	if msg.ID != wamid || msg.Type != "image" || msg.Image.ID != mediaID || msg.Image.SHA256 != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("message %+v", msg)
	}
	m := env.mediaURL(t, mediaID)
	if status, _, b := env.download(t, m.URL, testWAToken); status != 200 || !bytes.Equal(b, data) {
		t.Errorf("download: %d", status)
	}
}
