package bitrix24

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// The Service tells portal users about waiting customers.
var _ routing.Notifier = (*Service)(nil)

// excerptRunes bounds the quote of the customer's message in a notice: a
// notice says who waits and what about, the record holds the rest.
const excerptRunes = 120

// noticeTexts are the notices' words. %[1]s is the customer, %[2]s the
// channel, %[3]s the excerpt (may be empty), %[3]d the minutes waited.
var noticeTexts = map[string]map[string]string{
	"ru": {
		routing.NoticeNew:        "Новое сообщение от клиента %[1]s в канале «%[2]s»",
		routing.NoticeEscalation: "Клиент %[1]s ждёт ответа %[3]d мин. в канале «%[2]s»",
		"excerpt":                ": «%s»",
		"deal":                   "Открыть сделку",
		"lead":                   "Открыть лид",
		"chat":                   "Открыть чат",
	},
	"en": {
		routing.NoticeNew:        "New message from customer %[1]s in channel “%[2]s”",
		routing.NoticeEscalation: "Customer %[1]s has been waiting %[3]d min for an answer in channel “%[2]s”",
		"excerpt":                ": “%s”",
		"deal":                   "Open the deal",
		"lead":                   "Open the lead",
		"chat":                   "Open the chat",
	},
}

// Notify implements routing.Notifier: one im.notify.personal.add per
// notice and user, all in one batch call (50 commands a call). The text is
// in the portal's language and links the customer's deal or lead (CRM
// mode) or Open Lines chat when one is known. A tag per dialog and kind
// makes a repeated notice replace the earlier one on the portal, so a
// notice sent again after a crash is still seen once.
func (s *Service) Notify(ctx context.Context, d *routing.Delivery, ns []routing.Notice) error {
	lang := shownLang(d.Integration.Language)
	var cmds []BatchCommand
	var whom []string
	for i, n := range ns {
		text, err := s.noticeText(ctx, d, n, lang, time.Now())
		if err != nil {
			return err
		}
		tag := "SWITCHBOARD|" + n.Dialog.ID + "|" + n.Kind
		for j, u := range n.UserIDs {
			cmds = append(cmds, BatchCommand{Name: "n" + strconv.Itoa(i) + "_" + strconv.Itoa(j), Method: "im.notify.personal.add",
				Params: map[string]any{"USER_ID": u, "MESSAGE": text, "TAG": tag}})
			whom = append(whom, u)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	res, err := s.client.Batch(ctx, d.Integration.ID, cmds, false)
	if err != nil {
		return s.classify(err)
	}
	var first error
	for i, c := range cmds {
		if e, ok := res.Errors[c.Name]; ok {
			s.log.Warn("bitrix24: a user was not notified", "integration_id", d.Integration.ID, "user_id", whom[i], "err", e)
			if first == nil {
				first = e
			}
		}
	}
	if first == nil || len(res.Errors) < len(cmds) {
		// Someone was told; sending again would repeat it to them for the
		// sake of users the portal refuses (deleted, say).
		return nil
	}
	return s.classify(fmt.Errorf("bitrix24: no user notified: %w", first))
}

// noticeText words a notice as Bitrix24 BB-code: everything the customer
// controls is neutralised; only the link is markup.
func (s *Service) noticeText(ctx context.Context, d *routing.Delivery, n routing.Notice, lang string, now time.Time) (string, error) {
	t := noticeTexts[lang]
	ct := n.Dialog.Contact
	who := ""
	if ct != nil {
		name := cleanLine(cmp.Or(ct.Name, ct.Username))
		switch {
		case name != "" && ct.Phone != "" && name != ct.Phone:
			who = name + " (" + ct.Phone + ")"
		default:
			who = cmp.Or(name, ct.Phone, ct.ExternalID)
		}
	}
	channel := cleanLine(cmp.Or(d.Binding.Name, d.Channel.Name, d.Channel.DisplayPhone))
	minutes := int((n.Waited + time.Minute - 1) / time.Minute)
	text := fmt.Sprintf(t[n.Kind], NeutralizeBB(who), NeutralizeBB(channel), max(minutes, 1))
	if ex := s.excerpt(n.Message, lang); ex != "" {
		text += fmt.Sprintf(t["excerpt"], NeutralizeBB(ex))
	}
	link, label, err := s.recordLink(ctx, d, n.Dialog)
	if err != nil {
		return "", err
	}
	if link != "" {
		text += "\n[URL=" + link + "]" + t[label] + "[/URL]"
	}
	return text, nil
}

// excerpt is the start of the customer's message on one line, as an
// operator reads it (crm.Render: a location, a reaction, a file's name).
func (s *Service) excerpt(m *store.MessageView, lang string) string {
	if m == nil {
		return ""
	}
	r := s.render(m, lang)
	text := r.Text
	if text == "" && len(r.Files) > 0 {
		text = r.Files[0].Name
	}
	text = cleanLine(text)
	if rs := []rune(text); len(rs) > excerptRunes {
		text = strings.TrimSpace(string(rs[:excerptRunes])) + "…"
	}
	return text
}

// cleanLine folds text onto one line.
func cleanLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// recordLink is where an operator answers the customer: the deal or lead
// in CRM mode, the Open Lines chat otherwise; "" when none is known yet.
// label names it in noticeTexts.
func (s *Service) recordLink(ctx context.Context, d *routing.Delivery, dv *store.DialogView) (link, label string, err error) {
	base := portalBase(d.Integration)
	if base == "" || dv.Contact == nil {
		return "", "", nil
	}
	if d.Binding.Mode == ModeCRM {
		entity, id := dv.CRMEntity, dv.CRMEntityID
		if id == "" {
			entity = "lead"
			kind := linkCRMLead
			if d.Binding.Entity == "deal" {
				entity, kind = "deal", linkCRMDeal
			}
			id, err = s.store.RemoteOf(ctx, d.Integration.ID, kind, d.Binding.ID+":"+dv.Contact.ID)
			if errors.Is(err, store.ErrNotFound) {
				return "", "", nil
			}
			if err != nil {
				return "", "", err
			}
		}
		if (entity != "deal" && entity != "lead") || !idPattern.MatchString(id) {
			return "", "", nil
		}
		return base + "/crm/" + entity + "/details/" + id + "/", entity, nil
	}
	chat, err := s.store.RemoteOf(ctx, d.Integration.ID, linkChat, dv.Contact.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !idPattern.MatchString(chat)) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	return base + "/online/?" + url.Values{"IM_DIALOG": {"chat" + chat}}.Encode(), "chat", nil
}

// portalBase is the portal's address as its users open it: the REST
// endpoint's scheme and host (https://name.bitrix24.ru), else its domain.
func portalBase(in *store.Integration) string {
	if u, err := url.Parse(in.ClientEndpoint); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	domain := strings.Trim(strings.TrimPrefix(strings.TrimPrefix(in.Domain, "https://"), "http://"), "/")
	if domain == "" || strings.ContainsAny(domain, "/?#[] ") {
		return ""
	}
	return "https://" + domain
}
