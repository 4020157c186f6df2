package bitrix24

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// JobOpenLineEcho is the echo job of earlier versions, queued for the
// card tab and robots only; routing's JobEcho does its work now, for
// every writer. Kept so jobs queued before an upgrade still run.
const JobOpenLineEcho = "bitrix24.ol_echo"

// linkOLEcho marks a message as written into the Open Lines chat (local:
// the message id, remote: "chat:message" of the chat message), so a rerun
// of the job — the queue runs a job again when its worker died before
// recording the outcome — writes nothing twice.
const linkOLEcho = "ol_echo"

type olEchoJob struct {
	IntegrationID string `json:"integration_id"`
	MessageID     string `json:"message_id"`
	// UserID is the Bitrix24 user who wrote on the card tab; empty for a
	// robot.
	UserID string `json:"user_id,omitempty"`
}

// crmSendStored is the OnStored hook of every message written from the
// portal's CRM side (card tab, robot), run in the transaction that accepts
// it: in branch mode only the customer's branch may write to them (a
// customer with no branch yet becomes this portal's), and the message is
// marked as this portal's user's (userID; "" for a robot), so that the
// echo routing queues into this portal's Open Line, and into any other
// CRM of the channel, names them.
func (s *Service) crmSendStored(in *store.Integration, userID string) func(tx *gorm.DB, m *store.Message) error {
	return func(tx *gorm.DB, m *store.Message) error {
		if err := routing.ClaimOutbound(tx, in.ID, m.ChannelID, m.ContactID); err != nil {
			return err
		}
		return routing.MarkOrigin(tx, in.ID, m.ID, userID)
	}
}

// The Service shows our messages in its Open Lines chats.
var _ routing.OutboundEcho = (*Service)(nil)

// EchoesOutbound implements routing.OutboundEcho: a binding on an Open
// Line has the customer's chat, whose operators see only what the line
// carried; everything else told to the customer (the card tab, a robot,
// another CRM of the channel, the cabinet, the API) is echoed there.
func (s *Service) EchoesOutbound(b *store.ChannelBinding) bool { return b.Mode == ModeOpenLines }

// EchoOutbound implements routing.OutboundEcho: it posts the message as a
// system message (im.message.add SYSTEM=Y) into the chat Bitrix24 made
// for the customer, naming its writer. A system message is what
// operators read as a note in the dialog: it is not sent to the customer
// again and does not take over or reopen the session, which an
// imconnector.send.messages with message.user_id (a message "on behalf of
// the manager") could, being an operator's own message in the line.
func (s *Service) EchoOutbound(ctx context.Context, d *routing.Delivery, m *store.MessageView, o *routing.Origin) error {
	return s.echo(ctx, d.Integration, m, o, d.Job)
}

