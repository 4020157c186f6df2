package messaging

import (
	"bytes"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/fault"
)

// Uploads are checked against the provider's rules for the kind chosen
// (guessed or given); links and providers without rules are not.
func TestValidateUploadMediaRules(t *testing.T) {
	reg := channel.NewRegistry()
	reg.Register(&channel.Provider{Type: channel.WhatsApp, WebhookObject: "wa", Media: channel.MediaRules{
		channel.MsgImage:    {Types: []string{"image/jpeg", "image/png"}, MaxBytes: 100},
		channel.MsgVoice:    {Types: []string{"audio/ogg"}, MaxBytes: 100},
		channel.MsgDocument: {Types: []string{"application/pdf"}, MaxBytes: 100},
	}})
	reg.Register(&channel.Provider{Type: channel.Instagram, WebhookObject: "ig"})
	s := &Service{registry: reg}
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("p"), 8)...)

	for _, c := range []struct {
		name      string
		typ       channel.Type
		kind      string // media.type as the caller gave it
		upload    *Upload
		url       string
		code      string   // "" when accepted
		mentions  []string // in the message
		notInText string
	}{
		{name: "png guessed image", typ: channel.WhatsApp, upload: &Upload{"a.png", "image/png", png}},
		{name: "png sent as octet-stream is sniffed", typ: channel.WhatsApp, upload: &Upload{"a.bin", "application/octet-stream", png}},
		{name: "ogg voice with codecs", typ: channel.WhatsApp, upload: &Upload{"v.ogg", "audio/ogg; codecs=opus", []byte("OggS")}},
		{name: "svg as image", typ: channel.WhatsApp, upload: &Upload{"logo.svg", "image/svg+xml", []byte("<svg/>")},
			code: "media_type_unsupported", mentions: []string{`"image/svg+xml"`, "image/jpeg, image/png"}, notInText: "document"},
		{name: "html as document", typ: channel.WhatsApp, upload: &Upload{"x.html", "text/html", []byte("<html>")},
			code: "media_type_unsupported", mentions: []string{`"text/html"`, "application/pdf"}},
		{name: "html sent as octet-stream is sniffed", typ: channel.WhatsApp, upload: &Upload{"x.bin", "", []byte("<html><body>")},
			code: "media_type_unsupported", mentions: []string{`"text/html"`}},
		{name: "pdf forced to image suggests document", typ: channel.WhatsApp, kind: "image", upload: &Upload{"a.pdf", "application/pdf", []byte("%PDF")},
			code: "media_type_unsupported", mentions: []string{`"application/pdf"`, `send it as "document"`}},
		{name: "png forced to a kind without rules", typ: channel.WhatsApp, kind: "video", upload: &Upload{"a.png", "image/png", png},
			code: "media_type_unsupported", mentions: []string{"video"}},
		{name: "too large image", typ: channel.WhatsApp, upload: &Upload{"a.png", "image/png", append(png, bytes.Repeat([]byte("p"), 100)...)},
			code: "media_too_large", mentions: []string{"100 bytes"}},
		{name: "link is not checked", typ: channel.WhatsApp, url: "https://example.com/logo.svg"},
		{name: "instagram has no rules", typ: channel.Instagram, upload: &Upload{"logo.svg", "image/svg+xml", []byte("<svg/>")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := SendRequest{To: "1", Upload: c.upload, Media: &SendMedia{URL: c.url, Type: c.kind}}
			_, err := s.validate(c.typ, &req)
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			fe := fault.As(err)
			if fe == nil || fe.Kind != fault.Invalid || fe.Code != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
			for _, m := range c.mentions {
				if !strings.Contains(fe.Message, m) {
					t.Errorf("message %q does not mention %s", fe.Message, m)
				}
			}
			if c.notInText != "" && strings.Contains(fe.Message, c.notInText) {
				t.Errorf("message %q mentions %s", fe.Message, c.notInText)
			}
		})
	}
}
