package bitrix24

import (
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

// JobOpenLineEcho writes a message sent from the CRM side (the card tab,
// a robot) into the customer's Open Lines chat, so the line's operators
// see what a colleague or an automation told the customer.
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
// customer with no branch yet becomes this portal's), and operators of an
// Open Line see what was written. userID is the writer; "" for a robot.
func (s *Service) crmSendStored(in *store.Integration, userID string) func(tx *gorm.DB, m *store.Message) error {
	echo := s.echoToOpenLine(in, userID)
	return func(tx *gorm.DB, m *store.Message) error {
		if err := routing.ClaimOutbound(tx, in.ID, m.ChannelID, m.ContactID); err != nil {
			return err
		}
		return echo(tx, m)
	}
}

// echoToOpenLine is the OnStored hook of a CRM-side send: in the
// transaction that accepts the message, it queues the echo when the
// message's channel is bound to this portal in Open Lines mode. Being in
// that transaction, the echo is neither lost (the message was accepted)
// nor written for a message that was refused.
func (s *Service) echoToOpenLine(in *store.Integration, userID string) func(tx *gorm.DB, m *store.Message) error {
	return func(tx *gorm.DB, m *store.Message) error {
		bs, err := store.AllBindingsForChannel(tx, m.ChannelID)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if b.IntegrationID == in.ID && b.Mode == ModeOpenLines {
				_, err := queue.Enqueue(tx, queue.NewJob{Kind: JobOpenLineEcho, WorkspaceID: in.WorkspaceID,
					Key: "b24echo:" + in.ID + ":" + m.ContactID, Payload: olEchoJob{IntegrationID: in.ID, MessageID: m.ID, UserID: userID}, MaxAttempts: 20})
				return err
			}
		}
		return nil
	}
}

// handleOpenLineEcho posts the echo as a system message (im.message.add
// SYSTEM=Y) into the chat Bitrix24 made for the customer. A system message
// is what operators read as a note in the dialog: it is not sent to the
// customer again and does not take over or reopen the session, which an
// imconnector.send.messages with message.user_id (a message "on behalf of
// the manager") could, being an operator's own message in the line.
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
	switch _, err := s.store.RemoteOf(ctx, in.ID, linkOLEcho, p.MessageID); {
	case err == nil:
		return nil // written by an earlier run
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	m, err := s.store.GetMessage(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, p.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
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
	text := fmt.Sprintf(echoText(in.Language, "robot"), body)
	if p.UserID != "" {
		text = fmt.Sprintf(echoText(in.Language, "tab"), NeutralizeBB(s.userName(ctx, in, p.UserID)), body)
	}
	var msgID json.RawMessage
	err = s.client.Call(ctx, in.ID, "im.message.add", map[string]any{"DIALOG_ID": "chat" + chat, "MESSAGE": text, "SYSTEM": "Y"}, &msgID)
	if err != nil {
		return s.classify(err)
	}
	return s.store.Tx(ctx, func(tx *gorm.DB) error {
		return store.PutLink(tx, in.ID, linkOLEcho, m.ID, chat+":"+resultID(msgID))
	})
}

// userName names a portal user as the team knows them: from the users
// last read from the portal, else asked for (user.get), else by id.
func (s *Service) userName(ctx context.Context, in *store.Integration, userID string) string {
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
		if n := strings.TrimSpace(got[0].Name + " " + got[0].LastName); n != "" {
			return n
		}
	}
	return echoText(in.Language, "user") + " #" + userID
}

// echoTexts are the echo's words in Russian and English.
var echoTexts = map[string][2]string{
	"tab":   {"%s (карточка CRM): %s", "%s (CRM card): %s"},
	"robot": {"Робот CRM: %s", "CRM robot: %s"},
	"user":  {"Пользователь", "User"},
}

// echoText is an echo text in the portal's language.
func echoText(lang, key string) string {
	if shownLang(lang) == "en" {
		return echoTexts[key][1]
	}
	return echoTexts[key][0]
}
