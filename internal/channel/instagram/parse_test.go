package instagram

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/channel"
)

const (
	account = "17841405822304914"
	igsid   = "1133627508796544"
)

// mid builds the fixtures' message ids, which differ only near the end.
func mid(tail string) string {
	return "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk0MDk2NjE5Mjc0MTAyMzo3MTk4NzY1NDM" + tail + "ZDZD"
}

var (
	customer = channel.Customer{ExternalID: igsid}
	t0       = time.UnixMilli(1767600000123).UTC()
)

func inbound(m channel.Inbound) *channel.Batch {
	return &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.Instagram, AccountID: account, Messages: []channel.Inbound{m}}}}
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file string
		want *channel.Batch
	}{
		{"ig-inbound-text.json", inbound(channel.Inbound{
			ExternalID: mid("yMQ"), Customer: customer, Type: channel.MsgText, Text: "Привет! Есть размер M?", Timestamp: t0,
		})},
		{"ig-inbound-image.json", inbound(channel.Inbound{
			ExternalID: mid("yMg"), Customer: customer, Type: channel.MsgImage, Timestamp: t0,
			Media: &channel.Media{URL: "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18012345678901234&signature=FakeSig_Abc123"},
		})},
		{"ig-inbound-quoted-reply.json", inbound(channel.Inbound{
			ExternalID: mid("yMw"), Customer: customer, Type: channel.MsgText, Text: "Да, этот вариант", Timestamp: t0,
			QuotedExternalID: mid("wMA"),
		})},
		{"ig-inbound-quick-reply.json", inbound(channel.Inbound{
			ExternalID: mid("yNA"), Customer: customer, Type: channel.MsgText, Text: "Доставка", Timestamp: t0,
			Extra: map[string]any{"quick_reply_payload": "TOPIC_DELIVERY"},
		})},
		{"ig-echo.json", inbound(channel.Inbound{
			ExternalID: mid("yNQ"), Customer: customer, Type: channel.MsgText, Text: "Да, размер M есть в наличии.",
			Echo: true, Timestamp: time.UnixMilli(1767600090123).UTC(),
		})},
		{"ig-reaction.json", inbound(channel.Inbound{
			ExternalID: "reaction:" + mid("yNQ") + ":" + igsid + ":react:1767600120123",
			Customer:   customer, Type: channel.MsgReaction, Timestamp: time.UnixMilli(1767600120123).UTC(),
			Reaction: &channel.Reaction{TargetExternalID: mid("yNQ"), Emoji: "❤️"},
			Extra:    map[string]any{"action": "react", "reaction": "love"},
		})},
		{"ig-unreaction.json", inbound(channel.Inbound{
			ExternalID: "reaction:" + mid("yNQ") + ":" + igsid + ":unreact:1767600130123",
			Customer:   customer, Type: channel.MsgReaction, Timestamp: time.UnixMilli(1767600130123).UTC(),
			Reaction: &channel.Reaction{TargetExternalID: mid("yNQ")},
			Extra:    map[string]any{"action": "unreact"},
		})},
		{"ig-story-mention.json", inbound(channel.Inbound{
			ExternalID: mid("yNg"), Customer: customer, Type: channel.MsgStoryMention, Timestamp: t0,
			Media: &channel.Media{URL: "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18098765432109876&signature=FakeSig_Story1"},
		})},
		{"ig-story-reply.json", inbound(channel.Inbound{
			ExternalID: mid("yNw"), Customer: customer, Type: channel.MsgText, Text: "Где купить такую куртку?", Timestamp: t0,
			Extra: map[string]any{"story_reply": true, "story": map[string]any{
				"url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18055544433322211&signature=FakeSig_Story2",
				"id":  "18055544433322211",
			}},
		})},
		{"ig-read.json", &channel.Batch{Envelopes: []channel.Envelope{{
			ChannelType: channel.Instagram, AccountID: account,
			Statuses: []channel.StatusUpdate{{ExternalID: mid("yNQ"), Status: channel.StatusRead, Timestamp: time.UnixMilli(1767600095123).UTC(), RecipientID: igsid}},
		}}}},
		{"ig-postback.json", inbound(channel.Inbound{
			ExternalID: mid("yOA"), Customer: customer, Type: channel.MsgPostback, Text: "Узнать статус заказа", Timestamp: t0,
			Extra: map[string]any{"payload": "ORDER_STATUS"},
		})},
		{"ig-deleted.json", inbound(channel.Inbound{
			ExternalID: mid("yMQ"), Customer: customer, Type: channel.MsgSystem, Deleted: true, Timestamp: time.UnixMilli(1767600200123).UTC(),
		})},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parser{}.Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			assertBatch(t, got, tt.want)
		})
	}
	files, _ := os.ReadDir("testdata")
	for _, f := range files {
		n := f.Name()
		if strings.HasPrefix(n, "ig-") && !strings.Contains(n, "-send-") && !strings.Contains(n, "-error-") && !strings.Contains(n, "-response") && !covered[n] {
			t.Errorf("webhook fixture %s has no test case", n)
		}
	}
}

