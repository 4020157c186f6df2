package templates

import (
	"testing"

	"github.com/switchboard/switchboard/internal/store"
)

// Variables are the distinct placeholders of the text header and the body;
// a media header, the footer and buttons have none that a sender fills,
// and a media header is flagged (a send needs its file).
func TestView(t *testing.T) {
	cases := []struct {
		comps          string
		header, body   int
		media          bool
		wantComponents string
	}{
		{`[{"type":"BODY","text":"Hi {{1}}, {{2}} and {{1}} again"}]`, 0, 2, false, ""},
		{`[{"type":"HEADER","format":"TEXT","text":"Hello {{1}}"},{"type":"BODY","text":"{{1}} {{ 2 }} {{3}}"},{"type":"FOOTER","text":"{{9}}"}]`, 1, 3, false, ""},
		{`[{"type":"HEADER","format":"IMAGE"},{"type":"BODY","text":"Named {{order_id}} {{name}}"}]`, 0, 2, true, ""},
		{`[{"type":"BODY","text":"no variables {{}} { {1} }"}]`, 0, 0, false, ""},
		{`not json`, 0, 0, false, `[]`},
	}
	for _, c := range cases {
		v := view(store.ChannelTemplate{Name: "t", Components: c.comps})
		if v.HeaderVariables != c.header || v.BodyVariables != c.body || v.Variables != c.header+c.body || v.HeaderMedia != c.media {
			t.Errorf("%s: header %d body %d total %d media %v", c.comps, v.HeaderVariables, v.BodyVariables, v.Variables, v.HeaderMedia)
		}
		if c.wantComponents != "" && string(v.Components) != c.wantComponents {
			t.Errorf("%s: components %s", c.comps, v.Components)
		}
	}
}