// handleOpenLineEcho runs an echo job of earlier versions.
func (s *Service) handleOpenLineEcho(ctx context.Context, j *queue.Job) error {
	var p olEchoJob
	if err := j.Decode(&p); err != nil {
		return queue.Permanent(err)
	}
	in, err := s.store.GetIntegration(ctx, store.All, p.IntegrationID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && in.State == store.IntegrationUninstalled) {
		return nil
	}
	if err != nil {
		return err
	}
	if !routing.Live(in) {
		return s.classify(ErrNeedsReauth)
	}
	m, err := s.store.GetMessage(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, p.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.echo(ctx, in, m, &routing.Origin{IntegrationID: in.ID, Own: true, UserID: p.UserID}, j)
}

// echo writes m into its customer's Open Lines chat once (linkOLEcho),
// and ends the running job j (when not nil) in the commit of the link.
func (s *Service) echo(ctx context.Context, in *store.Integration, m *store.MessageView, o *routing.Origin, j *queue.Job) error {
	switch _, err := s.store.RemoteOf(ctx, in.ID, linkOLEcho, m.ID); {
	case err == nil:
		return nil // written by an earlier run
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	chat, err := s.store.RemoteOf(ctx, in.ID, linkChat, m.ContactID)
	if errors.Is(err, store.ErrNotFound) {
		// The customer never wrote into the line: there is no chat to
		// show the message in.
		s.log.Debug("bitrix24 echo: no Open Lines chat for the customer", "integration_id", in.ID, "contact_id", m.ContactID)
		return nil
	}
	if err != nil {
		return err
	}
	r := s.render(m, in.Language)
	body := InboundText(r)
	for _, f := range r.Files {
		body = strings.TrimSpace(body + "\n" + f.URL)
	}
	writer := ""
	if o.IntegrationID == "" {
		// Written in the cabinet: the echo names the colleague, not the
		// gateway, when the message's author is recorded.
		a, err := s.store.MessageAuthorOf(ctx, m.WorkspaceID, m.ID)
		if err != nil {
			return err
		}
		if a != nil && a.Kind == store.AuthorCabinet {
			writer = a.Name
		}
	}
	text := s.echoLine(ctx, in, o, writer, body)
	var msgID json.RawMessage
	err = s.client.Call(ctx, in.ID, "im.message.add", map[string]any{"DIALOG_ID": "chat" + chat, "MESSAGE": text, "SYSTEM": "Y"}, &msgID)
	if err != nil {
		return s.classify(err)
	}
	return s.store.Tx(ctx, func(tx *gorm.DB) error {
		if err := store.PutLink(tx, in.ID, linkOLEcho, m.ID, chat+":"+resultID(msgID)); err != nil {
			return err
		}
		if j != nil {
			return queue.Done(tx, j)
		}
		return nil
	})
}

// echoLine is the echo of body naming who wrote it: a portal user on the
// card tab, a robot, another CRM's user or automation, the cabinet user
// (writer, "" when unknown), or Switchboard (the API, a cabinet message
// of an unknown writer).
func (s *Service) echoLine(ctx context.Context, in *store.Integration, o *routing.Origin, writer, body string) string {
	l := in.Language
	switch {
	case o.Own && o.UserID != "":
		return fmt.Sprintf(echoText(l, "tab"), NeutralizeBB(s.userName(ctx, in, o.UserID)), body)
	case o.Own:
		return fmt.Sprintf(echoText(l, "robot"), body)
	case o.IntegrationID != "" && o.UserID != "":
		who := cmp.Or(o.UserName, echoText(l, "user")+" #"+o.UserID)
		return fmt.Sprintf(echoText(l, "other"), NeutralizeBB(who), NeutralizeBB(o.CRM), body)
	case o.IntegrationID != "":
		return fmt.Sprintf(echoText(l, "automation"), NeutralizeBB(o.CRM), body)
	case writer != "":
		return fmt.Sprintf(echoText(l, "cabinet"), NeutralizeBB(writer), body)
	}
	return fmt.Sprintf(echoText(l, "gateway"), body)
}

// userName names a portal user as the team knows them (UserName), else
// by id.
func (s *Service) userName(ctx context.Context, in *store.Integration, userID string) string {
	return cmp.Or(s.UserName(ctx, in, userID), echoText(in.Language, "user")+" #"+userID)
}

// The Service names its users to other CRMs' echoes and notes.
var _ routing.UserNamer = (*Service)(nil)

// UserName implements routing.UserNamer: a portal user as last read from
// the portal, else as the portal says now (user.get); "" when neither
// knows them (a failed call is logged: a message is still worth showing
// without its writer's name).
func (s *Service) UserName(ctx context.Context, in *store.Integration, userID string) string {
	users, err := s.store.CRMUsers(ctx, in.ID)
	if err != nil {
		s.log.Warn("bitrix24 echo: users", "integration_id", in.ID, "err", err)
	}
	for _, u := range users {
		if u.UserID == userID && u.Name != "" {
			return u.Name
		}
	}
	var got []struct {
		Name     string `json:"NAME"`
		LastName string `json:"LAST_NAME"`
	}
	if err := s.client.Call(ctx, in.ID, "user.get", map[string]any{"FILTER": map[string]any{"ID": userID}}, &got); err != nil {
		s.log.Warn("bitrix24 echo: user.get", "integration_id", in.ID, "user_id", userID, "err", err)
	}
	if len(got) > 0 {
		return strings.TrimSpace(got[0].Name + " " + got[0].LastName)
	}
	return ""
}

// echoTexts are the echo's words in Russian and English.
var echoTexts = map[string][2]string{
	"tab":   {"%s (карточка CRM): %s", "%s (CRM card): %s"},
	"robot": {"Робот CRM: %s", "CRM robot: %s"},
	// automation: another CRM's automation (its digital pipeline).
	"other":      {"%s (%s): %s", "%s (%s): %s"},
	"automation": {"Автоматизация %s: %s", "%s automation: %s"},
	"gateway":    {"Switchboard: %s", "Switchboard: %s"},
	"cabinet":    {"%s: %s", "%s: %s"},
	"user":       {"Пользователь", "User"},
}

// echoText is an echo text in the portal's language.
func echoText(lang, key string) string {
	if shownLang(lang) == "en" {
		return echoTexts[key][1]
	}
	return echoTexts[key][0]
}
