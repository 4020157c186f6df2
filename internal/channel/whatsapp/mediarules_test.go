package whatsapp

import (
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
)

// The rules follow Meta's "Supported media types" table: what it lists
// goes, anything else (an SVG, an HTML page) is refused before Meta can
// take it and fail it later.
func TestMediaRules(t *testing.T) {
	const kb, mb = 1 << 10, 1 << 20
	for _, c := range []struct {
		kind channel.MsgType
		mime string
		size int64
		want string // "" when accepted
	}{
		{channel.MsgImage, "image/jpeg", 5 * mb, ""},
		{channel.MsgImage, "image/png", 1 * kb, ""},
		{channel.MsgImage, "image/png", 6 * mb, channel.MediaTooLarge},
		{channel.MsgImage, "image/svg+xml", 1 * kb, channel.MediaTypeUnsupported},
		{channel.MsgImage, "image/gif", 1 * kb, channel.MediaTypeUnsupported},
		{channel.MsgImage, "image/webp", 1 * kb, channel.MediaTypeUnsupported},
		{channel.MsgVideo, "video/mp4", 16 * mb, ""},
		{channel.MsgVideo, "video/3gpp", 1 * mb, ""},
		{channel.MsgVideo, "video/mp4", 16*mb + 1, channel.MediaTooLarge},
		{channel.MsgVideo, "video/quicktime", 1 * mb, channel.MediaTypeUnsupported},
		{channel.MsgAudio, "audio/aac", 1 * mb, ""},
		{channel.MsgAudio, "audio/amr", 1 * mb, ""},
		{channel.MsgAudio, "audio/mpeg", 1 * mb, ""},
		{channel.MsgAudio, "audio/mp4", 1 * mb, ""},
		{channel.MsgAudio, "audio/wav", 1 * mb, channel.MediaTypeUnsupported},
		{channel.MsgVoice, "audio/ogg; codecs=opus", 1 * mb, ""},
		{channel.MsgVoice, "audio/ogg", 17 * mb, channel.MediaTooLarge},
		{channel.MsgSticker, "image/webp", 500 * kb, ""},
		{channel.MsgSticker, "image/webp", 501 * kb, channel.MediaTooLarge},
		{channel.MsgSticker, "image/png", 1 * kb, channel.MediaTypeUnsupported},
		{channel.MsgDocument, "application/pdf", 100 * mb, ""},
		{channel.MsgDocument, "text/plain; charset=utf-8", 1 * kb, ""},
		{channel.MsgDocument, "application/msword", 1 * kb, ""},
		{channel.MsgDocument, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 1 * kb, ""},
		{channel.MsgDocument, "application/vnd.ms-excel", 1 * kb, ""},
		{channel.MsgDocument, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 1 * kb, ""},
		{channel.MsgDocument, "application/vnd.ms-powerpoint", 1 * kb, ""},
		{channel.MsgDocument, "application/vnd.openxmlformats-officedocument.presentationml.presentation", 1 * kb, ""},
		{channel.MsgDocument, "application/pdf", 100*mb + 1, channel.MediaTooLarge},
		{channel.MsgDocument, "text/html", 1 * kb, channel.MediaTypeUnsupported},
		{channel.MsgDocument, "application/xml", 1 * kb, channel.MediaTypeUnsupported},
		{channel.MsgDocument, "image/svg+xml", 1 * kb, channel.MediaTypeUnsupported},
	} {
		t.Run(string(c.kind)+" "+c.mime, func(t *testing.T) {
			got := ""
			if r := MediaRules.Check(c.kind, c.mime, c.size); r != nil {
				got = r.Reason
			}
			if got != c.want {
				t.Errorf("size %d: got %q, want %q", c.size, got, c.want)
			}
		})
	}
}

// Every kind the sender can put on the wire has rules, so no upload of a
// known kind slips past the check.
func TestMediaRulesCoverEveryKind(t *testing.T) {
	p := NewProvider(nil)
	for _, k := range []channel.MsgType{channel.MsgImage, channel.MsgVideo, channel.MsgAudio, channel.MsgVoice, channel.MsgDocument, channel.MsgSticker} {
		if r, ok := p.Media[k]; !ok || len(r.Types) == 0 || r.MaxBytes == 0 {
			t.Errorf("%s: no rules in the provider entry", k)
		}
	}
}
