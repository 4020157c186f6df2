package channel

import (
	"fmt"
	"mime"
	"slices"
	"strings"
)

// MediaRule is what a messenger accepts for one kind of outbound file.
type MediaRule struct {
	// Types are MIME types without parameters, lower-case.
	Types []string
	// MaxBytes is the largest file the messenger takes; 0 means no limit
	// is known.
	MaxBytes int64
}

// MediaRules maps each outbound media kind to what the messenger accepts.
// A provider sets it so that a file the messenger would refuse is refused
// when the operator sends it, not minutes later by the messenger.
type MediaRules map[MsgType]MediaRule

// MediaRefusal says why a file does not fit a messenger's rules. Reason
// is MediaTypeUnsupported or MediaTooLarge.
type MediaRefusal struct {
	Reason   string
	Kind     MsgType
	MimeType string // as received, parameters removed
	Size     int64
	Rule     MediaRule
}

// Reasons of a MediaRefusal; they double as the API's error codes.
const (
	MediaTypeUnsupported = "media_type_unsupported"
	MediaTooLarge        = "media_too_large"
)

func (e *MediaRefusal) Error() string {
	if e.Reason == MediaTooLarge {
		return fmt.Sprintf("channel: %s file of %d bytes exceeds %d", e.Kind, e.Size, e.Rule.MaxBytes)
	}
	return fmt.Sprintf("channel: %s files cannot be %q", e.Kind, e.MimeType)
}

// BaseMIME is a MIME type without its parameters, lower-case:
// "audio/ogg; codecs=opus" is "audio/ogg". A value that does not parse
// is trimmed and lower-cased as is, so it is still named in refusals.
func BaseMIME(v string) string {
	if t, _, err := mime.ParseMediaType(v); err == nil {
		return t
	}
	t, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// Accepts tells whether kind takes files of type mimeType (parameters
// allowed). A kind the rules do not name accepts nothing.
func (r MediaRules) Accepts(kind MsgType, mimeType string) bool {
	rule, ok := r[kind]
	return ok && slices.Contains(rule.Types, BaseMIME(mimeType))
}

// Check returns nil when a file of kind, mimeType and size would be taken,
// and a *MediaRefusal when not. A type the rules refuse is reported before
// a size, since fixing the size would not make the file go.
func (r MediaRules) Check(kind MsgType, mimeType string, size int64) *MediaRefusal {
	rule := r[kind]
	base := BaseMIME(mimeType)
	if !slices.Contains(rule.Types, base) {
		return &MediaRefusal{Reason: MediaTypeUnsupported, Kind: kind, MimeType: base, Size: size, Rule: rule}
	}
	if rule.MaxBytes > 0 && size > rule.MaxBytes {
		return &MediaRefusal{Reason: MediaTooLarge, Kind: kind, MimeType: base, Size: size, Rule: rule}
	}
	return nil
}
