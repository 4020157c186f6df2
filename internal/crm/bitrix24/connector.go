package bitrix24

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// Binding modes.
const (
	ModeOpenLines = "openlines"
	ModeCRM       = "crm"
)

// BindingSettings are per-binding options.
type BindingSettings struct {
	// OperatorName prefixes an operator's reply with their name, as
	// Bitrix24 signs it ("Anna: …"); off strips the signature.
	OperatorName bool `json:"operator_name"`
}

func bindingSettings(b *store.ChannelBinding) BindingSettings {
	var s BindingSettings
	if b.Settings != nil {
		json.Unmarshal([]byte(*b.Settings), &s)
	}
	return s
}

// linkChat ties a contact to the Open Lines chat Bitrix24 made for it.
const linkChat = "ol_chat"

// errMediaPending: a file is still downloading; mirror it on the next try.
var errMediaPending = errors.New("bitrix24: media not downloaded yet")

// Mirror implements routing.Connector: it sends a customer's messages into
// the Open Line in one imconnector.send.messages call.
func (s *Service) Mirror(ctx context.Context, d *routing.Delivery, msgs []store.MessageView) ([]string, error) {
	ready, waiting := readyMessages(msgs, channel.Type(d.Channel.Type), time.Now())
	if len(ready) == 0 {
		return nil, errMediaPending
	}
	if d.Binding.Mode != ModeOpenLines {
		return s.mirrorCRM(ctx, d, ready, waiting)
	}
	lang := d.Integration.Language
	landed, err := s.landedInOpenLine(ctx, d, ready, lang)
	if err != nil {
		return nil, s.classify(err)
	}
	if len(landed) > 0 {
		ready = slices.DeleteFunc(ready, func(m store.MessageView) bool { return slices.Contains(landed, m.ID) })
		if len(ready) == 0 {
			if waiting {
				return landed, errMediaPending
			}
			return landed, nil
		}
	}
	var items []map[string]any
	for i := range ready {
		items = append(items, s.openLinesMessage(d, &ready[i], lang))
	}
	var res struct {
		Success bool `json:"SUCCESS"`
		Data    struct {
			Result []struct {
				Success bool            `json:"SUCCESS"`
				Errors  json.RawMessage `json:"ERRORS"`
				Session struct {
					ChatID json.RawMessage `json:"CHAT_ID"`
				} `json:"session"`
			} `json:"RESULT"`
		} `json:"DATA"`
	}
	err = s.client.Call(ctx, d.Integration.ID, "imconnector.send.messages", map[string]any{
		"CONNECTOR": s.ConnectorID(channel.Type(d.Channel.Type)), "LINE": d.Binding.LineID, "MESSAGES": items,
	}, &res)
	if err != nil {
		return landed, s.classify(err)
	}
	done := landed
	refused := map[string]bool{} // customers with a refused message: keep their order
	chats := map[string]string{} // customer → Open Lines chat, one write per customer
	for i, r := range res.Data.Result {
		if i >= len(ready) {
			break
		}
		m := &ready[i]
		if !r.Success || refused[m.ContactID] {
			refused[m.ContactID] = true
			continue
		}
		done = append(done, m.ID)
		if chat := strings.Trim(string(r.Session.ChatID), `"`); chat != "" && chat != "null" {
			chats[m.ContactID] = chat
		}
	}
	if len(chats) > 0 {
		// One statement for the call's customers (it was one per message,
		// then one per customer: a call of 50 customers' messages spent
		// more on them than on the portal).
		err := s.store.Tx(ctx, func(tx *gorm.DB) error { return store.PutLinks(tx, d.Integration.ID, linkChat, chats) })
		if err != nil {
			// The messages are in the line; the link is for notices and
			// echoes, and the customer's next message writes it again.
			s.log.Warn("bitrix24: keep the customers' Open Lines chats", "integration_id", d.Integration.ID, "err", err)
		}
	}
	if len(done) < len(ready) {
		return done, fmt.Errorf("bitrix24: send.messages accepted %d of %d", len(done), len(ready))
	}
	if waiting {
		return done, errMediaPending
	}
	return done, nil
}

