package whatsapp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/wa-*.json")
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
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"contacts":[{"user_id":1}],"messages":[{"id":1,"timestamp":1e300,"type":"audio","audio":{"voice":"1"}},{"id":"x","type":"contacts","contacts":[{"phones":[{"wa_id":7}]}]}]}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Parser{}.Parse(body)
		if err != nil {
			return
		}
		if b == nil {
			t.Fatal("nil batch without an error")
		}
		for _, e := range b.Envelopes {
			if e.ChannelType != channel.WhatsApp {
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
		// Whatever is parsed must be storable.
		if _, err := json.Marshal(b); err != nil {
			t.Errorf("batch does not encode: %v", err)
		}
	})
}
