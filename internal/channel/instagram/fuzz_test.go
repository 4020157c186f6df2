package instagram

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/ig-*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"object":"instagram","entry":[{"id":1,"time":"9","changes":[{"field":"messages","value":{"sender":{"id":2},"timestamp":1e15,"message":{"mid":3,"is_echo":"true","attachments":[{"type":"share","payload":{"reel_video_id":4}},{}]}}}],"messaging":[{"referral":{"ref":"x"}},{"postback":{"title":"t"}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Parser{}.Parse(body)
		if err != nil {
			return
		}
		if b == nil {
			t.Fatal("nil batch without an error")
		}
		for _, e := range b.Envelopes {
			if e.ChannelType != channel.Instagram {
				t.Errorf("channel type %q", e.ChannelType)
			}
			for _, m := range e.Messages {
				if m.ExternalID == "" || m.Type == "" {
					t.Errorf("message without id or type: %+v", m)
				}
				if len(m.Extra) > 0 && m.ExtraJSON() == nil {
					t.Errorf("Extra does not encode: %#v", m.Extra)
				}
			}
		}
		if _, err := json.Marshal(b); err != nil {
			t.Errorf("batch does not encode: %v", err)
		}
	})
}