// landedInOpenLine finds which of the messages an earlier call may have
// written (d.InDoubt) are in the Open Line: imconnector.update.messages
// with the same content, which Bitrix24 answers per message, SUCCESS for
// one it has under that external id (rewritten with what it already
// says) and an error for one it does not. Open Lines keep no other
// lookup by our id, and sending again would show the operator the
// message twice. The per-message error for an unknown id is how the
// connector code is understood to behave (the published contract does
// not spell out update's errors; the simulator answers "message not
// found"); were a portal to answer SUCCESS for an unknown id, such a
// message would be taken as delivered, so only messages in doubt are
// ever asked about.
func (s *Service) landedInOpenLine(ctx context.Context, d *routing.Delivery, ready []store.MessageView, lang string) ([]string, error) {
	var doubt []*store.MessageView
	var items []map[string]any
	for i := range ready {
		if d.InDoubt[ready[i].ID] {
			doubt = append(doubt, &ready[i])
			items = append(items, s.openLinesMessage(d, &ready[i], lang))
		}
	}
	if len(items) == 0 {
		return nil, nil
	}
	var res struct {
		Data struct {
			Result []struct {
				Success bool `json:"SUCCESS"`
			} `json:"RESULT"`
		} `json:"DATA"`
	}
	err := s.client.Call(ctx, d.Integration.ID, "imconnector.update.messages", map[string]any{
		"CONNECTOR": s.ConnectorID(channel.Type(d.Channel.Type)), "LINE": d.Binding.LineID, "MESSAGES": items,
	}, &res)
	if err != nil {
		return nil, err
	}
	var landed []string
	for i, r := range res.Data.Result {
		if i < len(doubt) && r.Success {
			landed = append(landed, doubt[i].ID)
		}
	}
	if len(landed) > 0 {
		s.log.Info("bitrix24: messages found in the Open Line after an unfinished call, not sent again",
			"integration_id", d.Integration.ID, "messages", len(landed), "asked", len(doubt))
	}
	return landed, nil
}

// profileGrace is how long a new Instagram customer's messages wait for
// the profile lookup, so the operator sees a name rather than an id.
const profileGrace = 15 * time.Second

// readyMessages drops, per customer, everything from the first message
// whose file is still downloading (or whose sender's name is still being
// looked up), so no customer's messages overtake each other; waiting says
// whether anything was held back.
func readyMessages(msgs []store.MessageView, typ channel.Type, now time.Time) (ready []store.MessageView, waiting bool) {
	held := map[string]bool{}
	for _, m := range msgs {
		unnamed := typ == channel.Instagram && m.Contact != nil && m.Contact.Name == "" && m.Contact.Username == "" &&
			now.Sub(m.Contact.CreatedAt) < profileGrace
		if held[m.ContactID] || unnamed || (m.Media != nil && m.Media.State == store.MediaPending) {
			held[m.ContactID] = true
			waiting = true
			continue
		}
		ready = append(ready, m)
	}
	return ready, waiting
}

func (s *Service) openLinesMessage(d *routing.Delivery, m *store.MessageView, lang string) map[string]any {
	ct := m.Contact
	user := map[string]any{"id": ct.ID}
	first, last := splitName(cmp.Or(ct.Name, ct.Username, ct.Phone, ct.ExternalID))
	user["name"] = first
	if last != "" {
		user["last_name"] = last
	}
	if ct.Phone != "" {
		user["phone"] = ct.Phone
	}
	if ct.AvatarURL != "" {
		user["picture"] = map[string]any{"url": ct.AvatarURL}
	}
	if ct.Username != "" && d.Channel.Type == string(channel.Instagram) {
		user["url"] = "https://instagram.com/" + url.PathEscape(ct.Username)
	}
	r := s.render(m, lang)
	msg := map[string]any{"id": externalID(m), "date": m.CreatedAt.Unix(), "text": InboundText(r)}
	if m.ProviderAt != nil {
		msg["date"] = m.ProviderAt.Unix()
	}
	if len(r.Files) > 0 {
		files := make([]map[string]any, len(r.Files))
		for i, f := range r.Files {
			files[i] = map[string]any{"url": f.URL, "name": NeutralizeBB(f.Name)}
		}
		msg["files"] = files
	}
	return map[string]any{
		"user":    user,
		"message": msg,
		"chat":    map[string]any{"id": ct.ID, "name": NeutralizeBB(cmp.Or(ct.Name, ct.Phone, ct.Username))},
	}
}

