package channel

import "testing"

// Graph puts the code in its message ("(#100) Invalid parameter"); the
// reason stored on a failed message names it once.
func TestProviderErrorString(t *testing.T) {
	for _, c := range []struct {
		name string
		err  ProviderError
		want string
	}{
		{"graph message with its code", ProviderError{Code: 100, Message: "(#100) Invalid parameter", Details: "Parameter 'to' is wrong"},
			"(#100) Invalid parameter: Parameter 'to' is wrong"},
		{"message without a code", ProviderError{Code: 131047, Message: "Re-engagement message"}, "(#131047) Re-engagement message"},
		{"title wins over message", ProviderError{Code: 131026, Title: "Message undeliverable", Message: "(#131026) x"}, "(#131026) Message undeliverable"},
		{"a different code in the text is kept", ProviderError{Code: 100, Message: "(#10) Not allowed"}, "(#100) (#10) Not allowed"},
		{"no code at all", ProviderError{Message: "bad gateway"}, "(#0) bad gateway"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.err.String(); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestMediaRulesCheckParsesParameters(t *testing.T) {
	r := MediaRules{MsgVoice: {Types: []string{"audio/ogg"}, MaxBytes: 10}}
	for _, c := range []struct {
		mime string
		size int64
		want string
	}{
		{"audio/ogg; codecs=opus", 10, ""},
		{"Audio/OGG;codecs=opus", 1, ""},
		{"audio/ogg", 11, MediaTooLarge},
		{"audio/mpeg", 1, MediaTypeUnsupported},
		{"audio/ogg; broken=", 1, ""},
		{"", 1, MediaTypeUnsupported},
	} {
		got := ""
		if ref := r.Check(MsgVoice, c.mime, c.size); ref != nil {
			got = ref.Reason
		}
		if got != c.want {
			t.Errorf("%q %d: got %q, want %q", c.mime, c.size, got, c.want)
		}
	}
	if ref := r.Check(MsgImage, "image/png", 1); ref == nil || ref.Reason != MediaTypeUnsupported {
		t.Errorf("a kind the rules do not name must be refused: %v", ref)
	}
}
