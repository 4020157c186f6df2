package crm

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/store"
)

// Rendered is a message as an operator should read it, with no CRM's
// markup: each CRM formats it its own way (BB-code, HTML, its own API
// fields), so what a message says is decided once, here.
type Rendered struct {
	// Inbound is true for what the customer wrote, false for what we sent.
	Inbound bool
	// Author is the customer's cleaned name, or the word for the operator
	// on an outgoing message.
	Author string
	// Text is plain text: what was written (with a file's caption), or, for
	// a kind that has no text (reaction, location…), a line saying what
	// happened, in the requested language.
	Text string
	// Quote is the text of the message this one replies to, if known.
	Quote string
	// Files are the message's stored media; a file still downloading or
	// failed is not offered, since its link would not open.
	Files []File
	// Deleted is a line saying the customer deleted the message, or "".
	Deleted string
}

// File is one attachment of a rendered message.
type File struct {
	Name, URL, MimeType, Caption string
}

// Image is whether a page may show the file as a picture.
func (f File) Image() bool { return strings.HasPrefix(f.MimeType, "image/") }

// Audio is whether a page may play the file (a voice note).
func (f File) Audio() bool { return strings.HasPrefix(f.MimeType, "audio/") }

// words are the renderer's texts per language.
var words = map[string]map[string]string{
	"ru": {
		"operator":      "Оператор",
		"unsupported":   "[сообщение неподдерживаемого типа: %s]",
		"reaction":      "Реакция %s на сообщение",
		"reaction_off":  "Реакция снята",
		"location":      "Геопозиция",
		"contacts":      "Контакт",
		"story_mention": "Упоминание в истории",
		"deleted":       "Клиент удалил сообщение",
		"wa_window":     "Клиент не писал больше 24 часов: WhatsApp позволяет отправить только шаблон.",
		"ig_window":     "Клиент не писал больше 7 дней: Instagram позволяет отвечать только в течение 7 дней после его последнего сообщения (после 24 часов — с меткой HUMAN_AGENT).",
		"window":        "Окно переписки с клиентом закрыто: дождитесь его сообщения.",
	},
	"en": {
		"operator":      "Operator",
		"unsupported":   "[message of an unsupported type: %s]",
		"reaction":      "Reaction %s to a message",
		"reaction_off":  "Reaction removed",
		"location":      "Location",
		"contacts":      "Contact",
		"story_mention": "Mentioned you in a story",
		"deleted":       "The customer deleted a message",
		"wa_window":     "The customer has not written for over 24 hours: WhatsApp allows only a template.",
		"ig_window":     "The customer has not written for over 7 days: Instagram allows replies only within 7 days of their last message (after 24 hours with the HUMAN_AGENT tag).",
		"window":        "The conversation window is closed: wait for the customer to write.",
	},
}

// word is a text in lang: English for "en", Russian otherwise. Callers
// pass the language they show; deciding which portal reads which
// language is theirs.
func word(lang, key string) string {
	if strings.EqualFold(lang, "en") {
		return words["en"][key]
	}
	return words["ru"][key]
}

// WindowClosed explains to an operator why a free-form message could not
// be sent to a customer of a messenger of type typ ("whatsapp",
// "instagram"), in lang.
func WindowClosed(lang, typ string) string {
	switch channel.Type(typ) {
	case channel.WhatsApp:
		return word(lang, "wa_window")
	case channel.Instagram:
		return word(lang, "ig_window")
	}
	return word(lang, "window")
}

// Render turns a message into what an operator reads, in lang ("ru" or
// "en"). fileURL gives a stored media file's signed link; nil leaves the
// links empty. An Extra that does not parse is returned as an error along
// with the rendering from the plain fields, so the message is still shown.
func Render(m *store.MessageView, lang string, fileURL func(mediaID string) string) (Rendered, error) {
	r := Rendered{Inbound: m.Direction != store.Outbound, Text: m.Text, Quote: m.Quoted}
	if r.Inbound {
		if m.Contact != nil {
			r.Author = cleanName(cmp.Or(m.Contact.Name, m.Contact.Username, m.Contact.Phone, m.Contact.ExternalID))
		}
	} else {
		r.Author = word(lang, "operator")
	}
	var extra struct {
		Location *channel.Location `json:"location"`
		Reaction *channel.Reaction `json:"reaction"`
		Caption  string            `json:"caption"`
		Original string            `json:"original_type"`
	}
	var err error
	if m.Extra != nil && *m.Extra != "" {
		if jerr := json.Unmarshal([]byte(*m.Extra), &extra); jerr != nil {
			err = fmt.Errorf("crm: render message %s: extra: %w", m.ID, jerr)
		}
	}
	switch channel.MsgType(m.Type) {
	case channel.MsgLocation:
		if l := extra.Location; l != nil {
			parts := []string{"📍 " + word(lang, "location")}
			for _, v := range []string{l.Name, l.Address} {
				if v != "" {
					parts = append(parts, v)
				}
			}
			parts = append(parts, fmt.Sprintf("https://maps.google.com/?q=%v,%v", l.Latitude, l.Longitude))
			r.Text = strings.Join(parts, "\n")
		}
	case channel.MsgReaction:
		if extra.Reaction != nil && extra.Reaction.Emoji != "" {
			r.Text = fmt.Sprintf(word(lang, "reaction"), extra.Reaction.Emoji)
		} else {
			r.Text = word(lang, "reaction_off")
		}
	case channel.MsgContacts:
		// The parser summarised the cards (names, numbers) into Text.
		r.Text = strings.TrimSpace("👤 " + word(lang, "contacts") + "\n" + m.Text)
	case channel.MsgStoryMention:
		r.Text = "📣 " + word(lang, "story_mention")
	case channel.MsgUnsupported:
		r.Text = fmt.Sprintf(word(lang, "unsupported"), cmp.Or(extra.Original, m.ErrorTitle, "unknown"))
	}
	if c := extra.Caption; c != "" && !strings.Contains(r.Text, c) {
		r.Text = strings.TrimSpace(r.Text + "\n" + c)
	}
	if md := m.Media; md != nil && md.State == store.MediaStored {
		f := File{Name: cmp.Or(md.Filename, md.ID+extFor(md.MimeType)), MimeType: md.MimeType, Caption: extra.Caption}
		if fileURL != nil {
			f.URL = fileURL(md.ID)
		}
		r.Files = append(r.Files, f)
	}
	if m.Status == string(channel.StatusDeleted) {
		r.Deleted = word(lang, "deleted")
	}
	return r, err
}

// cleanName is a contact's name as one line of printable characters: a
// profile name may carry newlines or control characters that would break
// the line it is shown on.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// extByMime gives a file that came without a name an extension by its
// MIME type, so the operator's computer opens it with the right program.
var extByMime = []struct{ prefix, ext string }{
	{"image/jpeg", ".jpg"}, {"image/png", ".png"}, {"image/webp", ".webp"},
	{"audio/ogg", ".ogg"}, {"audio/mpeg", ".mp3"}, {"video/mp4", ".mp4"},
	{"application/pdf", ".pdf"},
}

func extFor(mime string) string {
	for _, e := range extByMime {
		// A prefix, since the type may carry parameters ("audio/ogg; codecs=opus").
		if strings.HasPrefix(mime, e.prefix) {
			return e.ext
		}
	}
	return ""
}