func externalID(m *store.MessageView) string {
	if m.ExternalID != nil {
		return *m.ExternalID
	}
	return m.ID
}

// namePart keeps what Bitrix24 accepts in a name: letters, spaces,
// hyphens and apostrophes, up to 25 characters.
var nameJunk = regexp.MustCompile(`[^\p{L}\p{M} '\-]+`)

func splitName(full string) (string, string) {
	clean := strings.Join(strings.Fields(nameJunk.ReplaceAllString(full, " ")), " ")
	if clean == "" {
		clean = NeutralizeBB(strings.TrimSpace(full)) // a phone number: let it through as is
	}
	first, last, _ := strings.Cut(clean, " ")
	return truncRunes(first, 25), truncRunes(last, 25)
}

func truncRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// bbBreaker follows every "[" in what a customer wrote. Bitrix24 takes a
// tag only when its name comes right after the bracket ([b], [url=…],
// [user=…], [send=…] buttons, [icon=…]…), so one character there stops
// every tag, known or not, while the text still reads as typed. U+200B
// ZERO WIDTH SPACE is invisible, so the operator sees exactly the
// customer's characters; a look-alike bracket (＜［＞) would change what is
// shown and copied, and an HTML entity (&#91;) would be shown literally,
// since Bitrix24 escapes HTML in chat text.
const bbBreaker = "\u200b"

// NeutralizeBB makes text a customer controls (message text, captions,
// names, file names) show in Bitrix24 as typed instead of as BB-code.
func NeutralizeBB(s string) string {
	if !strings.Contains(s, "[") {
		return s
	}
	return strings.ReplaceAll(s, "[", "["+bbBreaker)
}

// render is crm.Render with this service's signed links. A message whose
// Extra does not parse is still shown from its plain fields; the fault is
// logged, since it means a parser stored something it should not have.
func (s *Service) render(m *store.MessageView, lang string) crm.Rendered {
	r, err := crm.Render(m, shownLang(lang), s.signer.URL)
	if err != nil {
		s.log.Error("bitrix24: render a message", "message_id", m.ID, "err", err)
	}
	return r
}

// InboundText formats a rendered message as Bitrix24 chat text. What the
// customer wrote is neutralised (NeutralizeBB); only the markup added
// here ([QUOTE]) is BB-code. Files are not in it: Open Lines takes them as
// attachments and the timeline as links.
func InboundText(r crm.Rendered) string {
	text := NeutralizeBB(r.Text)
	if r.Quote != "" {
		text = "[QUOTE]" + NeutralizeBB(r.Quote) + "[/QUOTE]" + text
	}
	if r.Deleted != "" {
		text = "[" + r.Deleted + "] " + text
	}
	return text
}

// operatorMessages sends what operators wrote in an Open Lines chat to the
// customer. The event's job j ends in the commit that stores the last
// message's send (or, when nothing is left to send, its mark): one commit
// for the usual one-message event instead of two, and a run whose lease
// was taken stores nothing of that message.
func (s *Service) operatorMessages(ctx context.Context, j *queue.Job, in *store.Integration, d map[string]any) error {
	connector, line := str(d, "CONNECTOR"), str(d, "LINE")
	typ, ok := s.channelTypeOf(connector)
	if !ok {
		return nil // not ours
	}
	b, err := s.store.BindingByLine(ctx, in.ID, line)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Warn("bitrix24 reply on a line with no channel", "integration_id", in.ID, "line", line)
		return nil
	}
	if err != nil {
		return err
	}
	msgs := list(d["MESSAGES"])
	for i, m := range msgs {
		var end *queue.Job
		if i == len(msgs)-1 {
			end = j
		}
		if err := s.operatorMessage(ctx, in, b, typ, m, end); err != nil {
			return err
		}
	}
	return nil
}