func assertBatch(t *testing.T, got, want *channel.Batch) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("batch mismatch\n got: %s\nwant: %s", g, w)
	}
}

func TestParseEdgeCases(t *testing.T) {
	wrap := func(events ...string) []byte {
		return []byte(`{"object":"instagram","entry":[{"time":1767600000523,"id":"` + account + `","messaging":[` + strings.Join(events, ",") + `]}]}`)
	}
	ev := func(body string) string {
		return `{"sender":{"id":"` + igsid + `"},"recipient":{"id":"` + account + `"},"timestamp":1767600000123,` + body + `}`
	}
	tests := []struct {
		name string
		body []byte
		want *channel.Batch
	}{
		{
			name: "several attachments: the first is the media, all kept",
			body: wrap(ev(`"message":{"mid":"m1","attachments":[{"type":"video","payload":{"url":"https://cdn/v.mp4"}},{"type":"image","payload":{"url":"https://cdn/i.jpg"}}]}`)),
			want: inbound(channel.Inbound{ExternalID: "m1", Customer: customer, Type: channel.MsgVideo, Timestamp: t0,
				Media: &channel.Media{URL: "https://cdn/v.mp4"},
				Extra: map[string]any{"attachments": []any{
					map[string]any{"type": "video", "payload": map[string]any{"url": "https://cdn/v.mp4"}},
					map[string]any{"type": "image", "payload": map[string]any{"url": "https://cdn/i.jpg"}},
				}}}),
		},
		{
			name: "audio and file",
			body: wrap(ev(`"message":{"mid":"m2","attachments":[{"type":"audio","payload":{"url":"https://cdn/a.mp4"}}]}`),
				ev(`"message":{"mid":"m3","attachments":[{"type":"file","payload":{"url":"https://cdn/f.pdf"}}]}`)),
			want: &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.Instagram, AccountID: account, Messages: []channel.Inbound{
				{ExternalID: "m2", Customer: customer, Type: channel.MsgAudio, Timestamp: t0, Media: &channel.Media{URL: "https://cdn/a.mp4"}},
				{ExternalID: "m3", Customer: customer, Type: channel.MsgDocument, Timestamp: t0, Media: &channel.Media{URL: "https://cdn/f.pdf"}},
			}}}},
		},
		{
			name: "shared reel",
			body: wrap(ev(`"message":{"mid":"m4","attachments":[{"type":"ig_reel","payload":{"url":"https://cdn/r","title":"Reel","reel_video_id":123}}]}`)),
			want: inbound(channel.Inbound{ExternalID: "m4", Customer: customer, Type: channel.MsgShare, Timestamp: t0,
				Extra: map[string]any{"share_type": "ig_reel", "url": "https://cdn/r", "title": "Reel", "reel_video_id": "123"}}),
		},
		{
			name: "like heart",
			body: wrap(ev(`"message":{"mid":"m5","attachments":[{"type":"like_heart"}]}`)),
			want: inbound(channel.Inbound{ExternalID: "m5", Customer: customer, Type: channel.MsgText, Text: "❤️", Timestamp: t0,
				Extra: map[string]any{"like_heart": true}}),
		},
		{
			name: "unsupported attachment and flag",
			body: wrap(ev(`"message":{"mid":"m6","attachments":[{"type":"unsupported_type","payload":{"url":"https://cdn/x"}}]}`),
				ev(`"message":{"mid":"m7","is_unsupported":true}`)),
			want: &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.Instagram, AccountID: account, Messages: []channel.Inbound{
				{ExternalID: "m6", Customer: customer, Type: channel.MsgUnsupported, Timestamp: t0,
					Extra: map[string]any{"original_type": "unsupported_type", "payload": map[string]any{"url": "https://cdn/x"}}},
				{ExternalID: "m7", Customer: customer, Type: channel.MsgUnsupported, Timestamp: t0,
					Extra: map[string]any{"original_type": "unsupported"}},
			}}}},
		},
		{
			name: "referral alone, reaction without emoji, read by watermark, optin",
			body: wrap(ev(`"referral":{"ref":"spring","source":"IGME","type":"OPEN_THREAD"}`),
				ev(`"reaction":{"mid":"m8","action":"react","reaction":"love"}`),
				ev(`"read":{"watermark":1767600000000}`),
				ev(`"optin":{"ref":"x"}`)),
			want: &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.Instagram, AccountID: account, Messages: []channel.Inbound{
				{ExternalID: "referral:" + igsid + ":1767600000123", Customer: customer, Type: channel.MsgUnsupported, Timestamp: t0,
					Extra: map[string]any{"original_type": "referral", "referral": map[string]any{"ref": "spring", "source": "IGME", "type": "OPEN_THREAD"}}},
				{ExternalID: "reaction:m8:" + igsid + ":react:1767600000123", Customer: customer, Type: channel.MsgReaction, Timestamp: t0,
					Reaction: &channel.Reaction{TargetExternalID: "m8", Emoji: "❤️"}, Extra: map[string]any{"action": "react", "reaction": "love"}},
			}}}},
		},
		{
			name: "changes form with string ids and second timestamps",
			body: []byte(`{"object":"instagram","entry":[{"id":17841405822304914,"time":1767600000,"changes":[
				{"field":"messages","value":{"sender":{"id":1133627508796544},"recipient":{"id":"` + account + `"},"timestamp":"1767600000","message":{"mid":"m9","text":"hi"}}},
				{"field":"comments","value":{"text":"nice"}}]}]}`),
			want: inbound(channel.Inbound{ExternalID: "m9", Customer: customer, Type: channel.MsgText, Text: "hi", Timestamp: time.Unix(1767600000, 0).UTC()}),
		},
		{
			name: "undecodable message salvaged, event without mid dropped",
			body: wrap(ev(`"message":{"mid":"m10","text":{"oops":1}}`), ev(`"message":{"text":"no mid"}`)),
			want: inbound(channel.Inbound{ExternalID: "m10", Customer: customer, Type: channel.MsgUnsupported, Timestamp: t0,
				Extra: map[string]any{"original_type": "message", "decode_error": "x"}}),
		},
		{
			name: "entries of one account merged",
			body: []byte(`{"object":"instagram","entry":[
				{"id":"` + account + `","messaging":[` + ev(`"message":{"mid":"a","text":"1"}`) + `]},
				{"id":"` + account + `","messaging":[` + ev(`"message":{"mid":"b","text":"2"}`) + `]}]}`),
			want: &channel.Batch{Envelopes: []channel.Envelope{{ChannelType: channel.Instagram, AccountID: account, Messages: []channel.Inbound{
				{ExternalID: "a", Customer: customer, Type: channel.MsgText, Text: "1", Timestamp: t0},
				{ExternalID: "b", Customer: customer, Type: channel.MsgText, Text: "2", Timestamp: t0},
			}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parser{}.Parse(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			// The decoder's wording is not ours to pin.
			for _, e := range got.Envelopes {
				for _, m := range e.Messages {
					if m.Extra["decode_error"] != nil {
						m.Extra["decode_error"] = "x"
					}
				}
			}
			assertBatch(t, got, tt.want)
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, body := range []string{``, `null`, `{"object":"page","entry":[]}`, `{"object":"instagram","entry":[{"messaging":{}}]}`} {
		if b, err := (Parser{}).Parse([]byte(body)); err == nil {
			t.Errorf("%q: no error, got %+v", body, b)
		}
	}
}
