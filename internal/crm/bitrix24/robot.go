package bitrix24

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/crm"
	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/messaging"
	phonenum "github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// RobotCode is our automation rule ("Send a WhatsApp/Instagram message").
const RobotCode = "switchboard_send"

// robotDefinition is what bizproc.robot.add registers.
func (s *Service) robotDefinition(authUser string) map[string]any {
	prop := func(ru, en, typ string, required bool) map[string]any {
		p := map[string]any{"Name": map[string]string{"ru": ru, "en": en}, "Type": typ}
		if required {
			p["Required"] = "Y"
		}
		return p
	}
	def := map[string]any{
		"CODE":             RobotCode,
		"HANDLER":          s.url("/bitrix24/robot"),
		"NAME":             map[string]string{"ru": "Отправить сообщение WhatsApp/Instagram", "en": "Send a WhatsApp/Instagram message"},
		"USE_SUBSCRIPTION": "Y",
		"PROPERTIES": map[string]any{
			"phone":             prop("Телефон или ID клиента", "Phone or customer id", "string", true),
			"text":              prop("Текст", "Text", "text", false),
			"template":          prop("Шаблон WhatsApp (если окно 24 ч закрыто)", "WhatsApp template (when the 24 h window is closed)", "string", false),
			"template_language": prop("Язык шаблона", "Template language", "string", false),
			"template_params":   prop("Параметры шаблона через запятую", "Template parameters, comma-separated", "string", false),
			"channel":           prop("Канал (ID, phone_number_id или номер; пусто — первый подключённый)", "Channel (id, phone_number_id or number; empty: the first bound one)", "string", false),
		},
		"RETURN_PROPERTIES": map[string]any{
			"message_id": prop("ID сообщения", "Message id", "string", false),
			"error":      prop("Ошибка", "Error", "string", false),
		},
	}
	if authUser != "" {
		def["AUTH_USER_ID"] = authUser
	}
	return def
}

// ServeRobot receives an automation rule's run; like every Bitrix24 event
// it is checked, stored and answered at once, and done from the queue.
func (s *Service) ServeRobot(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := DecodeForm(form)
	memberID, appToken := str(data, "auth", "member_id"), str(data, "auth", "application_token")
	in, err := s.inbox.Caller(r.Context(), Type, strings.ToLower(memberID), appToken)
	if err != nil {
		s.fail(w, r, callerRefusal(err))
		return
	}
	token := str(data, "event_token")
	if token == "" || str(data, "code") != RobotCode {
		writeError(w, fault.New(fault.Malformed, "robot_invalid", "event_token and our robot code are required"))
		return
	}
	delete(data, "auth")
	payload, _ := json.Marshal(data)
	ev := &store.CRMEvent{IntegrationID: in.ID, Kind: "ROBOT", DedupKey: "ROBOT:" + token, Payload: string(payload)}
	err = s.inbox.Keep(r.Context(), ev, func(ev *store.CRMEvent) queue.NewJob {
		return queue.NewJob{Kind: JobEvent, WorkspaceID: in.WorkspaceID, Key: "b24robot:" + ev.ID,
			Payload: eventJob{EventID: ev.ID}, MaxAttempts: 20}
	})
	if err != nil {
		s.log.Error("bitrix24 robot run not stored", "integration_id", in.ID, "err", err)
		writeError(w, fault.New(fault.Unavailable, "store_failed", "could not store the robot run"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}`))
}

// runRobot sends the robot's message and reports the outcome to the
// business process.
func (s *Service) runRobot(ctx context.Context, in *store.Integration, data map[string]any) error {
	props, _ := data["properties"].(map[string]any)
	get := func(k string) string { s, _ := props[k].(string); return strings.TrimSpace(s) }
	token := str(data, "event_token")
	answer := func(messageID, errText string) error {
		err := s.client.Call(ctx, in.ID, "bizproc.event.send", map[string]any{"EVENT_TOKEN": token,
			"RETURN_VALUES": map[string]any{"message_id": messageID, "error": errText}, "LOG_MESSAGE": cmp.Or(errText, "Switchboard: "+messageID)}, nil)
		var ae *APIError
		if errors.As(err, &ae) && strings.EqualFold(ae.Code, "ACCESS_DENIED") {
			return nil // the rule does not wait for an answer, or it was answered
		}
		return s.classify(err)
	}
	ch, err := s.robotChannel(ctx, in, get("channel"))
	if err != nil {
		return answer("", err.Error())
	}
	req := messaging.SendRequest{To: get("phone"), Text: get("text")}
	if tpl := get("template"); tpl != "" {
		req.Template = &channel.Template{Name: tpl, Language: cmp.Or(get("template_language"), in.Language, "ru")}
		for _, p := range strings.Split(get("template_params"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				req.Template.Params = append(req.Template.Params, p)
			}
		}
		req.Text = ""
	}
	req.OnStored = s.crmSendStored(in, "")
	m, err := s.msg.Send(ctx, store.Scope{WorkspaceID: in.WorkspaceID}, ch.ID, req)
	var me *fault.Error
	if errors.As(err, &me) {
		msg := me.Message
		if me.Code == "window_closed" {
			msg = crm.WindowClosed(shownLang(in.Language), ch.Type)
		}
		return answer("", msg)
	}
	if err != nil {
		return err
	}
	return answer(m.ID, "")
}

// robotChannel picks the channel a robot sends through: the one named (id,
// account id or display number) in the portal's workspace, else the first
// channel bound to the portal.
func (s *Service) robotChannel(ctx context.Context, in *store.Integration, name string) (*store.Channel, error) {
	chs, err := s.store.ListChannels(ctx, store.Scope{WorkspaceID: in.WorkspaceID})
	if err != nil {
		return nil, err
	}
	digits := func(v string) string {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, v)
	}
	if name != "" {
		// A number is read by the workspace's rule, as the recipient is:
		// "8 701 234 56 78" names the channel "+7 701 234 56 78".
		rule := phonenum.Default
		if ws, err := s.store.GetWorkspace(ctx, store.All, in.WorkspaceID); err == nil {
			rule = phonenum.Options{Trunk8: ws.PhoneTrunk8, Region: ws.PhoneRegion}
		} else {
			s.log.Warn("bitrix24 robot: workspace", "integration_id", in.ID, "err", err)
		}
		for i := range chs {
			ch := &chs[i]
			sameNumber := digits(name) != "" && (digits(ch.DisplayPhone) == digits(name) || phonenum.Same(name, ch.DisplayPhone, rule))
			if ch.State == store.ChannelActive && (ch.ID == name || ch.AccountID == name || sameNumber) {
				return ch, nil
			}
		}
		return nil, errors.New("no active channel " + name + " in this portal's workspace")
	}
	bs, _ := s.store.ListBindings(ctx, in.ID)
	for _, b := range bs {
		for i := range chs {
			if chs[i].ID == b.ChannelID && chs[i].State == store.ChannelActive {
				return &chs[i], nil
			}
		}
	}
	return nil, errors.New("no channel is bound to this portal")
}