// operatorMessage sends one operator message. end, when set, is the job
// to end (queue.Done) in the commit of the message's only write, when
// there is one; a message that writes nothing (sent already, refused) or
// several times (files) leaves the job to the queue.
func (s *Service) operatorMessage(ctx context.Context, in *store.Integration, b *store.ChannelBinding, typ channel.Type, m map[string]any, end *queue.Job) error {
	imChat, imMsg := str(m, "im", "chat_id"), str(m, "im", "message_id")
	remote := imChat + ":" + imMsg
	switch _, err := s.store.LocalOf(ctx, in.ID, routing.LinkOutbound, remote); {
	case err == nil:
		return nil // sent by an earlier attempt of this job
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	contactID := str(m, "chat", "id")
	contact, err := s.store.ContactByID(ctx, contactID)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Warn("bitrix24 reply to an unknown chat", "integration_id", in.ID, "chat", contactID)
		return nil
	}
	if err != nil {
		return err
	}
	ch, err := s.store.GetChannel(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, contact.ChannelID)
	if err != nil || ch.Type != string(typ) {
		s.log.Warn("bitrix24 reply for a channel outside this portal's workspace", "integration_id", in.ID, "chat", contactID)
		return nil
	}
	text := BBToText(str(m, "message", "text"), bindingSettings(b).OperatorName)
	if str(m, "message", "user_id") == "0" && text == "" {
		return nil // an automatic system message with nothing to say
	}
	reqs, failed, err := s.operatorRequests(ctx, in, *contact, text, list(mapOrNil(m["message"])["files"]))
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		// Said before the sends: once one is stored, a retry skips the
		// whole message (LinkByRemote above), so a note after them that
		// failed would be lost.
		note := fmt.Sprintf(T(in.Language, "file_failed"), strings.Join(failed, "; "))
		if err := s.systemMessage(ctx, in, imChat, note); err != nil {
			return err
		}
		if len(reqs) == 0 {
			// Nothing left to send. Remember the message as handled, so a
			// retry of this event for a later message does not say it twice.
			return s.store.Tx(ctx, func(tx *gorm.DB) error {
				if err := store.PutLink(tx, in.ID, routing.LinkOutbound, "b24file:"+remote, remote); err != nil {
					return err
				}
				if end == nil {
					return nil
				}
				return queue.Done(tx, end)
			})
		}
	}
	operator := str(m, "message", "user_id")
	if operator == "0" {
		operator = "" // the line's automation (a greeting, an autoreply)
	}
	// The chat views name the operator (or the line's automation).
	author := &store.MessageAuthor{Kind: store.AuthorRobot, UserID: in.Type}
	if operator != "" {
		author = &store.MessageAuthor{Kind: store.AuthorCRM, UserID: operator, Name: s.UserName(ctx, in, operator)}
	}
	// A message of one send ends the job in that send's commit. One of
	// several (files) does not: its first send stored links it as sent
	// (the skip above), so a last send rolled back with the lease would
	// be skipped by the run holding the job, and never sent.
	ends := end != nil && len(reqs) == 1
	for _, req := range reqs {
		req.Author = author
		// ended says the commit was asked to end the job, so that a
		// commit failing after that is not taken for a refused send the
		// job may end on.
		ended := false
		req.OnStored = func(tx *gorm.DB, msg *store.Message) error {
			// In branch mode only the customer's branch writes to them.
			if err := routing.ClaimOutbound(tx, in.ID, ch.ID, msg.ContactID); err != nil {
				return err
			}
			// Written in this line's chat (LinkOutbound: never echoed
			// back into it) by its operator (named in other CRMs' echoes).
			if err := routing.MarkOrigin(tx, in.ID, msg.ID, operator); err != nil {
				return err
			}
			if err := store.PutLink(tx, in.ID, routing.LinkOutbound, msg.ID, remote); err != nil {
				return err
			}
			if !ends {
				return nil
			}
			ended = true
			return queue.Done(tx, end)
		}
		_, err := s.msg.Send(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, ch.ID, req)
		var me *fault.Error
		if errors.As(err, &me) && !ended {
			reason := me.Message
			if me.Code == "window_closed" {
				reason = crm.WindowClosed(shownLang(in.Language), ch.Type)
			}
			return s.systemMessage(ctx, in, imChat, fmt.Sprintf(T(in.Language, "send_failed"), reason))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func mapOrNil(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// operatorRequests turns an operator's text and files into sends: the
// first file carries the text as its caption, other files go alone. A
// file the portal refuses for good (a 4xx, a bad link, too large) is left
// out and named in failed, so the rest of the message still goes and the
// chat is told; only a failure worth retrying (network, 5xx) fails the
// whole message.
func (s *Service) operatorRequests(ctx context.Context, in *store.Integration, contact store.Contact, text string, files []map[string]any) (reqs []messaging.SendRequest, failed []string, err error) {
	to := contact.ExternalID
	for _, f := range files {
		link := cmp.Or(str(f, "downloadLink"), str(f, "link"), str(f, "url"))
		data, mime, err := s.download(ctx, in, link)
		var refused *fileRefused
		if errors.As(err, &refused) {
			name := cmp.Or(str(f, "name"), "file")
			s.log.Warn("bitrix24 operator file not fetched", "integration_id", in.ID, "file", name, "reason", refused.reason)
			failed = append(failed, "«"+name+"»: "+refused.reason)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		reqs = append(reqs, messaging.SendRequest{To: to, Upload: &messaging.Upload{Filename: str(f, "name"), MimeType: mime, Data: data}})
	}
	switch {
	case len(reqs) > 0:
		reqs[0].Text = text
	case text != "" || len(files) == 0:
		reqs = []messaging.SendRequest{{To: to, Text: text}}
	}
	return reqs, failed, nil
}

// fileRefused is a file the portal will not give us however often we ask.
type fileRefused struct{ reason string }

func (e *fileRefused) Error() string { return "bitrix24: operator file refused: " + e.reason }

// maxOperatorFile bounds what is fetched from a portal for one file.
const maxOperatorFile = 100 << 20

// download fetches an operator's file from the portal. Relative links are
// relative to the portal; the client refuses private addresses. A 4xx
// (but 408 and 429), a bad link or a file too large is a *fileRefused.
func (s *Service) download(ctx context.Context, in *store.Integration, link string) ([]byte, string, error) {
	base, err := url.Parse(in.ClientEndpoint)
	if err != nil {
		return nil, "", queue.Permanent(err)
	}
	u, err := base.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || link == "" {
		return nil, "", &fileRefused{"bad link"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", &fileRefused{"bad link"}
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("bitrix24: download file: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return nil, "", &fileRefused{fmt.Sprintf("the portal answered HTTP %d", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return nil, "", fmt.Errorf("bitrix24: download file: http %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxOperatorFile+1))
	if err != nil {
		return nil, "", fmt.Errorf("bitrix24: download file: %w", err)
	}
	if len(data) > maxOperatorFile {
		return nil, "", &fileRefused{fmt.Sprintf("larger than %d MiB", maxOperatorFile>>20)}
	}
	return data, resp.Header.Get("Content-Type"), nil
}

// systemMessage writes a notice into the Open Lines chat.
func (s *Service) systemMessage(ctx context.Context, in *store.Integration, imChatID, text string) error {
	if imChatID == "" {
		return nil
	}
	err := s.client.Call(ctx, in.ID, "im.message.add", map[string]any{"DIALOG_ID": "chat" + imChatID, "MESSAGE": text, "SYSTEM": "Y"}, nil)
	return s.classify(err)
}

func (s *Service) editUnsupported(ctx context.Context, in *store.Integration, d map[string]any) error {
	for _, m := range list(d["MESSAGES"]) {
		if err := s.systemMessage(ctx, in, str(m, "im", "chat_id"), T(in.Language, "edit_unsupported")); err != nil {
			return err
		}
	}
	return nil
}

// Status implements routing.Connector: delivery and read receipts go to
// the chat; a failure is written into it.
func (s *Service) Status(ctx context.Context, d *routing.Delivery, m *store.MessageView) error {
	remote, err := s.store.RemoteOf(ctx, d.Integration.ID, routing.LinkOutbound, m.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not sent from the portal: nothing to report there
	}
	if err != nil {
		return err
	}
	imChat, imMsg, _ := strings.Cut(remote, ":")
	ext := externalID(m)
	item := map[string]any{
		"im":      map[string]any{"chat_id": imChat, "message_id": imMsg},
		"message": map[string]any{"id": []string{ext}},
		"chat":    map[string]any{"id": d.Contact.ID},
	}
	connector := s.ConnectorID(channel.Type(d.Channel.Type))
	delivery := func() error {
		item["message"].(map[string]any)["date"] = deliveredAt(m)
		return s.classify(s.client.Call(ctx, d.Integration.ID, "imconnector.send.status.delivery", map[string]any{
			"CONNECTOR": connector, "LINE": d.Binding.LineID, "MESSAGES": []any{item}}, nil))
	}
	switch channel.Status(m.Status) {
	case channel.StatusDelivered:
		return delivery()
	case channel.StatusRead:
		// Meta skips "delivered" when both happen at once; read implies it.
		if m.DeliveredAt == nil {
			if err := delivery(); err != nil {
				return err
			}
		}
		delete(item["message"].(map[string]any), "date")
		err := s.client.Call(ctx, d.Integration.ID, "imconnector.send.status.reading", map[string]any{
			"CONNECTOR": connector, "LINE": d.Binding.LineID, "MESSAGES": []any{item}}, nil)
		if err != nil {
			// The contract calls it a stub; a failure is not worth retrying.
			s.log.Debug("bitrix24 read receipt not taken", "err", err)
		}
		return nil
	case channel.StatusFailed:
		reason := cmp.Or(m.ErrorDetail, m.ErrorTitle, fmt.Sprintf("#%d", m.ErrorCode))
		if m.ErrorCode == 131047 {
			reason = crm.WindowClosed(shownLang(d.Integration.Language), d.Channel.Type)
		}
		return s.systemMessage(ctx, d.Integration, imChat, fmt.Sprintf(T(d.Integration.Language, "send_failed"), reason))
	}
	return nil
}

func deliveredAt(m *store.MessageView) int64 {
	if m.DeliveredAt != nil {
		return m.DeliveredAt.Unix()
	}
	return store.Now().Unix()
}

// classify turns client errors into what the queue should do, by crm's
// rule, with what the client knows of Bitrix24's answers.
func (s *Service) classify(err error) error {
	return crm.Classify(err, crm.Signals{
		NeedsReauth: func(err error) bool { return errors.Is(err, ErrNeedsReauth) },
		RetryAfter:  RetryAfter,
		Outage:      IsOutage,
	})
}

var (
	bbSignature = regexp.MustCompile(`^\[b\](.+?):?\[/b\]\s*(\[br\]|\n)`)
	bbBreak     = regexp.MustCompile(`(?i)\[br\]`)
	bbURL       = regexp.MustCompile(`(?i)\[url=([^\]]+)\](.*?)\[/url\]`)
	bbTags      = regexp.MustCompile(`(?i)\[/?(b|i|u|s|url|quote|code|color[^\]]*|size[^\]]*|user[^\]]*|chat[^\]]*)\]`)
)

// BBToText turns Bitrix24's BB-code into what a messenger shows. With
// signature, a leading "[b]Name:[/b][br]" becomes "Name: "; without, it is
// dropped.
func BBToText(s string, signature bool) string {
	if m := bbSignature.FindStringSubmatch(s); m != nil {
		rest := s[len(m[0]):]
		if signature {
			s = strings.TrimSuffix(m[1], ":") + ": " + rest
		} else {
			s = rest
		}
	}
	s = bbBreak.ReplaceAllString(s, "\n")
	s = bbURL.ReplaceAllString(s, "$2 ($1)")
	s = bbTags.ReplaceAllString(s, "")
	return strings.TrimSpace(s)
}
